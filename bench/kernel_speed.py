"""Dense-panel, k-means and PLAID scoring kernel speed at every SIMD level, in one run.

    python bench/kernel_speed.py [--tokens 200000] [--centroids 4096,8192] [--threads 1,2]

- assign: ``_core.kmeans_assign`` (nearest of C centroids for n tokens, d = 128): GFLOP/s
  counts 2 * n * C * d, next to a 2048^3 numpy sgemm measured in the same run.
- k-means: one Lloyd iteration (``_core.kmeans_fit(n_iters=1, init=...)``) = assign + update;
  tokens per CPU-second of each stage (update = iteration - assign, in CPU time).
- LUT: ``_core.plaid_score_docs`` over every document of a residual segment (nbits 2, 1024
  centroids, Lq = 32), whose inner loop is the LUT kernel; tokens/s.
- approximate: ``_core.plaid_candidates`` with every cell probed and no pruning over the same
  segment, whose inner loop is the centroid-max kernel (stage 3); tokens/s.

Seeded Gaussian data (k-means cost does not depend on the values' distribution). Every time is
the best of --reps, as wall clock and as this process's CPU time: on a machine shared with other
jobs the CPU-time ratios are the steadier ones (with 2 threads CPU time sums both threads).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import gingham
from _measure import best_times
from gingham import _core

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - optional
    threadpoolctl = None

DIM = 128


def sgemm(threads, reps):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    ctx = threadpoolctl.threadpool_limits(threads, user_api="blas") if threadpoolctl else None
    try:
        wall, cpu = best_times(lambda: a @ b, reps)
    finally:
        if ctx is not None:
            ctx.restore_original_limits()
    return 2 * 2048 ** 3 / wall / 1e9, 2 * 2048 ** 3 / cpu / 1e9


def levels(scalar_ok):
    return [lv for lv in _core.supported_simd_levels() if lv != "scalar" or scalar_ok]


def residual_segment(rng, n_docs, doc_len, n_centroids=1024, nbits=2):
    x = rng.standard_normal((n_docs * doc_len, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    centroids = _core.kmeans_fit(x[:20_000], n_centroids, n_iters=2, seed=1)
    codes = _core.kmeans_assign(x, centroids)
    cutoffs, weights = _core.codec_fit_buckets(x[:20_000], codes[:20_000], centroids, nbits)
    codes, residuals, scales = _core.codec_encode(x, centroids, cutoffs, weights, nbits)
    offsets = np.arange(0, n_docs * doc_len + 1, doc_len, dtype=np.int64)
    ivf_o, ivf_i = _core.ivf_build(codes, offsets, n_centroids)
    codec = _core.Codec(centroids, cutoffs, weights, nbits)
    return _core.ResidualSegment(codec, codes, residuals, scales, offsets, ivf_o, ivf_i)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--centroids", default="4096,8192")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--scalar-tokens", type=int, default=2_000,
                   help="tokens assigned at the scalar level (it is slow)")
    p.add_argument("--lut-docs", type=int, default=2_000)
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((args.tokens, DIM), dtype=np.float32)
    threads = [int(t) for t in args.threads.split(",")]
    before = gingham.simd_level()
    print(f"gingham {gingham.__version__} kernels: d={DIM}, {args.tokens:,} tokens, detected "
          f"SIMD level {_core.detected_simd_level()}, best of {args.reps}; load average "
          f"before {load:.2f}")
    for t in threads:
        wall, cpu = sgemm(t, args.reps)
        print(f"sgemm 2048^3, {t} thread(s): {wall:.1f} GFLOP/s wall, {cpu:.1f} per CPU-second")
        peak = (wall, cpu)
        gingham.set_num_threads(t)
        for n_c in [int(c) for c in args.centroids.split(",")]:
            c = x[rng.choice(args.tokens, n_c, replace=False)].copy()
            for level in levels(True):
                _core.set_simd_level(level)
                n = args.scalar_tokens if level == "scalar" else args.tokens
                w, u = best_times(lambda: _core.kmeans_assign(x[:n], c),
                                  1 if level == "scalar" else args.reps)
                gf = 2 * n * n_c * DIM / 1e9
                print(f"  assign C={n_c} @{level}: {gf / w:.1f} GFLOP/s wall "
                      f"({100 * gf / w / peak[0]:.0f}% of sgemm), {gf / u:.1f} per CPU-s "
                      f"({100 * gf / u / peak[1]:.0f}%); {n / w:,.0f} tokens/s")
                if level == "scalar":
                    continue
                fw, fu = best_times(lambda: _core.kmeans_fit(x, n_c, n_iters=1, init=c),
                                    args.reps)
                update_cpu = fu - u  # CPU time: steadier than wall time on a shared machine
                print(f"  k-means iteration C={n_c} @{level}: {fw:.2f} s wall, {fu:.2f} CPU-s "
                      f"= assign {u:.2f} CPU-s ({args.tokens / u:,.0f} tokens per CPU-s) + "
                      f"update {update_cpu:.2f} CPU-s"
                      + (f" ({args.tokens / update_cpu:,.0f} tokens per CPU-s)"
                         if update_cpu > 0 else " (below the noise)"))
        seg = residual_segment(np.random.default_rng(2), args.lut_docs, 64)
        query = np.random.default_rng(3).standard_normal((32, DIM)).astype(np.float32)
        ids = np.arange(args.lut_docs, dtype=np.int64)
        n_tok = args.lut_docs * 64
        offsets = np.array([0, len(query)], np.int64)
        for level in levels(True):
            _core.set_simd_level(level)
            w, u = best_times(lambda: _core.plaid_score_docs(query, seg, ids), args.reps)
            print(f"  LUT scoring (plaid_score_docs, nbits 2, Lq 32) @{level}: "
                  f"{n_tok / w:,.0f} tokens/s wall, {n_tok / u:,.0f} per CPU-s")
            w, u = best_times(lambda: _core.plaid_candidates(
                query, offsets, [seg], [None], 10, 1024, float("-inf"), args.lut_docs),
                args.reps)
            print(f"  approximate scoring (plaid_candidates, every cell, no pruning, Lq 32) "
                  f"@{level}: {n_tok / w:,.0f} tokens/s wall, {n_tok / u:,.0f} per CPU-s")
    _core.set_simd_level(before)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
