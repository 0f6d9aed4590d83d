"""``gingham demo``: the main job end to end on a corpus every machine has.

Builds (or reuses) a Retriever index over the first paragraphs of Python standard library
docstrings (``corpus.stdlib_docstrings``) with the offline default model, runs a few example
queries and reports the top hits with the query-matched tokens marked (``Retriever.search``
with ``explain=True``), the index size, build time (encoding vs engine) and query latency.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import string
import sys
import time
from typing import Any

QUERIES = (
    "parse command line options",
    "compress a file with gzip",
    "random number from a normal distribution",
    "compare two sequences and show the differences",
    "hash a password securely",
)
DEFAULT_LIMIT = 600
_SPECIAL = {"[CLS]", "[SEP]", "[MASK]", "[PAD]", "[unused0]", "[unused1]"}


def add_parsers(sub: Any) -> None:
    """Register the demo command on ``sub`` (argparse subparsers)."""
    p = sub.add_parser("demo", help="index Python's stdlib docstrings and run example queries",
                       description="The main job end to end, offline: builds (or reuses) an "
                                   "index over standard library docstrings with the default "
                                   "model, runs example queries with matched terms marked, and "
                                   "prints index size, build time and query latency.",
                       epilog="examples:\n  gingham demo\n  gingham demo --rebuild --json\n"
                              "  gingham demo --index-dir my-index   # then: gingham search "
                              "my-index \"read a zip archive\"")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="documents to index")
    p.add_argument("-k", type=int, default=3, help="hits per query")
    p.add_argument("--index-dir", default=None,
                   help="index folder (default: <cache>/demo-<n>-<corpus hash>, cache = "
                        "$GINGHAM_CACHE or ~/.cache/gingham)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the index even if cached")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """``gingham demo``: run the demo and print its report."""
    report = run_demo(limit=args.limit, k=args.k, index_dir=args.index_dir,
                      rebuild=args.rebuild, show_progress=not args.json)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report, sys.stdout.isatty())
    return 0


def default_index_dir(limit: int) -> str:
    """``<cache>/demo-<n>-<corpus hash>``: one index per corpus (per Python version/limit)."""
    from ..text.corpus import stdlib_docstrings

    docs = stdlib_docstrings(limit)
    h = hashlib.sha256("\x00".join(docs.ids + docs.texts).encode()).hexdigest()[:12]
    from ..eval.cache import default_cache_dir

    return os.path.join(default_cache_dir(), f"demo-{len(docs.ids)}-{h}")


def matched_spans(explanation: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Character spans of document tokens matched by content query tokens (special tokens,
    punctuation and stopwords of the query are left out), merged and sorted."""
    from bm25s.stopwords import STOPWORDS_EN

    skip = set(STOPWORDS_EN) | set(string.punctuation) | _SPECIAL
    spans = []
    for e in explanation:
        token = e["query_token"].lstrip("#")
        if e["query_token"] in _SPECIAL or token.lower() in skip:
            continue
        for (s, t), name in zip(e["doc_spans"], e["doc_tokens"]):
            if name not in _SPECIAL and name.lstrip("#").lower() not in skip:
                spans.append((s, t))
    merged: list[tuple[int, int]] = []
    for s, t in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(t, merged[-1][1]))
        else:
            merged.append((s, t))
    return merged


def highlight(text: str, spans: list[tuple[int, int]], ansi: bool) -> str:
    """``text`` with ``spans`` wrapped in bold (ANSI) or [brackets]."""
    on, off = ("\033[1;33m", "\033[0m") if ansi else ("[", "]")
    out, pos = [], 0
    for s, t in spans:
        out += [text[pos:s], on, text[s:t], off]
        pos = t
    out.append(text[pos:])
    return "".join(out)


def run_demo(*, limit: int = DEFAULT_LIMIT, k: int = 3, index_dir: str | None = None,
             rebuild: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Build or reuse the demo index, run ``QUERIES``; returns a JSON-able report."""
    from ..eval.compare import folder_bytes
    from ..text.corpus import stdlib_docstrings
    from ..text.retriever import Retriever

    path = index_dir or default_index_dir(limit)
    info_path = os.path.join(path, "demo_build.json")
    built = False
    t_all = time.perf_counter()
    if rebuild or not os.path.exists(info_path):
        docs = stdlib_docstrings(limit)
        r = Retriever.build(path, docs.texts, ids=docs.ids, metadata=docs.metadata,
                            show_progress=show_progress, overwrite=True)
        build = dict(r.timings, total_s=time.perf_counter() - t_all)
        with open(info_path, "w", encoding="utf-8") as f:
            json.dump(build, f)
        built = True
    else:
        r = Retriever.open(path)
        with open(info_path, encoding="utf-8") as f:
            build = json.load(f)
    with r:
        r.search(QUERIES[0], k=k)  # warm-up: loads the model, maps the index
        results = []
        for q in QUERIES:
            t0 = time.perf_counter()
            hits = r.search(q, k=k, explain=True)
            latency = time.perf_counter() - t0
            for h in hits:
                h["spans"] = matched_spans(h.pop("explain"))
            results.append({"query": q, "latency_ms": 1000 * latency, "hits": hits})
        size = r.index.stats()["bytes_on_disk"]
        n_docs = len(r)
    return {"index": path, "built_now": built, "n_docs": n_docs,
            "index_bytes": int(folder_bytes(path)), "engine_bytes": int(size),
            "build": build, "queries": results,
            "p50_query_ms": sorted(x["latency_ms"] for x in results)[len(results) // 2],
            "total_s": time.perf_counter() - t_all}


def print_report(report: dict[str, Any], ansi: bool) -> None:
    """Human-readable demo output."""
    b = report["build"]
    n = int(b.get("n_docs", report["n_docs"]))
    print(f"gingham demo: {report['n_docs']} Python standard library docstrings, offline "
          f"all-MiniLM-L6-v2, compressed late-interaction index")
    verb = "built" if report["built_now"] else "reused (built earlier)"
    print(f"index {verb}: {report['index']}")
    print(f"  build: encoding {b['encode_s']:.1f} s ({n / max(b['encode_s'], 1e-9):.1f} docs/s), "
          f"engine {b['engine_s']:.2f} s, BM25 {b['bm25_s']:.2f} s")
    print(f"  size: {report['index_bytes'] / 1e6:.2f} MB on disk "
          f"({report['index_bytes'] / max(report['n_docs'], 1):.0f} bytes/doc incl. encoder "
          f"and BM25)")
    for q in report["queries"]:
        print(f"\nquery: {q['query']!r}  ({q['latency_ms']:.1f} ms: query encoding, search, "
              f"explanation)")
        for h in q["hits"]:
            print(f"  {h['rank'] + 1}. {h['id']}  score {h['score']:.2f}")
            print(f"     {highlight(h['text'], h['spans'], ansi)}")
    print(f"\np50 query latency {report['p50_query_ms']:.1f} ms (query encoding + search + "
          f"explanation); demo took {report['total_s']:.1f} s")
