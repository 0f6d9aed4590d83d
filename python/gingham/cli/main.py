"""The ``gingham`` command line: a thin shell over the public API."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..engine import runtime as _runtime

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

    from ..engine.index import Index

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


# ---- text commands: index / search / info / verify / eval / demo (issue 6) ----

EPILOG = """examples:
  gingham demo                                   # index stdlib docstrings, run example queries
  gingham index my-index corpus.jsonl            # .jsonl (id/_id, text, title), .tsv, or a folder
  gingham search my-index "what is late interaction?" -k 5 --hybrid
  gingham search my-index "query" --where "json_extract(metadata, '$.lang') = ?" --param en
  gingham eval ../shared/data/msmarco --methods bm25,plaid,hybrid --json
  gingham info my-index; gingham verify my-index
"""


def _param(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def cmd_index(args: argparse.Namespace) -> int:
    from ..text.corpus import read_documents
    from ..text.retriever import Retriever

    docs = read_documents(args.input)
    if args.limit:
        docs.ids, docs.texts, docs.metadata = (docs.ids[:args.limit], docs.texts[:args.limit],
                                               docs.metadata[:args.limit])
    options = {"storage": args.storage, "nbits": args.nbits, "pool_factor": args.pool_factor,
               "pca_dim": None if args.pca_dim == 0 else args.pca_dim,
               "bm25_language": None if args.bm25_language == "off" else args.bm25_language,
               "batch_size": args.batch_size, "show_progress": not args.quiet}
    t0 = time.perf_counter()
    r = Retriever.build(args.path, docs.texts, ids=docs.ids, metadata=docs.metadata,
                        model=args.model, overwrite=args.overwrite, **options)
    report = {"index": r.index.path, "n_docs": len(r), **r.timings,
              "total_s": time.perf_counter() - t0}
    report["docs_per_s"] = report["n_docs"] / max(report["total_s"], 1e-9)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"indexed {report['n_docs']:,} documents into {report['index']} in "
              f"{report['total_s']:.1f} s: encoding {report['encode_s']:.1f} s "
              f"({report['n_docs'] / max(report['encode_s'], 1e-9):.1f} docs/s), engine "
              f"{report['engine_s']:.2f} s, BM25 {report['bm25_s']:.2f} s")
    return 0


def _shorten(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def cmd_search(args: argparse.Namespace) -> int:
    from ..text.retriever import Retriever
    from .demo import highlight, matched_spans

    r = Retriever.open(args.index)
    hybrid = False if args.hybrid is None else args.hybrid
    params = [_param(p) for p in args.param] if args.param else None
    t0 = time.perf_counter()
    _ = r.encoder.model  # load the model first, so the latency below is query encoding + search
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = r.search(args.query, k=args.k, hybrid=hybrid, alpha=args.alpha, where=args.where,
                    params=params, mode="exact" if args.exact else "plaid")
    latency_ms = 1000 * (time.perf_counter() - t0)
    if args.explain:
        for h in hits:
            h["explain"] = r.explain(args.query, h["id"])
    if args.json:
        print(json.dumps({"query": args.query, "latency_ms": latency_ms,
                          "model_load_s": load_s, "hits": hits},
                         indent=2, ensure_ascii=False))
        return 0
    ansi = sys.stdout.isatty()
    print(f"{len(hits)} hits for {args.query!r} in {latency_ms:.1f} ms (query encoding + "
          f"search; model load {load_s:.1f} s)")
    print(f"{'rank':>4}  {'score':>8}  {'id':<24}  text")
    for h in hits:
        text = _shorten(h["text"], 90)
        if args.explain:
            text = highlight(h["text"] or "", matched_spans(h["explain"]), ansi)
        print(f"{h['rank'] + 1:>4}  {h['score']:>8.3f}  {_shorten(h['id'], 24):<24}  {text}")
        if args.explain:
            for e in h["explain"]:
                print(f"{'':>16}{e['query_token']:>14} -> {e['doc_token']:<30} "
                      f"{e['similarity']:.3f}")
    return 0


def _retriever_info(path: str) -> dict:
    from ..engine.index import Index

    idx = Index.open(path)
    info = {"index": idx.path, "n_docs": len(idx), "stats": idx.stats(),
            "settings": idx.settings}
    bm25 = os.path.join(idx.path, "bm25", "source.json")
    if os.path.exists(bm25):
        with open(bm25, encoding="utf-8") as f:
            info["bm25"] = json.load(f)
    return info


def cmd_info(args: argparse.Namespace) -> int:
    info = _retriever_info(args.index)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    s = info["stats"]
    print(f"index {info['index']}: {info['n_docs']:,} documents")
    for key in sorted(s):
        print(f"  {key}: {s[key]}")
    enc = (info["settings"] or {}).get("retriever", {}).get("encoder")
    if enc:
        print(f"  encoder: model {enc['model'] or 'all-MiniLM-L6-v2 (offline default)'}, "
              f"pca_dim {enc['pca_dim']}, pool_factor {enc['pool_factor']}, "
              f"projection {enc['projection']}")
    if "bm25" in info:
        print(f"  bm25: {info['bm25']['n_docs']:,} documents")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..text.retriever import Retriever

    r = Retriever.open(args.index)
    r.index.verify()
    problems = []
    if r.bm25 is not None and sorted(r.bm25.ids) != sorted(r.index.ids()):
        problems.append("BM25 ids differ from the index catalog")
    if r.encoder.dim != r.index.dim:
        problems.append(f"encoder dim {r.encoder.dim} != index dim {r.index.dim}")
    if problems:
        raise ValueError("; ".join(problems))
    if args.json:
        print(json.dumps({"index": r.index.path, "ok": True, "n_docs": len(r)}))
    else:
        print(f"{r.index.path}: ok ({len(r):,} documents)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..eval.compare import compare_methods

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = compare_methods(args.dataset, methods, split=args.split, cache_dir=args.cache_dir,
                           nbits=args.nbits, alpha=args.alpha, language=args.language,
                           show_progress=not args.quiet)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'method':<44} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>8} "
          f"{'bytes/doc':>10}")
    for row in rows:
        print(f"{row['label']:<44} {row['ndcg@10']:>8.3f} {row['recall@100']:>7.3f} "
              f"{row['mrr@10']:>7.3f} {row['p50_ms']:>8.2f} {row['bytes_per_doc']:>10.0f}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import print_report, run_demo

    report = run_demo(limit=args.limit, k=args.k, index_dir=args.index_dir,
                      rebuild=args.rebuild, show_progress=not args.json)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report, sys.stdout.isatty())
    return 0


def _add_text_parsers(sub) -> None:
    from ..eval.compare import METHODS
    from .demo import DEFAULT_LIMIT

    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("index", help="build a text index from a file or folder",
                       formatter_class=raw,
                       description="Encode documents with the offline default model (or "
                                   "--model) and write a compressed index with BM25 beside it.",
                       epilog="examples:\n  gingham index my-index corpus.jsonl\n"
                              "  gingham index notes-index ~/notes --nbits 4\n"
                              "  gingham index my-index docs.tsv --storage fp16 --overwrite")
    p.add_argument("path", help="index folder to create")
    p.add_argument("input", help=".jsonl (id or _id, text, optional title; other fields become "
                                 "metadata), .tsv (id<TAB>text) or a folder of .txt/.md files")
    p.add_argument("--model", default=None, help="encoder checkpoint (default: offline "
                                                 "all-MiniLM-L6-v2)")
    p.add_argument("--storage", default="residual",
                   help="residual (compressed, default) | fp32 | fp16 | int8")
    p.add_argument("--nbits", type=int, default=2, help="residual bits per dimension (1, 2, 4)")
    from ..text.encoder import RECOMMENDED_SETTINGS
    p.add_argument("--pca-dim", type=int, default=RECOMMENDED_SETTINGS["pca_dim"],
                   help="PCA dimensions fitted on the corpus (0 = none; default "
                        f"{RECOMMENDED_SETTINGS['pca_dim']})")
    p.add_argument("--pool-factor", type=float, default=RECOMMENDED_SETTINGS["pool_factor"],
                   help="hierarchical token pooling factor (1 = none)")
    p.add_argument("--bm25-language", default="english",
                   help="BM25 analyser language (english, arabic, ..., none) or off")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=0, help="index only the first N documents")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search a text index", formatter_class=raw,
                       description="Top-k documents for a query (late interaction, optionally "
                                   "fused with BM25).",
                       epilog="examples:\n  gingham search my-index \"late interaction\" -k 5\n"
                              "  gingham search my-index \"query\" --hybrid rrf --json\n"
                              "  gingham search my-index \"query\" --explain\n"
                              "  gingham search my-index \"query\" --where "
                              "\"json_extract(metadata, '$.lang') = ?\" --param en")
    p.add_argument("index", help="index folder")
    p.add_argument("query", help="query text")
    p.add_argument("-k", type=int, default=10, help="hits (default 10)")
    p.add_argument("--hybrid", nargs="?", const="weighted", choices=("weighted", "rrf"),
                   default=None, help="fuse with BM25 (weighted by default, or rrf)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="weight of late interaction in weighted fusion (default 0.5)")
    p.add_argument("--where", default=None, help="SQL filter over the metadata JSON")
    p.add_argument("--param", action="append", help="value bound to a ? in --where "
                                                    "(JSON or text; repeatable)")
    p.add_argument("--exact", action="store_true", help="score every document (mode=exact)")
    p.add_argument("--explain", action="store_true",
                   help="show which document token each query token matched")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_search)

    for name, func, helptext in (("info", cmd_info, "print index statistics and settings"),
                                 ("verify", cmd_verify, "check index files, encoder and BM25")):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:],
                           epilog=f"example:\n  gingham {name} my-index", formatter_class=raw)
        p.add_argument("index", help="index folder")
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        p.set_defaults(func=func)

    p = sub.add_parser("eval", help="compare retrieval methods on a BEIR folder",
                       formatter_class=raw,
                       description="nDCG@10, Recall@100, MRR@10 (pytrec_eval), p50 search "
                                   "latency (queries pre-encoded) and index bytes per document "
                                   "of BM25, a mean-pooled bi-encoder, exact late interaction, "
                                   "the compressed index (PLAID) and hybrid fusion. Embeddings "
                                   "are cached (~/.cache/gingham or --cache-dir).",
                       epilog="examples:\n  gingham eval ../shared/data/msmarco\n"
                              "  gingham eval ../shared/data/arcd --methods bm25,hybrid --json")
    p.add_argument("dataset", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--split", default="test", help="qrels split (default test)")
    p.add_argument("--nbits", type=int, default=2, help="PLAID residual bits (default 2)")
    p.add_argument("--alpha", type=float, default=None, help="hybrid weight (default 0.5)")
    p.add_argument("--language", default=None,
                   help="BM25 language (default: detected, english or arabic)")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="one JSON object per method")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="index Python's stdlib docstrings and run example queries",
                       formatter_class=raw,
                       description="The main job end to end, offline: builds (or reuses) an "
                                   "index over standard library docstrings with the default "
                                   "model, runs example queries with matched terms marked, and "
                                   "prints index size, build time and query latency.",
                       epilog="examples:\n  gingham demo\n  gingham demo --rebuild --json")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"documents to index (default {DEFAULT_LIMIT})")
    p.add_argument("-k", type=int, default=3, help="hits per query (default 3)")
    p.add_argument("--index-dir", default=None,
                   help="index folder (default ~/.cache/gingham/demo-<n>-<hash>)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the index even if cached")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gingham", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_text_parsers(sub)  # text commands (issue 6)
    _add_bench_parser(sub)  # compressed index
    _add_serve_parser(sub)  # HTTP server (issue 8)
    return parser


# ---- gingham serve: HTTP API over one index (issue 8; needs gingham[server]) ----

def _add_serve_parser(sub) -> None:
    serve = sub.add_parser("serve", help="serve an index over HTTP (FastAPI, loopback default)",
                           description="Serve an index over HTTP: search, rerank, add/delete/get "
                                       "documents, stats, Prometheus metrics; docs at /docs.")
    try:
        from ..serve.server import add_serve_arguments, run_from_args
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
    except (ValueError, TypeError, FileNotFoundError, KeyError, ImportError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"gingham {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
