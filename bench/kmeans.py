"""k-means with neighbour-restricted passes against exact Lloyd: time and mean squared error.

    python bench/kmeans.py [--docs 10000] [--centroids 8192] [--neighbors 0,64,128,256]

Trains ``_core.kmeans_fit`` on the codec's sample of ``SkewedCorpus(--docs)`` (d = 128; 32 rows
per centroid, drawn as ``Index.add`` draws them) once per neighbour count (0 = exact Lloyd: every
pass compares each row with every centroid), same seed and passes, and reports the wall time
and the mean squared distance of the sample and of every corpus token to its nearest centroid.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from gingham import _core
from gingham._synthetic import SkewedCorpus


def mse(x: np.ndarray, centroids: np.ndarray) -> float:
    """Mean squared distance of the rows of x to their nearest centroid."""
    nearest = centroids[_core.kmeans_assign(x, centroids)]
    return float(((x - nearest) ** 2).sum(1).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--centroids", type=int, default=8192)
    p.add_argument("--neighbors", default="0,64,128,256",
                   help="neighbour counts to compare (comma-separated; 0 = exact Lloyd)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    _core.set_num_threads(a.threads)
    tokens, _ = SkewedCorpus(a.docs, seed=a.seed).csr()
    n_sample = min(len(tokens), 32 * a.centroids)
    picks = np.sort(_core.sample_indices(len(tokens), n_sample, a.seed))
    sample = np.ascontiguousarray(tokens[picks])
    print(f"bench/kmeans.py: {a.docs:,} documents, {len(tokens):,} tokens, sample {n_sample:,} "
          f"rows, {a.centroids:,} centroids, {a.iters} passes, {a.threads} thread(s), SIMD "
          f"{_core.simd_level()}, load {os.getloadavg()[0]:.1f}\n")
    print("| neighbours | k-means s | sample MSE | all-token MSE |\n|---|---|---|---|")
    for m in (int(v) for v in a.neighbors.split(",")):
        t0 = time.perf_counter()
        centroids = _core.kmeans_fit(sample, a.centroids, a.iters, a.seed, neighbors=m)
        secs = time.perf_counter() - t0
        print(f"| {m or 'all (exact)'} | {secs:.1f} | {mse(sample, centroids):.5f} | "
              f"{mse(tokens, centroids):.5f} |", flush=True)


if __name__ == "__main__":
    main()
