"""The ``gingham`` command line: a thin shell over the public API."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import _runtime, exact


def _synthetic_corpus(n_docs: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors with variable document lengths (32-180 tokens)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((256, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    lengths = rng.integers(32, 181, size=n_docs)
    doc_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=doc_offsets[1:])
    tokens = centers[rng.integers(0, len(centers), size=int(doc_offsets[-1]))]
    tokens = tokens + 0.3 * rng.standard_normal(tokens.shape).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    return tokens.astype(np.float32), doc_offsets


def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    tokens, doc_offsets = _synthetic_corpus(args.docs, args.dim, args.seed)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed + 1)
    picks = rng.integers(0, args.docs, size=args.queries)
    queries = []
    for d in picks:
        doc = tokens[doc_offsets[d]:doc_offsets[d + 1]]
        q = doc[rng.integers(0, len(doc), size=32)] + 0.1 * rng.standard_normal((32, args.dim))
        queries.append(q.astype(np.float32))
    exact.exact_search(queries[:1], tokens, doc_offsets, 1)  # warm-up
    t0 = time.perf_counter()
    scores, ids = exact.exact_search(queries, tokens, doc_offsets, args.k)
    search_s = time.perf_counter() - t0
    report = {
        "corpus": {"docs": args.docs, "tokens": int(doc_offsets[-1]), "dim": args.dim,
                   "generate_s": round(build_s, 3)},
        "simd_level": _runtime.simd_level(), "threads": _runtime.get_num_threads(),
        "queries": [{"built_from_doc": int(d), "hits": [[int(i), float(s)] for i, s in
                                                        zip(ids[n], scores[n])]}
                    for n, d in enumerate(picks)],
        "search_ms_per_query": round(1000 * search_s / args.queries, 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gingham demo: exact MaxSim over a seeded synthetic corpus "
          f"({args.docs:,} docs, {int(doc_offsets[-1]):,} tokens, dim {args.dim})")
    print(f"SIMD level {report['simd_level']}, {report['threads']} threads")
    for q in report["queries"]:
        top = ", ".join(f"doc {i} ({s:.2f})" for i, s in q["hits"][:3])
        print(f"  query built from doc {q['built_from_doc']:>6}: {top}")
    print(f"exact search: {report['search_ms_per_query']} ms per query (k={args.k})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gingham", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job end to end on an embedded corpus",
                          description="Index a seeded synthetic corpus and run example queries.")
    demo.add_argument("--docs", type=int, default=20000, help="number of documents (default 20000)")
    demo.add_argument("--dim", type=int, default=128, help="token dimension (default 128)")
    demo.add_argument("--queries", type=int, default=5, help="example queries (default 5)")
    demo.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--json", action="store_true", help="print machine-readable JSON")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"gingham {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
