"""Why recall@10 of the compressed index stalls below fp32 on the synthetic corpus: the score
gaps between neighbouring ranks against the score error of the codes.

    python bench/codec_gap.py                  # 10,000 documents, nbits 2 and 4

For each query: the exact fp32 top 40 (gingham.exact_search) and the scores of those same
documents from their codes (Index.rerank). Reported per nbits (medians over queries): the fp32
gap between ranks 10 and 11, the spread of the code-score error over ranks 2-40, and how many
of ranks 2-40 lie within one such error of rank 10's score.
"""
from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

import gingham
from _synthetic import DIM, generate, make_queries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--centroids", type=int, default=4096)
    p.add_argument("--nbits", default="2,4")
    p.add_argument("--centers", type=int, default=1024)
    p.add_argument("--noise", type=float, default=0.6)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--depth", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gingham-gap-") as work:
        tokens, offsets = generate(args.docs, args.centers, args.noise, args.seed, work)
        queries = make_queries(tokens, offsets, args.queries, args.seed + 1)
        truth_scores, truth = gingham.exact_search(queries, tokens, offsets, args.depth,
                                                   check_finite=False)
        docs = [np.asarray(tokens[offsets[i]:offsets[i + 1]]) for i in range(args.docs)]
        print(f"{args.docs:,} docs, {args.queries} queries: fp32 score mean rank 1 "
              f"{truth_scores[:, 0].mean():.2f}, rank 10 {truth_scores[:, 9].mean():.2f}, "
              f"rank {args.depth} {truth_scores[:, -1].mean():.2f}")
        for nbits in (int(x) for x in args.nbits.split(",")):
            with gingham.Index.create(f"{work}/index-{nbits}", dim=DIM, nbits=nbits,
                                      n_centroids=args.centroids, seed=args.seed) as idx:
                idx.add([str(i) for i in range(args.docs)], docs)
                gaps, errors, close = [], [], []
                for q, fp32, ids in zip(queries, truth_scores, truth):
                    from_codes = {h.id: h.score for h in idx.rerank(q, [str(d) for d in ids])}
                    err = np.array([from_codes[str(d)] for d in ids]) - fp32
                    spread = float(np.std(err[1:]))
                    gaps.append(fp32[9] - fp32[10])
                    errors.append(spread)
                    close.append(int((np.abs(fp32[1:] - fp32[9]) < spread).sum()))
            print(f"nbits {nbits}: median gap rank 10 - rank 11 {np.median(gaps):.4f}; median "
                  f"code-score error std (ranks 2-{args.depth}) {np.median(errors):.4f}; median "
                  f"ranks 2-{args.depth} within one error of rank 10: {np.median(close):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
