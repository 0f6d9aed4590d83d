"""``gingham bench``: profile the staged search on a seeded synthetic compressed index."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Iterator

import numpy as np

EPILOG = """examples:
  gingham bench
  gingham bench --docs 20000 --nbits 4 -k 100 --json
"""


def add_parsers(sub: Any) -> None:
    """Register the bench command on ``sub`` (argparse subparsers)."""
    p = sub.add_parser("bench", help="profile the staged search on a synthetic index",
                       description="Build a seeded synthetic compressed index (clustered unit "
                                   "vectors, 32-180 tokens per document, 32-token queries near "
                                   "documents) and print per-stage search times and counts of "
                                   "PLAID and exact mode, and the top-k recall of PLAID against "
                                   "exact search of the uncompressed vectors.", epilog=EPILOG)
    p.add_argument("--docs", type=int, default=5000, help="documents")
    p.add_argument("--dim", type=int, default=128, help="token dimension")
    p.add_argument("--centers", type=int, default=1024, help="cluster centers of the corpus")
    p.add_argument("--nbits", type=int, default=2, choices=(1, 2, 4),
                   help="residual bits per dimension")
    p.add_argument("--queries", type=int, default=20, help="queries, searched as one batch")
    p.add_argument("-k", type=int, default=10, help="hits per query")
    p.add_argument("--seed", type=int, default=0, help="random seed of corpus, queries, codec")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON, with "
                                                       "the ids each query found")
    p.set_defaults(func=cmd_bench)


def overlap(found: list[list[str]], reference: list[list[str]]) -> float:
    """Mean over queries of |found ∩ reference| / |reference| (1.0 for empty references)."""
    return float(np.mean([len(set(f) & set(r)) / len(r) if r else 1.0
                          for f, r in zip(found, reference)]))


def _phases(names: tuple[str, ...], enabled: bool) -> Iterator[str]:
    """``names`` one at a time, behind a tqdm bar on stderr when ``enabled`` and tqdm (part
    of the text extra) is installed."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return iter(tqdm(names, desc="gingham bench", leave=False))
    return iter(names)


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Build the synthetic index in a temporary folder, search it; returns the report."""
    import tempfile

    from .._synthetic import clustered_corpus, queries_near, split
    from ..engine import runtime
    from ..engine.exact import exact_search
    from ..engine.index import Index

    phases = _phases(("generate", "build", "search"), enabled=not args.quiet)
    next(phases)
    tokens, offsets = clustered_corpus(args.docs, dim=args.dim, n_centers=args.centers,
                                       seed=args.seed)
    queries = queries_near(tokens, offsets, args.queries, seed=args.seed + 1)
    _, truth = exact_search(queries, tokens, offsets, args.k)
    fp32 = [[str(d) for d in row] for row in truth.tolist()]
    with tempfile.TemporaryDirectory(prefix="gingham-bench-") as tmp:
        next(phases)
        idx = Index.create(f"{tmp}/index", dim=args.dim, nbits=args.nbits, seed=args.seed)
        t0 = time.perf_counter()
        idx.add([str(i) for i in range(args.docs)], split(tokens, offsets))
        build_s = time.perf_counter() - t0
        next(phases)
        idx.search(queries[:1], k=args.k)  # warm-up
        plaid_hits, plaid = idx.search(queries, k=args.k, return_stats=True)
        exact_hits, exact = idx.search(queries, k=args.k, mode="exact", return_stats=True)
        plaid_ids = [[h.id for h in hits] for hits in plaid_hits]
        exact_ids = [[h.id for h in hits] for hits in exact_hits]
        report = {"index": idx.stats(), "build_s": round(build_s, 3),
                  "profile": idx.last_add_profile, "simd_level": runtime.simd_level(),
                  "threads": runtime.get_num_threads(), "k": args.k, "plaid": plaid,
                  "exact": exact, "recall_vs_exact_mode": overlap(plaid_ids, exact_ids),
                  "recall_vs_fp32": overlap(plaid_ids, fp32),
                  "top_ids": {"plaid": plaid_ids, "exact": exact_ids}}
        idx.close()
    for _ in phases:
        pass
    for stats in (report["plaid"], report["exact"]):
        stats.pop("per_query")
    return report


def cmd_bench(args: argparse.Namespace) -> int:
    """``gingham bench``: print the profile (text or JSON)."""
    report = run_bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    s = report["index"]
    print(f"gingham bench: {s['n_docs']:,} docs, {s['n_tokens']:,} tokens, dim {s['dim']}, "
          f"nbits {s['nbits']}, {s['n_centroids']} centroids, {s['bytes_per_token']:.1f} B/token "
          f"on disk; built in {report['build_s']:.1f}s ({report['simd_level']}, "
          f"{report['threads']} threads)")
    for name in ("plaid", "exact"):
        st = report[name]
        n = st["n_queries"]
        stages = ", ".join(f"{k} {v / n:.2f}" for k, v in st["stages_ms"].items())
        counts = ", ".join(f"{k} {v:.0f}" for k, v in st["counts_mean"].items())
        print(f"  {name:>5}: {st['wall_ms'] / n:.2f} ms/query in a batch of {n} | ms per query: "
              f"{stages} | mean counts: {counts}")
    print(f"  plaid top-{args.k} overlap with mode='exact': {report['recall_vs_exact_mode']:.3f}; "
          f"recall against exact search of the uncompressed vectors: "
          f"{report['recall_vs_fp32']:.3f}")
    return 0
