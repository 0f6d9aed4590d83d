"""``gingham index | search | info | verify``: text indexes from the shell.

``info`` and ``verify`` also work on embeddings-only indexes (made with ``gingham.Index``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

INDEX_EPILOG = """examples:
  printf '%s\\n' '{"id": "a", "text": "Late interaction scores every query token."}' \\
                 '{"id": "b", "text": "BM25 counts matching words."}' > corpus.jsonl
  gingham index my-index corpus.jsonl
  gingham index my-index corpus.jsonl --storage fp16 --overwrite
  gingham index notes-index ./notes --nbits 4      # every .txt/.md file under ./notes
"""
SEARCH_EPILOG = """examples (my-index made as in `gingham index --help`, or by
`gingham demo --index-dir my-index`):
  gingham search my-index "late interaction" -k 5
  gingham search my-index "query" --hybrid rrf --json
  gingham search my-index "query" --explain
  gingham search my-index "query" --where "json_extract(metadata, '$.lang') = ?" --param en
"""


LOCK_TIMEOUT = 10.0


def _add_lock_timeout(p: argparse.ArgumentParser, when: str) -> None:
    p.add_argument("--lock-timeout", type=float, default=LOCK_TIMEOUT,
                   help=f"seconds to wait for another writer's lock {when} (default: "
                        f"{LOCK_TIMEOUT:g})")


def add_parsers(sub: Any) -> None:
    """Register the index, search, info and verify commands on ``sub`` (argparse
    subparsers)."""
    from ..text.encoder import BACKENDS, RECOMMENDED_SETTINGS

    p = sub.add_parser("index", help="build a text index from a file or folder",
                       description="Encode documents with the offline default model (or "
                                   "--model) and write a compressed late-interaction index "
                                   "with a BM25 index beside it.", epilog=INDEX_EPILOG)
    p.add_argument("path", help="index folder to create (absent or empty, or an index to "
                                "replace with --overwrite)")
    p.add_argument("input", help=".jsonl (id or _id, text, optional title; other fields become "
                                 "metadata), .tsv (id<TAB>text) or a folder of .txt/.md files")
    p.add_argument("--model", default=None, help="encoder checkpoint (default: the offline "
                                                 "all-MiniLM-L6-v2)")
    p.add_argument("--storage", default="residual", choices=("residual", "fp32", "fp16", "int8"),
                   help="residual: compressed, PLAID search; fp32/fp16/int8: every token kept, "
                        "exhaustive search")
    p.add_argument("--nbits", type=int, default=2, choices=(1, 2, 4),
                   help="residual bits per dimension")
    p.add_argument("--pca-dim", type=int, default=RECOMMENDED_SETTINGS["pca_dim"],
                   help="PCA dimensions fitted on the corpus (0: no PCA)")
    p.add_argument("--pool-factor", type=float, default=RECOMMENDED_SETTINGS["pool_factor"],
                   help="hierarchical token pooling factor (1: no pooling)")
    p.add_argument("--bm25-language", default="english",
                   help="BM25 analyser language (english, arabic, ..., none for no stemming) "
                        "or off for no BM25 (no --hybrid search)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per encoder batch")
    p.add_argument("--backend", default="onnx", choices=BACKENDS,
                   help="encoder runtime (default onnx: the transformer exported to ONNX and "
                        "stored with the index; encoding is faster on CPU and searches run "
                        "without torch; torch: sentence-transformers)")
    p.add_argument("--quantize", default="none", choices=("none", "int8"),
                   help="int8: dynamic int8 ONNX weights (needs --backend onnx; faster, "
                        "less accurate)")
    p.add_argument("--limit", type=int, default=0,
                   help="index only the first N documents (0: all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.add_argument("--shards", type=int, default=0,
                   help="build a sharded index of N shards on Ray (0: one index)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster for --shards (default: a local ray.init())")
    _add_lock_timeout(p, "on the new index")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search a text index",
                       description="Top-k documents for a query: late interaction, optionally "
                                   "fused with BM25.", epilog=SEARCH_EPILOG)
    p.add_argument("index", help="index folder made by `gingham index` or `gingham demo`")
    p.add_argument("query", help="query text")
    p.add_argument("-k", type=int, default=10, help="hits to return")
    p.add_argument("--hybrid", nargs="?", const="auto", choices=("auto", "weighted", "rrf"),
                   default=None, help="fuse with BM25 (auto: complete-score fusion weighted "
                                      "per query, when given without a value; default: no "
                                      "fusion)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="weight of late interaction in --hybrid weighted")
    p.add_argument("--where", default=None, help="SQL filter over the metadata JSON, with ? "
                                                 "for each --param")
    p.add_argument("--param", action="append", help="value bound to a ? in --where "
                                                    "(JSON or text; repeatable)")
    p.add_argument("--exact", action="store_true",
                   help="score every document instead of the staged PLAID search")
    p.add_argument("--explain", action="store_true",
                   help="show which document token each query token matched")
    p.add_argument("--backend", default=None, choices=BACKENDS,
                   help="encoder runtime for the query (default: the one the index was "
                        "built with)")
    _add_lock_timeout(p, "when the index must first be upgraded to the current on-disk "
                         "format or its BM25 rebuilt")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("info", help="print index statistics and settings",
                       description="Print document and token counts, sizes, storage kind and, "
                                   "for text indexes, the encoder settings and BM25 size.",
                       epilog="example:\n  gingham info my-index")
    p.add_argument("index", help="index folder")
    _add_lock_timeout(p, "when the index must first be upgraded to the current on-disk "
                         "format")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="check index files, encoder and BM25",
                       description="Check every file's checksum and every invariant of the "
                                   "index; for text indexes also that BM25 covers the same "
                                   "documents and the encoder matches the index dimension.",
                       epilog="example:\n  gingham verify my-index")
    p.add_argument("index", help="index folder")
    _add_lock_timeout(p, "when the index must first be upgraded to the current on-disk "
                         "format or its BM25 rebuilt")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_verify)


def _param(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _shorten(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def cmd_index(args: argparse.Namespace) -> int:
    """``gingham index PATH INPUT``: read, encode and index documents."""
    from ..text.corpus import read_documents
    from ..text.retriever import Retriever

    docs = read_documents(args.input)
    if args.limit:
        docs.ids, docs.texts, docs.metadata = (docs.ids[:args.limit], docs.texts[:args.limit],
                                               docs.metadata[:args.limit])
    options = {"storage": args.storage, "nbits": args.nbits, "pool_factor": args.pool_factor,
               "pca_dim": None if args.pca_dim == 0 else args.pca_dim,
               "bm25_language": None if args.bm25_language == "off" else args.bm25_language,
               "batch_size": args.batch_size, "show_progress": not args.quiet,
               "backend": args.backend,
               "quantize": None if args.quantize == "none" else args.quantize}
    t0 = time.perf_counter()
    if args.shards < 0:
        raise ValueError(f"--shards must be >= 0; got {args.shards}")
    if args.shards:
        from ..distributed import faces
        report = faces.index_texts(
            args.path, docs.ids, docs.texts, docs.metadata, n_shards=args.shards,
            address=args.ray_address, model=args.model, storage=args.storage,
            nbits=args.nbits, pca_dim=options["pca_dim"], pool_factor=args.pool_factor,
            batch_size=args.batch_size, overwrite=args.overwrite, progress=not args.quiet,
            bm25_language=options["bm25_language"])
    else:
        r = Retriever.build(args.path, docs.texts, ids=docs.ids, metadata=docs.metadata,
                            model=args.model, overwrite=args.overwrite,
                            lock_timeout=args.lock_timeout, **options)
        r.close()
        timings = {key: r.timings[key] for key in ("encode_s", "engine_s", "bm25_s")}
        report = {"index": r.index.path, "n_docs": len(r), **timings,
                  "total_s": time.perf_counter() - t0}
        report["docs_per_s"] = report["n_docs"] / max(report["total_s"], 1e-9)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"indexed {report['n_docs']:,} documents into {report['index']} in "
          f"{report['total_s']:.1f} s: encoding {report['encode_s']:.1f} s "
          f"({report['n_docs'] / max(report['encode_s'], 1e-9):.1f} docs/s), engine "
          f"{report['engine_s']:.2f} s, BM25 {report['bm25_s']:.2f} s")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """``gingham search INDEX QUERY``: print the top-k hits (table or JSON)."""
    from ..distributed import faces
    from .demo import highlight, matched_spans

    hybrid = False if args.hybrid is None else args.hybrid
    params = [_param(p) for p in args.param] if args.param else None
    if faces.is_sharded(args.index):
        hits, load_s, latency_ms = faces.search(args.index, args.query, args.k, hybrid=hybrid,
                                                explain=args.explain, where=args.where,
                                                params=params, exact=args.exact,
                                                alpha=args.alpha)
    else:
        hits, load_s, latency_ms = _search_index(args, hybrid, params)
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


def _search_index(args: argparse.Namespace, hybrid: Any, params: list | None
                  ) -> tuple[list, float, float]:
    """Search one (Retriever) index -> (hits, model load s, latency ms)."""
    from ..text.retriever import Retriever

    with Retriever.open(args.index, lock_timeout=args.lock_timeout,
                        backend=args.backend) as r:
        t0 = time.perf_counter()
        r.encoder.ready()  # load the model first: the latency below is encoding + search
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = r.search(args.query, k=args.k, hybrid=hybrid, alpha=args.alpha,
                        where=args.where, params=params,
                        mode="exact" if args.exact else "plaid", explain=args.explain)
        return hits, load_s, 1000 * (time.perf_counter() - t0)


def index_info(path: str, lock_timeout: float = LOCK_TIMEOUT) -> dict[str, Any]:
    """{"index", "n_docs", "stats", "settings"} of any index, plus "encoder" and "bm25" for a
    text index (``Retriever.describe``); a sharded index's summed and per-shard stats."""
    from ..distributed import faces
    from ..engine.index import Index
    from ..text.retriever import Retriever

    if faces.is_sharded(path):
        return faces.info(path)
    with Index.open(path, lock_timeout=lock_timeout) as idx:
        return {"index": idx.path, "n_docs": len(idx), "stats": idx.stats(),
                "settings": idx.settings, **Retriever.describe(idx)}


def cmd_info(args: argparse.Namespace) -> int:
    """``gingham info INDEX``: statistics and settings."""
    info = index_info(args.index, args.lock_timeout)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    s = info["stats"]
    print(f"index {info['index']}: {info['n_docs']:,} documents")
    for key in sorted(s):
        print(f"  {key}: {s[key]}")
    enc = info.get("encoder")
    if enc:
        print(f"  encoder: model {enc['model'] or 'all-MiniLM-L6-v2 (offline default)'}, "
              f"pca_dim {enc['pca_dim']}, pool_factor {enc['pool_factor']}, "
              f"projection {enc['projection']}")
    if "bm25" in info:
        print(f"  bm25: {info['bm25']['n_docs']:,} documents")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``gingham verify INDEX``: checksums and invariants; BM25 and encoder of text indexes."""
    from ..distributed import faces
    from ..engine.index import Index
    from ..text.retriever import Retriever

    if faces.is_sharded(args.index):
        summary = faces.verify(args.index)
        print(json.dumps(summary) if args.json else
              f"{summary['index']}: ok ({summary['n_docs']:,} documents, "
              f"{summary['n_shards']} shards)")
        return 0
    with Index.open(args.index, lock_timeout=args.lock_timeout) as idx:
        idx.verify()
        text_index = "encoder" in Retriever.describe(idx)
        path, n_docs = idx.path, len(idx)
    problems = []
    if text_index:
        with Retriever.open(args.index, lock_timeout=args.lock_timeout) as r:
            if r.bm25 is not None and sorted(r.bm25.ids) != sorted(r.index.ids()):
                problems.append("BM25 ids differ from the index catalog")
            if r.encoder.dim != r.index.dim:
                problems.append(f"encoder dim {r.encoder.dim} != index dim {r.index.dim}")
    if problems:
        raise ValueError("; ".join(problems))
    if args.json:
        print(json.dumps({"index": path, "ok": True, "n_docs": n_docs}))
    else:
        print(f"{path}: ok ({n_docs:,} documents)")
    return 0
