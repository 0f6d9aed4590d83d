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


# ---- gingham bench: staged-search profile on a synthetic compressed index ----

def _clustered_docs(n_docs: int, dim: int, n_centers: int, seed: int) -> list[np.ndarray]:
    """Documents (32-180 unit tokens) drawn from 4 of n_centers centers each, plus noise."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_centers, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    docs = []
    for _ in range(n_docs):
        topics = rng.integers(0, n_centers, size=4)
        n = int(rng.integers(32, 181))
        t = centers[topics[rng.integers(0, 4, size=n)]]
        t = t + (0.6 / np.sqrt(dim)) * rng.standard_normal((n, dim)).astype(np.float32)
        docs.append((t / np.linalg.norm(t, axis=1, keepdims=True)).astype(np.float32))
    return docs


def cmd_bench(args: argparse.Namespace) -> int:
    import tempfile

    from .index import Index

    docs = _clustered_docs(args.docs, args.dim, args.centers, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    queries = []
    for d in rng.integers(0, len(docs), size=args.queries):
        q = docs[d][rng.integers(0, len(docs[d]), size=32)]
        queries.append((q + 0.03 * rng.standard_normal(q.shape)).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="gingham-bench-") as tmp:
        idx = Index.create(f"{tmp}/index", dim=args.dim, nbits=args.nbits, seed=args.seed)
        t0 = time.perf_counter()
        idx.add([str(i) for i in range(len(docs))], docs)
        build_s = time.perf_counter() - t0
        idx.search(queries[:1], k=args.k)  # warm-up
        _, plaid = idx.search(queries, k=args.k, return_stats=True)
        exact_hits, exact = idx.search(queries, k=args.k, mode="exact", return_stats=True)
        plaid_hits = idx.search(queries, k=args.k)
        overlap = float(np.mean([len({h.id for h in a} & {h.id for h in b}) / max(1, len(a))
                                 for a, b in zip(plaid_hits, exact_hits)]))
        report = {"index": idx.stats(), "build_s": round(build_s, 3),
                  "profile": idx.last_add_profile, "simd_level": _runtime.simd_level(),
                  "threads": _runtime.get_num_threads(), "plaid": plaid, "exact": exact,
                  "recall_vs_exact_mode": overlap}
    for stats in (report["plaid"], report["exact"]):
        stats.pop("per_query")
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
    print(f"  plaid top-{args.k} overlap with mode='exact': {report['recall_vs_exact_mode']:.3f}")
    return 0


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="profile the staged search on a synthetic index",
                           description="Build a seeded synthetic compressed index and print "
                                       "per-stage search times and counts (plaid vs exact).")
    bench.add_argument("--docs", type=int, default=5000, help="documents (default 5000)")
    bench.add_argument("--dim", type=int, default=128, help="token dimension (default 128)")
    bench.add_argument("--centers", type=int, default=1024, help="cluster centers (default 1024)")
    bench.add_argument("--nbits", type=int, default=2, help="residual bits (default 2)")
    bench.add_argument("--queries", type=int, default=20, help="queries (default 20)")
    bench.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    bench.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    bench.add_argument("--json", action="store_true", help="print machine-readable JSON")
    bench.set_defaults(func=cmd_bench)


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
    _add_bench_parser(sub)  # compressed index
    _add_serve_parser(sub)  # HTTP server (issue 8)
    return parser


# ---- gingham serve: HTTP API over one index (issue 8; needs gingham[server]) ----

def _add_serve_parser(sub) -> None:
    serve = sub.add_parser("serve", help="serve an index over HTTP (FastAPI, loopback default)",
                           description="Serve an index over HTTP: search, rerank, add/delete/get "
                                       "documents, stats, Prometheus metrics; docs at /docs.")
    try:
        from .server import add_serve_arguments, run_from_args
    except ImportError as exc:  # FastAPI / uvicorn missing
        serve.add_argument("index")
        serve.set_defaults(func=lambda args, exc=exc: _server_missing(exc))
        return
    add_serve_arguments(serve)
    serve.set_defaults(func=run_from_args)


def _server_missing(exc: ImportError) -> int:
    print(f"gingham serve needs `pip install gingham[server]` ({exc})", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"gingham {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
