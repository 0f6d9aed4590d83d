"""gingham and colbert-ai side by side in one run: same token embeddings, same queries, same
exact fp32 ground truth, same centroid count and nbits, 1 thread each.

    python bench/peers/compare.py                                   # 10,000 documents
    python bench/peers/compare.py --docs 2000 --centroids 1024 --peer-python VENV/bin/python

The corpus (``gingham._synthetic.SkewedCorpus``: d = 128, 4,096 Zipf-popular centers,
12-center topics, ~80 tokens per document) is written once to a .npy memmap with its offsets
and the queries (24 perturbed tokens of one document plus 8 fresh ones); gingham builds and
searches in this process, colbert-ai in a subprocess of the peers environment
(bench/peers/colbert_ai.py, see README.md). colbert-ai is never imported here.

Reported: build time (k-means, encoding, total) and tokens/s, bytes per token of the whole
index folder, single-query p50/p99 per PLAID preset (k = 10, 100, 1000; each engine's own
defaults for k), recall@10 / recall@100 against exact fp32 MaxSim, and gingham/colbert-ai
ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gingham
from gingham._synthetic import SkewedCorpus

KS = (10, 100, 1000)
ADAPTER = Path(__file__).with_name("colbert_ai.py")


def recall(found: list[list[int]], truth: np.ndarray, depth: int) -> float:
    return float(np.mean([len(set(row[:depth].tolist()) & set(hits[:depth])) / depth
                          for hits, row in zip(found, truth)]))


def write_corpus(args, work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    corpus = SkewedCorpus(args.docs, seed=args.seed)
    tokens, offsets = corpus.csr(out=work / "tokens.npy")
    np.save(work / "doc_offsets.npy", offsets)
    queries, _ = corpus.queries(args.queries, seed=args.seed + 1)
    stacked = np.stack(queries)
    np.save(work / "queries.npy", stacked)
    return tokens, offsets, stacked


def run_gingham(args, work: Path, tokens, offsets, queries) -> dict:
    gingham.set_num_threads(args.threads)
    path = work / "gingham-index"
    idx = gingham.Index.create(path, dim=tokens.shape[1], nbits=args.nbits,
                               n_centroids=args.centroids, seed=args.seed)
    clock = time.perf_counter()
    sample = gingham.sample_tokens(tokens, idx.codec_sample_size, seed=args.seed)
    sampling_s = time.perf_counter() - clock
    idx.add_batches(gingham.csr_batches(tokens, offsets, 25_000), codec_sample=sample)
    p = idx.last_add_profile
    build = {"kmeans_s": sampling_s + p["kmeans_s"] + p["buckets_s"],
             "encode_s": p["encode_s"] + p["ivf_s"] + p["write_s"],
             "kmeans_niters": idx.settings["kmeans_iters"]}
    build["build_s"] = build["kmeans_s"] + build["encode_s"]
    out = {"build": build, "bytes_per_token": idx.stats()["bytes_per_token"], "search": {}}
    for k in KS:
        idx.search(queries[0], k=k)
        ids, times = [], []
        for i, q in enumerate(queries):
            clock = time.perf_counter()
            hits = idx.search(q, k=k)
            if i < args.latency_queries:
                times.append(1000 * (time.perf_counter() - clock))
            ids.append([int(h.id) for h in hits])
        out["search"][str(k)] = {"p50_ms": float(np.percentile(times, 50)),
                                 "p99_ms": float(np.percentile(times, 99)), "ids": ids}
    idx.close()
    return out


def run_colbert(args, work: Path) -> dict:
    out_file = work / "colbert.json"
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [args.peer_python, str(ADAPTER), "--work", str(work), "--centroids",
           str(args.centroids), "--nbits", str(args.nbits), "--ks", ",".join(map(str, KS)),
           "--latency-queries", str(args.latency_queries), "--threads", str(args.threads),
           "--seed", str(args.seed), "--out", str(out_file)]
    with open(work / "colbert.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    if proc.returncode != 0:
        tail = (work / "colbert.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"colbert-ai adapter failed (exit {proc.returncode}):\n{tail}")
    return json.loads(out_file.read_text())


def report(args, n_tokens: int, truth: np.ndarray, g: dict, c: dict, load) -> str:
    lines = [f"bench/peers/compare.py: {args.docs:,} documents, {n_tokens:,} tokens, "
             f"{args.centroids:,} centroids, nbits {args.nbits}, {args.queries} queries, "
             f"{args.threads} thread(s); gingham {gingham.__version__} (SIMD "
             f"{gingham.simd_level()}), colbert-ai {c.get('colbert')} on torch {c.get('torch')}; "
             f"load {'/'.join(f'{x:.1f}' for x in load[0])} -> "
             f"{'/'.join(f'{x:.1f}' for x in load[1])}", ""]
    gb, cb = g["build"], c["build"]
    lines += ["| | gingham | colbert-ai | gingham / colbert-ai |", "|---|---|---|---|"]
    for name, key in (("k-means s (incl. sampling, buckets)", "kmeans_s"),
                      ("encoding s (codes, residuals, IVF, writes)", "encode_s"),
                      ("build s", "build_s")):
        lines.append(f"| {name} | {gb[key]:.1f} | {cb[key]:.1f} | {gb[key] / cb[key]:.2f} |")
    lines.append(f"| build tokens/s | {n_tokens / gb['build_s']:,.0f} | "
                 f"{n_tokens / cb['build_s']:,.0f} | {cb['build_s'] / gb['build_s']:.2f}x faster |")
    lines.append(f"| k-means iterations | {gb['kmeans_niters']} | {cb['kmeans_niters']} | |")
    lines.append(f"| bytes per token | {g['bytes_per_token']:.1f} | {c['bytes_per_token']:.1f} | "
                 f"{g['bytes_per_token'] / c['bytes_per_token']:.2f} |")
    for k in KS:
        gs, cs = g["search"][str(k)], c["search"][str(k)]
        lines.append(f"| k={k} p50 ms (p99) | {gs['p50_ms']:.1f} ({gs['p99_ms']:.1f}) | "
                     f"{cs['p50_ms']:.1f} ({cs['p99_ms']:.1f}) | "
                     f"{cs['p50_ms'] / gs['p50_ms']:.2f}x faster |")
        for depth in (10, 100):
            if depth > k:
                continue
            rg, rc = recall(gs["ids"], truth, depth), recall(cs["ids"], truth, depth)
            lines.append(f"| k={k} recall@{depth} | {rg:.3f} | {rc:.3f} | {rg - rc:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--centroids", type=int, default=8192)
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer-python", default=os.environ.get("GINGHAM_PEER_PYTHON",
                                                           "/work/peers-venv/bin/python"),
                   help="python of the environment with colbert-ai (README.md)")
    p.add_argument("--workdir", help="parent of the temporary folder (corpus and indexes)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--json", help="also write both engines' results here")
    args = p.parse_args(argv)
    if not Path(args.peer_python).exists():
        p.error(f"--peer-python {args.peer_python} does not exist; see bench/peers/README.md")
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="gingham-peers-", dir=args.workdir))
    try:
        tokens, offsets, queries = write_corpus(args, work)
        gingham.set_num_threads(2)
        _, truth = gingham.exact_search(list(queries), tokens, offsets, 100, check_finite=False)
        print(f"[{time.strftime('%H:%M:%S')}] corpus and ground truth ready; gingham...",
              file=sys.stderr, flush=True)
        g = run_gingham(args, work, tokens, offsets, queries)
        print(f"[{time.strftime('%H:%M:%S')}] gingham done; colbert-ai...", file=sys.stderr,
              flush=True)
        c = run_colbert(args, work)
        text = report(args, int(offsets[-1]), truth, g, c, (load_start, os.getloadavg()))
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps({"gingham": g, "colbert": c,
                                                   "truth": truth.tolist(), "report": text}))
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
