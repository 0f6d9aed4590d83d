"""``gingham eval``: compare retrieval methods on a BEIR folder."""
from __future__ import annotations

import argparse
import json
from typing import Any

EPILOG = """BEIR_FOLDER holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv, as the BEIR
benchmark distributes its data sets.

examples:
  gingham eval BEIR_FOLDER
  gingham eval BEIR_FOLDER --methods bm25,hybrid --json
"""


def add_parsers(sub: Any) -> None:
    """Register the eval command on ``sub`` (argparse subparsers)."""
    from ..eval.compare import METHODS

    p = sub.add_parser("eval", help="compare retrieval methods on a BEIR folder",
                       description="nDCG@10, Recall@100, MRR@10 (pytrec_eval), p50 search "
                                   "latency (queries pre-encoded) and index bytes per document "
                                   "of BM25, a mean-pooled bi-encoder, exact late interaction, "
                                   "the compressed index (PLAID) and hybrid fusion, with the "
                                   "queries each method wins / ties / loses against the best "
                                   "single method (per-query nDCG@10). Embeddings "
                                   "are cached (~/.cache/gingham or --cache-dir).",
                       epilog=EPILOG)
    p.add_argument("dataset", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {', '.join(METHODS)} (default: all)")
    p.add_argument("--split", default="test", help="qrels split (qrels/<split>.tsv)")
    p.add_argument("--nbits", type=int, default=2, choices=(1, 2, 4),
                   help="PLAID residual bits")
    p.add_argument("--alpha", type=float, default=None,
                   help="weight of late interaction in hybrid-weighted (default 0.5)")
    p.add_argument("--language", default=None,
                   help="BM25 language (default: detected, english or arabic)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder (default: $GINGHAM_CACHE or ~/.cache/gingham)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="one JSON object per method (wins / "
                   "ties / losses: queries whose nDCG@10 is above / equal to / below the best "
                   "single method's, named in vs_best)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """``gingham eval BEIR_FOLDER``: one table row (or JSON line) per method."""
    from ..eval.compare import compare_methods

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = compare_methods(args.dataset, methods, split=args.split, cache_dir=args.cache_dir,
                           nbits=args.nbits, alpha=args.alpha, language=args.language,
                           show_progress=not args.quiet)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    best = rows[0]["vs_best"]
    print(f"{'method':<44} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>8} "
          f"{'bytes/doc':>10} {'W/T/L vs ' + str(best):>18}")
    for row in rows:
        wtl = ("-" if row["wins"] is None else
               f"{row['wins']}/{row['ties']}/{row['losses']}")
        print(f"{row['label']:<44} {row['ndcg@10']:>8.3f} {row['recall@100']:>7.3f} "
              f"{row['mrr@10']:>7.3f} {row['p50_ms']:>8.2f} {row['bytes_per_doc']:>10.0f} "
              f"{wtl:>18}")
    return 0
