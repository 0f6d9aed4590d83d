"""Storage ladder of gingham.Index: bytes, build time, latency and quality per storage kind.

    python bench/storage.py                     # sizes 10,000 and 100,000 documents
    python bench/storage.py --quick             # 2,000 documents, few queries (a smoke run)
    python bench/storage.py --sizes 10000 --kinds fp32,int8

Storage kinds: flat fp32 / fp16 / int8 (every token kept, exhaustive search) and residual
(compressed PLAID codes) with nbits 4 / 2 / 1, plus the single-vector baseline (one mean-pooled,
L2-normalized vector per document, brute-force dot products in numpy).

Synthetic part (bench/_synthetic.py corpus, d = 128): per size and kind, bytes per token on disk
(whole index folder / tokens), build time (create + add in chunks; k-means and encoding
included), single-query p50 latency at 1 thread and all threads (k = 10; PLAID defaults for
residual), recall@10 against exact fp32 MaxSim (gingham.exact_search over the float32 corpus).

Text part (only when the text layer and the cached msmarco embeddings exist; encoding is never
started here): the cached token states of ../shared/data/msmarco
(gingham.eval.cache.EmbeddingCache, the key bench/text_quality.py uses), L2-normalized and
reduced to 128 dimensions by PCA fitted on the corpus (the pca-128 representation of
docs/text_quality.md); each storage kind is built over them and searched with the cached query
embeddings; nDCG@10 by gingham.eval.metrics (pytrec_eval). The single-vector row is the
mean-pooled 384-d states (the bi-encoder row of docs/text_quality.md).

The table goes to stdout and to docs/storage.md (section "storage"). Absolute times depend on
the machine and its load (printed in the header); compare within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import gingham
from _measure import recall_at
from _report import run_header, write_section
from _synthetic import DIM, generate, make_queries, parse_centroids

KINDS = {"fp32": ("fp32", None), "fp16": ("fp16", None), "int8": ("int8", None),
         "residual-4": ("residual", 4), "residual-2": ("residual", 2),
         "residual-1": ("residual", 1)}
SINGLE = "single-vector"


def p50_ms(fn, queries, threads: int) -> float:
    gingham.set_num_threads(threads)
    fn(queries[0])  # warm: page cache, code paths
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(1000 * (time.perf_counter() - t))
    return float(np.percentile(times, 50))


def build(path: str, kind: str, ids: list[str], docs, args, n_centroids: int | None,
          threads: int) -> tuple[gingham.Index, dict]:
    """Create the index and add ``docs`` (a callable a, b -> list of arrays) in chunks."""
    storage, nbits = KINDS[kind]
    gingham.set_num_threads(threads)
    t0 = time.perf_counter()
    extra = {} if storage != "residual" else {"nbits": nbits, "n_centroids": n_centroids,
                                              "seed": args.seed}
    idx = gingham.Index.create(path, dim=docs(0, 1)[0].shape[1], storage=storage, **extra)
    prof = {"kmeans_s": 0.0, "encode_s": 0.0, "write_s": 0.0}
    for a in range(0, len(ids), args.add_chunk):
        b = min(len(ids), a + args.add_chunk)
        idx.add(ids[a:b], docs(a, b))
        for key in prof:
            prof[key] += idx.last_add_profile.get(key, 0.0)
    prof["build_s"] = time.perf_counter() - t0
    st = idx.stats()
    prof.update(bytes_per_token=st["bytes_per_token"], bytes_on_disk=st["bytes_on_disk"],
                bytes_per_doc=st["bytes_on_disk"] / st["n_docs"], n_centroids=st["n_centroids"])
    return idx, prof


def mean_pooled(tokens, offsets: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """(n_docs, d) float32: L2-normalized mean of each document's tokens."""
    n = len(offsets) - 1
    out = np.empty((n, tokens.shape[1]), np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        block = np.asarray(tokens[offsets[a]:offsets[b]], dtype=np.float32)
        out[a:b] = np.add.reduceat(block, offsets[a:b] - offsets[a], axis=0)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def single_vector_search(doc_vecs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = doc_vecs @ q
    top = np.argpartition(-s, k - 1)[:k]
    return top[np.lexsort((top, -s[top]))]


# ---------------------------------------------------------------------- synthetic corpus
def run_size(n_docs: int, args, work: str, threads: int) -> dict:
    res: dict = {"n_docs": n_docs, "kinds": {}}
    large = n_docs > args.small_up_to
    t = time.perf_counter()
    tokens, offsets = generate(n_docs, args.centers, args.noise, args.seed, work)
    res["n_tokens"] = int(offsets[-1])
    n_q = args.queries_large if large else args.queries
    queries = make_queries(tokens, offsets, n_q, args.seed + 1)
    log(f"[{n_docs:,} docs] {res['n_tokens']:,} tokens generated in "
        f"{time.perf_counter() - t:.1f}s; {n_q} queries")
    gingham.set_num_threads(threads)
    t = time.perf_counter()
    _, truth = gingham.exact_search(queries, tokens, offsets, 10, check_finite=False)
    log(f"[{n_docs:,} docs] exact fp32 ground truth in {time.perf_counter() - t:.1f}s")
    ids = [str(i) for i in range(n_docs)]
    n_centroids = args.centroids.get(n_docs)
    res["n_centroids_override"] = n_centroids

    def docs(a, b):
        return [np.asarray(tokens[offsets[i]:offsets[i + 1]]) for i in range(a, b)]

    for kind in (args.kinds_large if large else args.kinds):
        path = os.path.join(work, f"index-{kind}")
        idx, entry = build(path, kind, ids, docs, args, n_centroids, threads)
        gingham.set_num_threads(threads)
        hits = idx.search(queries, k=10)
        entry["recall@10"] = recall_at([[h.id for h in r] for r in hits], truth)
        flat = KINDS[kind][0] != "residual"
        n_lat = (args.latency_queries_flat_large if large and flat else args.latency_queries)
        lat_q = queries[:n_lat]
        entry["latency_queries"] = len(lat_q)
        entry["p50_ms_1t"] = p50_ms(lambda q: idx.search(q, k=10), lat_q, 1)
        entry["p50_ms_all"] = p50_ms(lambda q: idx.search(q, k=10), lat_q, threads)
        res["kinds"][kind] = entry
        log(f"[{n_docs:,} docs] {kind}: {entry['bytes_per_token']:.2f} B/token, build "
            f"{entry['build_s']:.1f}s, p50 {entry['p50_ms_1t']:.1f} / {entry['p50_ms_all']:.1f} "
            f"ms, recall@10 {entry['recall@10']:.3f}")
        idx.close()
        idx = None  # release the mapped files before the next size
        shutil.rmtree(path, ignore_errors=True)
    if args.single_vector:
        gingham.set_num_threads(threads)
        t = time.perf_counter()
        vecs = mean_pooled(tokens, offsets)
        qv = np.stack([q.mean(axis=0) for q in queries]).astype(np.float32)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        found = [[str(i) for i in single_vector_search(vecs, q, 10)] for q in qv]
        res["kinds"][SINGLE] = {
            "build_s": time.perf_counter() - t, "bytes_per_doc": vecs.shape[1] * 4,
            "bytes_per_token": vecs.shape[1] * 4 * n_docs / res["n_tokens"],
            "recall@10": recall_at(found, truth), "latency_queries": len(qv),
            "p50_ms_1t": p50_ms(lambda q: single_vector_search(vecs, q, 10), qv, 1),
            "p50_ms_all": p50_ms(lambda q: single_vector_search(vecs, q, 10), qv, threads)}
    tokens = None  # release the corpus before the next size
    return res


# ---------------------------------------------------------------------- msmarco
def text_part(args, work: str, threads: int) -> dict | None:
    """nDCG@10 per storage kind over the cached msmarco embeddings; None (with a message) when
    the text layer, the data or the embedding cache is missing."""
    folder = os.path.join(args.data, "msmarco")
    if not os.path.isdir(folder):
        log(f"msmarco: no data at {folder}; the nDCG@10 column is left out")
        return None
    try:
        from gingham.eval.cache import EmbeddingCache, cache_key
        from gingham.eval.metrics import evaluate_run
        from gingham.text.beir import load_beir
        from gingham.text.encoder import Encoder, mean_pool
        from gingham.text.pca import PCAReducer, l2_normalize
    except ImportError as exc:
        log(f"msmarco: text layer not installed ({exc}); the nDCG@10 column is left out")
        return None
    ds = load_beir(folder)
    qids, qtexts = ds.judged_queries
    cache = EmbeddingCache(args.cache)
    enc = Encoder(projection="none", skiplist="none", normalize=False, show_progress=False)
    states_q = cache.get(cache_key(enc, qtexts, ds.corpus_path.replace("corpus", "queries"),
                                   "queries"))
    states_d = cache.get(cache_key(enc, ds.doc_texts, ds.corpus_path, "documents"))
    if states_q is None or states_d is None:
        log("msmarco: the nDCG@10 column needs the text cache (run bench/text_quality.py once, "
            f"about 12 minutes of encoding, cache in {cache.cache_dir}); left out")
        return None
    states_d = [np.asarray(s, dtype=np.float32) for s in states_d]
    states_q = [np.asarray(s, dtype=np.float32) for s in states_q]
    raw_d = [l2_normalize(s) for s in states_d]
    raw_q = [l2_normalize(s) for s in states_q]
    pca = PCAReducer.fit(raw_d, DIM)
    docs_d, docs_q = pca.apply(raw_d), pca.apply(raw_q)
    n_tokens = sum(d.shape[0] for d in docs_d)
    out: dict = {"n_docs": len(docs_d), "n_queries": len(qids), "n_tokens": n_tokens,
                 "kinds": {}}
    log(f"msmarco: {len(docs_d)} docs, {n_tokens:,} tokens, {len(qids)} judged queries")
    truth_ids = None
    for kind in args.kinds:
        path = os.path.join(work, f"msmarco-{kind}")
        idx, entry = build(path, kind, list(ds.doc_ids), lambda a, b: docs_d[a:b], args, None,
                           threads)
        hits = idx.search(docs_q, k=10)
        ranked = [[h.id for h in r] for r in hits]
        entry.update(evaluate_run(dict(zip(qids, ranked)), ds.qrels))
        if kind == "fp32":
            truth_ids = ranked
        if truth_ids is not None:
            entry["overlap@10_fp32"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b
                                                      in zip(ranked, truth_ids)]))
        out["kinds"][kind] = entry
        log(f"msmarco {kind}: {entry['bytes_per_doc']:.0f} B/doc, nDCG@10 "
            f"{entry['ndcg@10']:.4f}")
        idx.close()
        idx = None  # release the mapped files before the next size
        shutil.rmtree(path, ignore_errors=True)
    vecs = mean_pool(states_d)
    qv = mean_pool(states_q)
    ranked = [[ds.doc_ids[i] for i in single_vector_search(vecs, q, 10)] for q in qv]
    entry = evaluate_run(dict(zip(qids, ranked)), ds.qrels)
    entry["bytes_per_doc"] = vecs.shape[1] * 4
    entry["dim"] = vecs.shape[1]
    out["kinds"][SINGLE] = entry
    return out


# ---------------------------------------------------------------------- report
def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summary_table(report: dict) -> str:
    sizes = report["sizes"]
    text = report.get("msmarco")
    head = ["storage", "B/token"]
    for s in sizes:
        n = f"{s['n_docs'] // 1000}k"
        head += [f"build s {n}", f"p50 ms 1t {n}", f"p50 ms {report['threads']}t {n}",
                 f"recall@10 {n}"]
    if text:
        head += ["msmarco B/doc", "msmarco nDCG@10"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in report["kinds"] + ([SINGLE] if report["single_vector"] else []):
        ref = next((s["kinds"][kind] for s in reversed(sizes) if kind in s["kinds"]), None)
        row = [kind + (" (mean-pooled)" if kind == SINGLE else ""),
               fmt(ref and ref["bytes_per_token"], ".2f")]
        for s in sizes:
            e = s["kinds"].get(kind)
            row += ["-"] * 4 if e is None else [
                f"{e['build_s']:.1f}", f"{e['p50_ms_1t']:.2f}", f"{e['p50_ms_all']:.2f}",
                f"{e['recall@10']:.3f}"]
        if text:
            e = text["kinds"].get(kind)
            row += ["-", "-"] if e is None else [f"{e['bytes_per_doc']:,.0f}",
                                                 f"{e['ndcg@10']:.3f}"]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def detail_lines(report: dict) -> list[str]:
    lines = []
    for s in report["sizes"]:
        cents = s["n_centroids_override"]
        lines.append(f"- {s['n_docs']:,} documents, {s['n_tokens']:,} tokens "
                     f"({s['n_tokens'] / s['n_docs']:.1f} per document); residual centroids: "
                     + (f"{cents} (override; the default 2^floor(log2(16 sqrt(tokens))) would "
                        f"be {default_centroids(s['n_tokens'])})" if cents else
                        "default") + ".")
        for kind, e in s["kinds"].items():
            if kind == SINGLE:
                lines.append(f"  - {kind}: {e['bytes_per_doc']} B/doc (d = {DIM} fp32), "
                             f"recall@10 {e['recall@10']:.3f} vs exact MaxSim")
                continue
            lines.append(
                f"  - {kind}: {e['bytes_on_disk'] / 2**20:,.1f} MiB on disk, "
                f"{e['bytes_per_doc']:,.0f} B/doc; build {e['build_s']:.1f}s (k-means "
                f"{e['kmeans_s']:.1f}s, encode {e['encode_s']:.1f}s, write "
                f"{e['write_s']:.1f}s); centroids {e['n_centroids']}; latency over "
                f"{e['latency_queries']} queries")
    return lines


def default_centroids(n_tokens: int) -> int:
    return int(2 ** np.floor(np.log2(16 * np.sqrt(n_tokens))))


def targets(report: dict) -> list[str]:
    out = []
    for s in report["sizes"]:
        k = s["kinds"]
        if "int8" in k and "fp32" in k:
            ratio = k["int8"]["bytes_per_token"] / k["fp32"]["bytes_per_token"]
            out.append(f"- {s['n_docs']:,} docs: int8 / fp32 bytes = {ratio:.3f} (target <= "
                       f"{1 / 3.5:.3f}: {'met' if ratio <= 1 / 3.5 else 'MISSED'}); int8 "
                       f"recall@10 {k['int8']['recall@10']:.3f} (target >= 0.99: "
                       f"{'met' if k['int8']['recall@10'] >= 0.99 else 'MISSED'})")
        if "int8" in k and "fp16" in k:
            for t in ("1t", "all"):
                r = k["int8"][f"p50_ms_{t}"] / k["fp16"][f"p50_ms_{t}"]
                out.append(f"  - int8 / fp16 p50 latency ({t}): {r:.2f} (target <= 1: "
                           f"{'met' if r <= 1.0 else 'MISSED'})")
    return out


def render(report: dict) -> str:
    text = report.get("msmarco")
    parts = ["## Storage ladder (bench/storage.py)", "", report["header"], "",
             summary_table(report), "",
             "B/token: whole index folder on disk (catalog, manifests, offsets, codec included) "
             "/ stored tokens, at the largest size the kind ran at; '-': the kind was not run "
             f"at that size (--kinds-large); for the single-vector row: {DIM * 4} B/doc "
             "spread over the tokens. Latency: one query (32 tokens) at a time, k = 10 "
             "(PLAID defaults for residual), median. recall@10 against exact fp32 MaxSim over "
             "the float32 corpus. Build: Index.create + add in chunks of "
             f"{report['add_chunk']:,} documents (k-means and encoding included).", "",
             "Details:", "", *detail_lines(report), "", "Targets:", "",
             *targets(report), ""]
    if text:
        parts += [f"msmarco ({text['n_docs']:,} documents, {text['n_tokens']:,} tokens, "
                  f"{text['n_queries']} judged queries): cached token states of the default "
                  "model (all-MiniLM-L6-v2), L2-normalized, PCA to 128 dimensions (the pca-128 "
                  "representation of docs/text_quality.md); residual with the default centroid "
                  "count; k = 10. Single vector: mean-pooled 384-d states, fp32 (the bi-encoder "
                  "row of docs/text_quality.md).", "",
                  "| storage | B/doc on disk | nDCG@10 | MRR@10 | top-10 overlap with fp32 | "
                  "build s |", "|---|---|---|---|---|---|"]
        for kind, e in text["kinds"].items():
            parts.append(f"| {kind} | {e['bytes_per_doc']:,.0f} | {e['ndcg@10']:.3f} | "
                         f"{e['mrr@10']:.3f} | {fmt(e.get('overlap@10_fp32'), '.3f')} | "
                         f"{fmt(e.get('build_s'), '.1f')} |")
        parts.append("")
    else:
        parts += ["msmarco nDCG@10: left out (needs the text layer and the cached embeddings of "
                  "bench/text_quality.py).", ""]
    return "\n".join(parts)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="document counts (comma-separated)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2,000 documents, few queries, no docs/ output")
    p.add_argument("--kinds", default=",".join(KINDS), help="storage kinds to run")
    p.add_argument("--kinds-large", default=None,
                   help="storage kinds above --small-up-to documents (default: --kinds)")
    p.add_argument("--no-single-vector", dest="single_vector", action="store_false")
    p.add_argument("--centroids", default="10000:4096,100000:8192",
                   help="size:n_centroids overrides for residual (as bench/plaid.py; other "
                        "sizes and msmarco use the default count)")
    p.add_argument("--centers", type=int, default=1024)
    p.add_argument("--noise", type=float, default=0.6)
    p.add_argument("--queries", type=int, default=50, help="queries for recall (small sizes)")
    p.add_argument("--queries-large", type=int, default=20,
                   help="queries for recall above --small-up-to documents")
    p.add_argument("--small-up-to", type=int, default=20_000)
    p.add_argument("--latency-queries", type=int, default=20)
    p.add_argument("--latency-queries-flat-large", type=int, default=3,
                   help="latency queries for flat kinds above --small-up-to (seconds each)")
    p.add_argument("--add-chunk", type=int, default=25_000, help="documents per add() call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    p.add_argument("--cache", default=None, help="embedding cache folder (default: "
                                                 "$GINGHAM_CACHE or ~/.cache/gingham)")
    p.add_argument("--no-text", dest="text", action="store_false", help="skip msmarco")
    p.add_argument("--out", default=os.path.join(here, "..", "docs", "storage.md"))
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--workdir", help="folder for corpora and indexes (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.latency_queries = "2000", 10, 5
        args.out = None
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.kinds_large = (args.kinds if args.kinds_large is None else
                        [k for k in args.kinds_large.split(",") if k])
    unknown = sorted(set(args.kinds + args.kinds_large) - set(KINDS))
    if unknown:
        p.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    args.centroids = parse_centroids(args.centroids)
    load_start = os.getloadavg()
    threads = gingham.get_num_threads()
    report: dict = {"threads": threads, "sizes": [],
                    "kinds": args.kinds + [k for k in args.kinds_large if k not in args.kinds],
                    "single_vector": args.single_vector, "add_chunk": args.add_chunk}
    work = tempfile.mkdtemp(prefix="gingham-storage-", dir=args.workdir)
    try:
        for n_docs in (int(s) for s in args.sizes.split(",")):
            folder = os.path.join(work, str(n_docs))
            os.makedirs(folder)
            report["sizes"].append(run_size(n_docs, args, folder, threads))
            shutil.rmtree(folder, ignore_errors=True)
            if args.json:  # partial results survive an interrupted long run
                with open(args.json, "w") as f:
                    json.dump(report, f, indent=2, default=str)
        if args.text:
            report["msmarco"] = text_part(args, work, threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        gingham.set_num_threads(threads)
    report["header"] = run_header(load_start)
    text = render(report)
    print(text)
    if args.out:
        write_section(args.out, "storage", text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
