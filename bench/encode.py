"""Encoder throughput and quality: torch vs ONNX fp32 vs ONNX int8, side by side in one run.

Throughput: the same ``--n`` passages of a BEIR corpus (default: the first 1,000 of msmarco)
encoded as documents by each backend (tokens -> transformer -> normalized token vectors, no
pooling or PCA: the encoder alone), after a warm-up batch; model load / ONNX export are timed
apart. Quality (``--quality``): nDCG@10 of each backend through ``gingham eval``'s machinery
(``fit_cached`` / ``encode_cached`` with the recommended settings, exact MaxSim and the PLAID
index, ``evaluate_run``) on the whole corpus; embeddings are cached per encoder fingerprint.

    PYTHONPATH=python python bench/encode.py /work/shared/data/msmarco --n 1000 --quality
"""
from __future__ import annotations

import argparse
import json
import os
import time

from gingham.eval.cache import EmbeddingCache, encode_cached, fit_cached
from gingham.eval.compare import EVAL_DEPTH, run_late_interaction, run_plaid
from gingham.eval.metrics import evaluate_run
from gingham.text.beir import load_beir
from gingham.text.encoder import RECOMMENDED_SETTINGS, Encoder

BACKENDS = {"torch": {"backend": "torch"},
            "onnx fp32": {"backend": "onnx"},
            "onnx int8": {"backend": "onnx", "quantize": "int8"}}


def throughput(texts: list[str], options: dict, batch_size: int, threads: int | None) -> dict:
    """{load_s, docs_per_s, tokens_per_s, tokens} of encoding ``texts`` as documents."""
    enc = Encoder(skiplist="none", show_progress=False, batch_size=batch_size,
                  num_threads=threads, **options)
    t0 = time.perf_counter()
    enc.ready()
    enc.encode_documents_unpooled(texts[:batch_size])  # warm-up: allocations, kernels
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = enc.encode_documents_unpooled(texts)
    secs = time.perf_counter() - t0
    tokens = sum(len(e) for e in out)
    return {"load_s": load_s, "seconds": secs, "docs_per_s": len(texts) / secs,
            "tokens_per_s": tokens / secs, "tokens": tokens}


def quality(ds, options: dict, cache: EmbeddingCache, nbits: int) -> dict:
    """{ndcg@10 exact, ndcg@10 plaid, encode_s (0 on a cache hit)} of one backend."""
    qids, qtexts = ds.judged_queries
    qpath = os.path.join(os.path.dirname(ds.corpus_path), "queries.jsonl")
    enc = Encoder(pca_dim=RECOMMENDED_SETTINGS["pca_dim"],
                  pool_factor=RECOMMENDED_SETTINGS["pool_factor"], show_progress=False,
                  **options)
    t0 = time.perf_counter()
    enc, docs = fit_cached(enc, ds.doc_texts, ds.corpus_path, cache)
    queries = encode_cached(enc, qtexts, qpath, "queries", cache)
    encode_s = time.perf_counter() - t0
    exact = run_late_interaction(ds.doc_ids, queries, docs, EVAL_DEPTH)
    (plaid, _, _), _ = run_plaid(ds.doc_ids, queries, docs, nbits, EVAL_DEPTH)
    return {"ndcg@10 exact": evaluate_run(dict(zip(qids, exact[0])), ds.qrels)["ndcg@10"],
            "ndcg@10 plaid": evaluate_run(dict(zip(qids, plaid)), ds.qrels)["ndcg@10"],
            "fit_and_queries_s": encode_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    ap.add_argument("--n", type=int, default=1000, help="passages for the throughput runs")
    ap.add_argument("--join", type=int, default=1,
                    help="texts of JOIN consecutive passages each (long inputs; truncated at "
                         "the model's max length)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (all cores)")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--quality", action="store_true", help="also nDCG@10 on the whole corpus")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--nbits", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args()
    ds = load_beir(args.dataset, "test")
    names = args.backends.split(",")
    rows = {name: {} for name in names}
    load = os.getloadavg()[0]
    if not args.skip_throughput:
        passages = ds.doc_texts[:args.n * args.join]
        texts = [" ".join(passages[i:i + args.join]) for i in range(0, len(passages), args.join)]
        for name in names:
            rows[name].update(throughput(texts, BACKENDS[name], args.batch_size, args.threads))
    if args.quality:
        cache = EmbeddingCache(args.cache_dir)
        for name in names:
            rows[name].update(quality(ds, BACKENDS[name], cache, args.nbits))
    print(f"{args.dataset}: throughput on {args.n} texts of {args.join} passage(s) (the first "
          f"{args.n * args.join} passages), batch {args.batch_size},"
          f" {os.cpu_count()} cores, load average {load:.1f} at start")
    base = rows[names[0]].get("docs_per_s")
    for name in names:
        r = rows[name]
        line = f"{name:<10}"
        if "docs_per_s" in r:
            line += (f" {r['docs_per_s']:8.1f} docs/s {r['tokens_per_s']:9.0f} tokens/s "
                     f"x{r['docs_per_s'] / base:4.2f}  load {r['load_s']:5.1f} s")
        if "ndcg@10 exact" in r:
            line += (f"  nDCG@10 exact {r['ndcg@10 exact']:.4f} plaid "
                     f"{r['ndcg@10 plaid']:.4f}")
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"load_average": load, "n": args.n, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
