"""Benchmark of the compressed PLAID index against exact fp32 MaxSim, in one run.

    python bench/plaid.py                       # sizes 10,000 and 100,000 documents
    python bench/plaid.py --sizes 10000 --nbits 1,2,4

Corpus: seeded synthetic token vectors (d = 128) around `--centers` centers on the unit sphere
plus noise; each document (32-180 tokens) draws its tokens from 4 centers. Queries (32 tokens)
are perturbed tokens of random documents. The corpus is generated in chunks into a disk-backed
float32 memmap (the 100,000-document corpus is 5.4 GB) and added to the index in chunks.

Reported per size: numpy sgemm peak and the k-means assignment kernel's GFLOP/s; per nbits:
build times (k-means, encoding; tokens/s), bytes per token on disk, and for k = 10/100/1000 with
PLAID's defaults: recall@10 / recall@100 against exact fp32 MaxSim, batch throughput (all
threads), single-query p50/p95 at 1 and 2 threads, next to exact fp32 search timed in the same
run. Ratios are what matter: absolute times depend on the machine and its load.
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
from _measure import latency_percentiles, recall_at
from _synthetic import DIM, Q_TOKENS, generate, make_queries, parse_centroids  # noqa: F401
from gingham import _core


def sgemm_peak() -> float:
    """Best numpy float32 matmul GFLOP/s over a few 2048^3 products (BLAS threads: default)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    a @ b
    best = 0.0
    for _ in range(4):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def assign_gflops(threads: int, n_centroids: int = 4096, n: int = 60_000) -> float:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    c = rng.standard_normal((n_centroids, DIM), dtype=np.float32)
    gingham.set_num_threads(threads)
    _core.kmeans_assign(x[:1000], c)
    best = 0.0
    for _ in range(2):
        t = time.perf_counter()
        _core.kmeans_assign(x, c)
        best = max(best, 2 * n * n_centroids * DIM / (time.perf_counter() - t) / 1e9)
    return best


def run_size(n_docs: int, args, work: str, threads: int) -> dict:
    res: dict = {"n_docs": n_docs}
    t = time.perf_counter()
    tokens, offsets = generate(n_docs, args.centers, args.noise, args.seed, work)
    res["n_tokens"] = int(offsets[-1])
    res["generate_s"] = time.perf_counter() - t
    queries = make_queries(tokens, offsets, args.queries, args.seed + 1)
    lat_queries = queries[:args.latency_queries]
    print(f"[{n_docs:,} docs] {res['n_tokens']:,} tokens generated in {res['generate_s']:.1f}s",
          file=sys.stderr)

    # exact fp32 ground truth (top 100, all threads) and single-query latency (1 thread)
    gingham.set_num_threads(threads)
    t = time.perf_counter()
    _, truth = gingham.exact_search(queries, tokens, offsets, 100, check_finite=False)
    res["exact_batch_qps"] = len(queries) / (time.perf_counter() - t)
    gingham.set_num_threads(1)
    res["exact_p50_ms_1t"], res["exact_p95_ms_1t"] = latency_percentiles(
        lambda q: gingham.exact_search(q, tokens, offsets, 10, check_finite=False),
        queries[:args.exact_latency_queries], (50, 95))
    print(f"[{n_docs:,} docs] exact fp32: {res['exact_p50_ms_1t']:.0f} ms p50 (1 thread)",
          file=sys.stderr)

    n_centroids = args.centroids.get(n_docs)
    res["runs"] = []
    nbits_list = args.nbits if n_docs <= args.all_nbits_up_to else args.nbits_large
    for nbits in nbits_list:
        gingham.set_num_threads(threads)
        path = os.path.join(work, f"index-{nbits}")
        idx = gingham.Index.create(path, dim=DIM, nbits=nbits, n_centroids=n_centroids,
                                   seed=args.seed, kmeans_iters=args.kmeans_iters)
        build = {"kmeans_s": 0.0, "encode_s": 0.0, "ivf_s": 0.0, "write_s": 0.0}
        t_all = time.perf_counter()
        for a in range(0, n_docs, args.add_chunk):
            b = min(n_docs, a + args.add_chunk)
            embs = [np.asarray(tokens[offsets[i]:offsets[i + 1]]) for i in range(a, b)]
            idx.add([str(i) for i in range(a, b)], embs)
            for key in build:
                build[key] += idx.last_add_profile.get(key, 0.0)
            if a == 0:
                build["kmeans_sample"] = idx.last_add_profile["kmeans_sample"]
        build["total_s"] = time.perf_counter() - t_all
        st = idx.stats()
        run = {"nbits": nbits, "n_centroids": st["n_centroids"], "build": build,
               "kmeans_tokens_per_s": build["kmeans_sample"] * args.kmeans_iters
               / build["kmeans_s"],
               "encode_tokens_per_s": res["n_tokens"] / build["encode_s"],
               "bytes_per_token": st["bytes_per_token"],
               "code_bytes_per_token": st["code_bytes_per_token"], "k": {}}
        codes_q = queries[:args.codes_exact_queries]
        ex_hits = idx.search(codes_q, k=100, mode="exact")
        ex_ids = [[h.id for h in r] for r in ex_hits]
        run["exact_codes_recall@10"] = recall_at(ex_ids, truth, 10)
        run["exact_codes_recall@100"] = recall_at(ex_ids, truth, 100)
        print(f"[{n_docs:,} docs] nbits {nbits}: built in {build['total_s']:.1f}s "
              f"({st['bytes_per_token']:.2f} B/token)", file=sys.stderr)
        for k in (10, 100, 1000):
            gingham.set_num_threads(threads)
            idx.search(queries[:2], k=k)
            t = time.perf_counter()
            hits, stats = idx.search(queries, k=k, return_stats=True)
            qps = len(queries) / (time.perf_counter() - t)
            ids = [[h.id for h in row] for row in hits]
            entry = {"recall@10": recall_at(ids, truth, 10), "batch_qps": qps,
                     "counts": stats["counts_mean"],
                     "stage_ms_per_query": {s: v / len(queries)
                                            for s, v in stats["stages_ms"].items()}}
            if k >= 100:
                entry["recall@100"] = recall_at(ids, truth, 100)
            for th in (1, 2):
                gingham.set_num_threads(th)
                p50, p95 = latency_percentiles(
                    lambda q: idx.search(q, k=k), lat_queries, (50, 95))
                entry[f"p50_ms_{th}t"], entry[f"p95_ms_{th}t"] = p50, p95
            entry["speedup_vs_exact_1t"] = res["exact_p50_ms_1t"] / entry["p50_ms_1t"]
            run["k"][k] = entry
            print(f"[{n_docs:,} docs] nbits {nbits} k {k}: recall@10 {entry['recall@10']:.3f} "
                  f"p50 {entry['p50_ms_1t']:.1f} ms (1t)", file=sys.stderr)
        res["runs"].append(run)
        idx = None  # release the mapped files before the next size
        shutil.rmtree(path, ignore_errors=True)
    tokens = None  # release the corpus before the next size
    return res


def print_table(report: dict) -> None:
    print(f"\ngingham bench/plaid.py  (SIMD {report['simd_level']}, {report['threads']} threads; "
          f"numpy sgemm peak {report['sgemm_gflops']:.1f} GFLOP/s; k-means assignment "
          f"{report['assign_gflops_all']:.1f} GFLOP/s = {report['assign_vs_peak']:.0%} of peak, "
          f"{report['assign_gflops_1t']:.1f} GFLOP/s on 1 thread)\n")
    head = ("| docs | nbits | cents | kmeans s | kmeans tok/s | encode s | encode tok/s | B/tok "
            "(codes+res) | k | recall@10 | recall@100 | p50 1t ms | p95 1t ms | p50 2t ms | "
            "p95 2t ms | batch q/s | exact p50 1t ms | speedup 1t |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for size in report["sizes"]:
        for run in size["runs"]:
            b = run["build"]
            for k, e in run["k"].items():
                r100 = f"{e['recall@100']:.3f}" if "recall@100" in e else "-"
                print(f"| {size['n_docs']:,} | {run['nbits']} | {run['n_centroids']} | "
                      f"{b['kmeans_s']:.1f} | {run['kmeans_tokens_per_s']:,.0f} | "
                      f"{b['encode_s']:.1f} | {run['encode_tokens_per_s']:,.0f} | "
                      f"{run['bytes_per_token']:.2f} ({run['code_bytes_per_token']:.0f}) | {k} | "
                      f"{e['recall@10']:.3f} | {r100} | {e['p50_ms_1t']:.2f} | "
                      f"{e['p95_ms_1t']:.2f} | {e['p50_ms_2t']:.2f} | {e['p95_ms_2t']:.2f} | "
                      f"{e['batch_qps']:.1f} | {size['exact_p50_ms_1t']:.0f} | "
                      f"{e['speedup_vs_exact_1t']:.0f}x |")
    print("\nrecall of mode='exact' (every document scored from its codes: the codec's own loss)")
    for size in report["sizes"]:
        for run in size["runs"]:
            print(f"  {size['n_docs']:,} docs, nbits {run['nbits']}: recall@10 "
                  f"{run['exact_codes_recall@10']:.3f}, recall@100 "
                  f"{run['exact_codes_recall@100']:.3f}")
    for size in report["sizes"]:
        print(f"\nexact fp32 at {size['n_docs']:,} docs: batch {size['exact_batch_qps']:.2f} "
              f"q/s, single p50 {size['exact_p50_ms_1t']:.0f} ms / p95 "
              f"{size['exact_p95_ms_1t']:.0f} ms (1 thread)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="document counts (comma-separated)")
    p.add_argument("--nbits", default="1,2,4", help="nbits to run at the smaller sizes")
    p.add_argument("--nbits-large", default="2", help="nbits to run above --all-nbits-up-to")
    p.add_argument("--all-nbits-up-to", type=int, default=10_000)
    p.add_argument("--centroids", default="10000:4096,100000:8192",
                   help="size:n_centroids pairs ('auto' = 2^floor(log2(16 sqrt(tokens))))")
    p.add_argument("--kmeans-iters", type=int, default=10)
    p.add_argument("--centers", type=int, default=1024, help="cluster centers of the corpus")
    p.add_argument("--noise", type=float, default=0.6, help="noise norm relative to a center")
    p.add_argument("--queries", type=int, default=100, help="queries for recall and throughput")
    p.add_argument("--latency-queries", type=int, default=40)
    p.add_argument("--exact-latency-queries", type=int, default=5)
    p.add_argument("--codes-exact-queries", type=int, default=20,
                   help="queries for the recall of mode='exact' (every document from codes)")
    p.add_argument("--add-chunk", type=int, default=25_000, help="documents per add() call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--workdir", help="folder for the corpus and indexes (default: a temp dir)")
    args = p.parse_args(argv)
    args.nbits = [int(x) for x in args.nbits.split(",")]
    args.nbits_large = [int(x) for x in args.nbits_large.split(",")]
    args.centroids = parse_centroids(args.centroids)
    threads = gingham.get_num_threads()
    report = {"simd_level": gingham.simd_level(), "threads": threads,
              "sgemm_gflops": sgemm_peak()}
    report["assign_gflops_all"] = assign_gflops(threads)
    report["assign_gflops_1t"] = assign_gflops(1)
    report["assign_vs_peak"] = report["assign_gflops_all"] / report["sgemm_gflops"]
    gingham.set_num_threads(threads)
    report["sizes"] = []
    work = tempfile.mkdtemp(prefix="gingham-bench-", dir=args.workdir)
    try:
        for n_docs in (int(s) for s in args.sizes.split(",")):
            folder = os.path.join(work, str(n_docs))
            os.makedirs(folder)
            report["sizes"].append(run_size(n_docs, args, folder, threads))
            shutil.rmtree(folder, ignore_errors=True)
            gingham.set_num_threads(threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
