"""Residual encoding speed (``_core.codec_encode``) and its two parts, in one run.

    python bench/codec_encode.py --tokens 200000 --centroids 8192 --threads 2

Tokens: the skewed topical corpus (``gingham._synthetic.SkewedCorpus``, d = 128); the codec is
fit on a sample as ``Index.add`` does. Reported: tokens/s of the whole encode, of the nearest-
centroid assignment alone (``_core.kmeans_assign``, the kernel encode calls) and the rest
(residual buckets, bit packing, scales) as the difference; best of --reps runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import gingham
from gingham import _core
from gingham._synthetic import SkewedCorpus


def best_seconds(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--centroids", type=int, default=8192)
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    corpus = SkewedCorpus(args.tokens // 60 + 1, seed=args.seed)
    tokens = np.ascontiguousarray(corpus.csr()[0][:args.tokens])
    gingham.set_num_threads(args.threads)
    sample = tokens[np.sort(_core.sample_indices(len(tokens), min(len(tokens),
                                                                  args.centroids * 4), 0))]
    centroids = _core.kmeans_fit(sample, args.centroids, 2, args.seed)
    cutoffs, weights = _core.codec_fit_buckets(sample, _core.kmeans_assign(sample, centroids),
                                               centroids, args.nbits)
    encode_s = best_seconds(lambda: _core.codec_encode(tokens, centroids, cutoffs, weights,
                                                       args.nbits), args.reps)
    assign_s = best_seconds(lambda: _core.kmeans_assign(tokens, centroids), args.reps)
    n = len(tokens)
    report = {"simd_level": gingham.simd_level(), "threads": args.threads, "tokens": n,
              "centroids": args.centroids, "nbits": args.nbits,
              "encode_tokens_per_s": n / encode_s, "assign_tokens_per_s": n / assign_s,
              "rest_tokens_per_s": n / max(encode_s - assign_s, 1e-9),
              "encode_s": encode_s, "assign_s": assign_s}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
