"""How each cost of a residual index grows with the corpus: a streamed build and search at
10k -> 100k (-> 1M) documents, in one run.

    python bench/scale.py                                  # 10,000 and 100,000 documents
    nice -n 5 python bench/scale.py --sizes 10000,100000,1000000 --json scale.json

Corpus: ``gingham._synthetic.SkewedCorpus`` (d = 128; 4,096 centers with Zipf-skewed
popularity; each document drawn around a 12-center topic; ~80 tokens per document, gamma
lengths), generated chunk by chunk and never held whole: the codec trains on a sample of
whole 256-document blocks drawn across the corpus (``gingham.sample_tokens``), then the chunks
are added with ``Index.add_batches`` (one segment each). The ground truth (exact fp32 MaxSim
top 100 of a query subset) is accumulated chunk by chunk in the same pass, outside the timed
build stages. Queries (32 tokens) are 24 perturbed tokens of one document plus 8 fresh ones.

Reported per size: build time per stage (sampling, k-means + bucket fit, encoding + IVF,
commit = segment writes and catalog) and tokens/s, bytes per token on disk, peak RSS of the
build (VmHWM, reset when the build starts) and RSS of a fresh process after ``Index.open`` and
after its first searches, single-query p50/p99 at 1 and 2 threads for PLAID's k = 10 and
k = 100 defaults (and mode="exact" from codes up to ``--exact-max-docs``), batch throughput,
recall@10/@100 against exact fp32 and recall@10 of PLAID against mode="exact" over the same
codes. Ends with the fitted growth exponents (slope of log cost over log N).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import gingham
from _measure import latency_percentiles, recall_at
from gingham._synthetic import SkewedCorpus

BLOCK_DOCS = 256  # documents per sampled block: consecutive documents are independent draws
PRESETS = (10, 100)
_HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(field: str = "VmRSS") -> int:
    """This process's VmRSS / VmHWM (peak) in KiB, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def draw_sample(corpus: SkewedCorpus, n_tokens: int, seed: int) -> np.ndarray:
    """``n_tokens`` rows sampled from random whole blocks covering ~4x that many tokens."""
    n_blocks = -(-corpus.n_docs // BLOCK_DOCS)
    want = min(n_blocks, max(1, math.ceil(4 * n_tokens / (BLOCK_DOCS * corpus.mean_len))))
    blocks = np.sort(np.random.default_rng(seed).choice(n_blocks, want, replace=False))
    parts = [corpus.chunk(b * BLOCK_DOCS, min(corpus.n_docs, (b + 1) * BLOCK_DOCS))[0]
             for b in blocks.tolist()]
    return gingham.sample_tokens(np.concatenate(parts), n_tokens, seed=seed)


class Truth:
    """Exact fp32 top-``depth`` of queries over chunks seen so far (ties: lower doc number)."""

    def __init__(self, queries: list[np.ndarray], depth: int):
        self.queries, self.depth = queries, depth
        self.scores = np.full((len(queries), 0), -np.inf, np.float32)
        self.ids = np.zeros((len(queries), 0), np.int64)
        self.seconds = 0.0

    def update(self, tokens: np.ndarray, offsets: np.ndarray, first_doc: int) -> None:
        clock = time.perf_counter()
        scores, local = gingham.exact_search(self.queries, tokens, offsets, self.depth,
                                             check_finite=False)
        all_scores = np.concatenate([self.scores, scores], axis=1)
        all_ids = np.concatenate([self.ids, local + first_doc], axis=1)
        for q in range(len(self.queries)):
            order = np.lexsort((all_ids[q], -all_scores[q].astype(np.float64)))[:self.depth]
            all_scores[q, :len(order)] = all_scores[q, order]
            all_ids[q, :len(order)] = all_ids[q, order]
        self.scores, self.ids = all_scores[:, :self.depth], all_ids[:, :self.depth]
        self.seconds += time.perf_counter() - clock


def build(corpus: SkewedCorpus, path: str, truth: Truth, args, log) -> dict:
    """Streamed build of ``corpus`` into ``path`` -> stage times, RSS, sizes."""
    reset_peak_rss()
    idx = gingham.Index.create(path, dim=corpus.dim, nbits=args.nbits,
                               n_centroids=args.centroids, seed=args.seed,
                               kmeans_iters=args.kmeans_iters)
    clock = time.perf_counter()
    sample = draw_sample(corpus, idx.codec_sample_size, args.seed)
    sampling_s = time.perf_counter() - clock
    generate = {"s": 0.0}

    def batches():
        for a in range(0, corpus.n_docs, args.batch_docs):
            b = min(corpus.n_docs, a + args.batch_docs)
            t = time.perf_counter()
            tokens, offsets = corpus.chunk(a, b)
            generate["s"] += time.perf_counter() - t
            truth.update(tokens, offsets, a)
            yield ([str(i) for i in range(a, b)],
                   [tokens[offsets[i]:offsets[i + 1]] for i in range(b - a)])
            log(f"added {b:,} / {corpus.n_docs:,} documents")

    idx.add_batches(batches(), codec_sample=sample)
    del sample
    p = idx.last_add_profile
    stats = idx.stats()
    idx.close()
    out = {"n_tokens": stats["n_tokens"], "n_segments": stats["n_segments"],
           "n_centroids": stats["n_centroids"], "kmeans_sample": p["kmeans_sample"],
           "sampling_s": sampling_s, "kmeans_s": p["kmeans_s"] + p["buckets_s"],
           "encode_s": p["encode_s"] + p["ivf_s"], "commit_s": p["write_s"],
           "generate_s": generate["s"], "truth_s": truth.seconds,
           "bytes_per_token": stats["bytes_per_token"],
           "data_bytes_per_token": stats["data_bytes_per_token"],
           "build_peak_rss_mib": rss_kib("VmHWM") / 1024}
    out["build_s"] = out["sampling_s"] + out["kmeans_s"] + out["encode_s"] + out["commit_s"]
    out["build_tokens_per_s"] = out["n_tokens"] / out["build_s"]
    out["encode_tokens_per_s"] = out["n_tokens"] / out["encode_s"]
    out["kmeans_tokens_per_s"] = p["kmeans_sample"] * args.kmeans_iters / p["kmeans_s"]
    return out


def open_rss(path: str, query_file: str) -> dict:
    """RSS (MiB) of a fresh process after Index.open and after searching the saved queries."""
    code = ("import json, sys, numpy as np, gingham\n"
            "from scale import rss_kib\n"
            "base = rss_kib()\n"
            "idx = gingham.Index.open(sys.argv[1])\n"
            "opened = rss_kib()\n"
            "idx.search(list(np.load(sys.argv[2])), k=10)\n"
            "print(json.dumps({'python_rss_mib': base / 1024, 'open_rss_mib': opened / 1024,"
            " 'searched_rss_mib': rss_kib() / 1024}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [_HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-c", code, path, query_file], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def search_costs(path: str, queries: list[np.ndarray], truth: Truth, args, n_docs: int,
                 threads: int) -> dict:
    """Latency, throughput and recall of the presets (and exact from codes) on one index."""
    idx = gingham.Index.open(path)
    subset = queries[:len(truth.queries)]
    gingham.set_num_threads(threads)
    codes_q = subset[:args.codes_queries]
    clock = time.perf_counter()
    exact_codes = [[h.id for h in row] for row in idx.search(codes_q, k=100, mode="exact")]
    out: dict = {"exact_codes_batch_s_per_query": (time.perf_counter() - clock) / len(codes_q),
                 "exact_codes_recall@10": recall_at(exact_codes, truth.ids, 10),
                 "exact_codes_recall@100": recall_at(exact_codes, truth.ids, 100), "presets": {}}
    code_truth = np.array([[int(i) for i in row] for row in exact_codes])
    lat_q = queries[:args.latency_queries]
    for k in PRESETS:
        gingham.set_num_threads(threads)
        idx.search(queries[:2], k=k)
        clock = time.perf_counter()
        hits, stats = idx.search(queries, k=k, return_stats=True)
        entry = {"batch_qps": len(queries) / (time.perf_counter() - clock),
                 "counts": stats["counts_mean"]}
        ids = [[h.id for h in row] for row in hits[:len(subset)]]
        entry["recall@10"] = recall_at(ids, truth.ids, 10)
        entry["recall@10_vs_codes"] = recall_at(ids[:len(codes_q)], code_truth, 10)
        if k >= 100:
            entry["recall@100"] = recall_at(ids, truth.ids, 100)
        for th in (1, 2):
            gingham.set_num_threads(th)
            entry[f"p50_ms_{th}t"], entry[f"p99_ms_{th}t"] = latency_percentiles(
                lambda q: idx.search(q, k=k), lat_q)
        out["presets"][k] = entry
    if n_docs <= args.exact_max_docs:
        for th in (1, 2):
            gingham.set_num_threads(th)
            out[f"exact_p50_ms_{th}t"], out[f"exact_p99_ms_{th}t"] = latency_percentiles(
                lambda q: idx.search(q, k=10, mode="exact"), lat_q[:args.exact_latency_queries])
    gingham.set_num_threads(threads)
    idx.close()
    return out


def run_size(n_docs: int, args, work: str, threads: int, log) -> dict:
    corpus = SkewedCorpus(n_docs, seed=args.seed)
    n_queries = max(args.queries, args.truth_queries)
    queries, _ = corpus.queries(n_queries, seed=args.seed + 1)
    truth = Truth(queries[:args.truth_queries], 100)
    path = os.path.join(work, "index")
    gingham.set_num_threads(threads)
    res: dict = {"n_docs": n_docs, "load_start": os.getloadavg()}
    res["build"] = build(corpus, path, truth, args, log)
    b = res["build"]
    log(f"built: {b['build_s']:.0f} s, {b['bytes_per_token']:.1f} B/token, "
        f"peak RSS {b['build_peak_rss_mib']:.0f} MiB")
    query_file = os.path.join(work, "queries.npy")
    np.save(query_file, np.stack(queries[:8]))
    res["open"] = open_rss(path, query_file)
    res["search"] = search_costs(path, queries, truth, args, n_docs, threads)
    s = res["search"]["presets"]
    log(f"k=10 p50 {s[10]['p50_ms_1t']:.1f} ms, R@10 {s[10]['recall@10']:.3f}; "
        f"k=100 p50 {s[100]['p50_ms_1t']:.1f} ms, R@100 {s[100]['recall@100']:.3f}")
    res["load_end"] = os.getloadavg()
    index_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                      for f in fs)
    res["index_bytes"] = index_bytes
    shutil.rmtree(path, ignore_errors=True)
    return res


def growth(sizes: list[dict], get) -> float | None:
    """Least-squares slope of log(cost) over log(N) (None with fewer than two sizes)."""
    if len(sizes) < 2:
        return None
    x = np.log([s["n_docs"] for s in sizes])
    y = np.log([get(s) for s in sizes])
    return float(np.polyfit(x, y, 1)[0])


COLUMNS = [
    ("build s", lambda s: s["build"]["build_s"], "{:.1f}"),
    ("k-means s", lambda s: s["build"]["kmeans_s"], "{:.1f}"),
    ("encode s", lambda s: s["build"]["encode_s"], "{:.1f}"),
    ("commit s", lambda s: s["build"]["commit_s"], "{:.1f}"),
    ("build tok/s", lambda s: s["build"]["build_tokens_per_s"], "{:,.0f}"),
    ("B/token", lambda s: s["build"]["bytes_per_token"], "{:.1f}"),
    ("build peak RSS MiB", lambda s: s["build"]["build_peak_rss_mib"], "{:,.0f}"),
    ("open RSS MiB", lambda s: s["open"]["open_rss_mib"], "{:,.0f}"),
    ("k=10 p50 1t ms", lambda s: s["search"]["presets"][10]["p50_ms_1t"], "{:.1f}"),
    ("k=10 p99 1t ms", lambda s: s["search"]["presets"][10]["p99_ms_1t"], "{:.1f}"),
    ("k=10 p50 2t ms", lambda s: s["search"]["presets"][10]["p50_ms_2t"], "{:.1f}"),
    ("k=100 p50 1t ms", lambda s: s["search"]["presets"][100]["p50_ms_1t"], "{:.1f}"),
    ("k=100 p99 1t ms", lambda s: s["search"]["presets"][100]["p99_ms_1t"], "{:.1f}"),
    ("k=100 p50 2t ms", lambda s: s["search"]["presets"][100]["p50_ms_2t"], "{:.1f}"),
    ("k=10 batch q/s", lambda s: s["search"]["presets"][10]["batch_qps"], "{:.1f}"),
    ("k=100 batch q/s", lambda s: s["search"]["presets"][100]["batch_qps"], "{:.1f}"),
]
RECALLS = [
    ("k=10 R@10", lambda s: s["search"]["presets"][10]["recall@10"]),
    ("k=10 R@10 vs codes", lambda s: s["search"]["presets"][10]["recall@10_vs_codes"]),
    ("k=100 R@10", lambda s: s["search"]["presets"][100]["recall@10"]),
    ("k=100 R@100", lambda s: s["search"]["presets"][100]["recall@100"]),
    ("exact-codes R@10", lambda s: s["search"]["exact_codes_recall@10"]),
    ("exact-codes R@100", lambda s: s["search"]["exact_codes_recall@100"]),
]


def print_report(report: dict) -> None:
    sizes = report["sizes"]
    print(f"\ngingham bench/scale.py (SIMD {report['simd_level']}, {report['threads']} threads, "
          f"{report['cpu']}; nbits {report['nbits']}, {report['centroids']} centroids, "
          f"{report['batch_docs']:,} documents per batch)\n")
    head = ["N", "tokens"] + [c[0] for c in COLUMNS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for s in sizes:
        cells = [f"{s['n_docs']:,}", f"{s['build']['n_tokens']:,}"]
        cells += [fmt.format(get(s)) for _, get, fmt in COLUMNS]
        print("| " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        cells = ["growth exponent", ""] + [f"{growth(sizes, get):.2f}" for _, get, _ in COLUMNS]
        print("| " + " | ".join(cells) + " |")
    print("\n| N | " + " | ".join(r[0] for r in RECALLS) + " | exact p50 1t ms |")
    print("|---|" + "---|" * (len(RECALLS) + 1))
    for s in sizes:
        ex = s["search"].get("exact_p50_ms_1t")
        print(f"| {s['n_docs']:,} | " + " | ".join(f"{get(s):.3f}" for _, get in RECALLS)
              + f" | {'-' if ex is None else f'{ex:.0f}'} |")
    for s in sizes:
        b = s["build"]
        print(f"\n{s['n_docs']:,} docs: sampling {b['sampling_s']:.1f} s, k-means on "
              f"{b['kmeans_sample']:,.0f} tokens {b['kmeans_tokens_per_s']:,.0f} tok-iter/s, "
              f"encode {b['encode_tokens_per_s']:,.0f} tok/s, {b['n_segments']} segments; "
              f"outside the build: generation {b['generate_s']:.0f} s, ground truth "
              f"{b['truth_s']:.0f} s; RSS after open {s['open']['open_rss_mib']:.0f} MiB "
              f"(bare python {s['open']['python_rss_mib']:.0f}, after 8 searches "
              f"{s['open']['searched_rss_mib']:.0f}); load "
              f"{'/'.join(f'{x:.1f}' for x in s['load_start'])} -> "
              f"{'/'.join(f'{x:.1f}' for x in s['load_end'])}")


def load_report(path: str) -> dict:
    """A --json report with its preset keys back to ints."""
    with open(path) as f:
        report = json.load(f)
    for size in report["sizes"]:
        presets = size["search"]["presets"]
        size["search"]["presets"] = {int(k): v for k, v in presets.items()}
    return report


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="document counts (comma-separated)")
    p.add_argument("--centroids", type=int, default=4096,
                   help="k-means centroids at every size (fixed, so the table shows growth in "
                        "N alone; PLAID's default 2^floor(log2(16 sqrt(tokens))) is 131,072 "
                        "at 1M documents)")
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--kmeans-iters", type=int, default=10)
    p.add_argument("--batch-docs", type=int, default=25_000, help="documents per add (segment)")
    p.add_argument("--queries", type=int, default=100, help="queries for throughput")
    p.add_argument("--truth-queries", type=int, default=32,
                   help="queries with exact fp32 ground truth (recall)")
    p.add_argument("--codes-queries", type=int, default=16,
                   help="queries searched with mode='exact' over the codes (recall vs codes)")
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--exact-latency-queries", type=int, default=5)
    p.add_argument("--exact-max-docs", type=int, default=100_000,
                   help="largest size at which mode='exact' latency is timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None,
                   help="parent folder of the temporary index (default: the system temp dir)")
    p.add_argument("--json", help="write the report here (rewritten after every size)")
    p.add_argument("--print-json", metavar="FILE",
                   help="only print the tables of a report written by --json (e.g. a partial one)")
    args = p.parse_args(argv)
    if args.print_json:
        print_report(load_report(args.print_json))
        return 0
    if args.truth_queries > args.queries or args.codes_queries > args.truth_queries:
        p.error("need codes-queries <= truth-queries <= queries")
    threads = gingham.get_num_threads()
    report = {"simd_level": gingham.simd_level(), "threads": threads, "cpu": cpu_name(),
              "nbits": args.nbits, "centroids": args.centroids, "batch_docs": args.batch_docs,
              "argv": sys.argv, "sizes": []}
    work = tempfile.mkdtemp(prefix="gingham-scale-", dir=args.workdir)
    try:
        for n_docs in (int(s) for s in args.sizes.split(",")):
            def log(msg, n=n_docs):
                print(f"[{time.strftime('%H:%M:%S')} {n:,} docs] {msg}", file=sys.stderr,
                      flush=True)
            report["sizes"].append(run_size(n_docs, args, work, threads, log))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(report, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
