"""Fusion of ranked lists from late interaction and BM25.

``rrf`` (reciprocal rank, k = 60) and ``weighted`` (min-max normalized scores,
``alpha * dense + (1 - alpha) * sparse``; a document absent from a list gets 0 from it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_ALPHA = 0.5

def rrf(rankings: Sequence[Sequence[str]], k: int = 10, *, rrf_k: int = 60,
        weights: Sequence[float] | None = None) -> tuple[list[str], np.ndarray]:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (rrf_k + rank_i(d)), ranks from 1.

    rankings: ranked id lists, best first. Returns (top-k ids, float64 scores), ties broken by
    first appearance (list order, then rank).
    """
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError("weights must have one entry per ranking")
    scores: dict[str, float] = {}
    for w, ranking in zip(weights, rankings):
        for r, d in enumerate(ranking, start=1):
            scores[d] = scores.get(d, 0.0) + w / (rrf_k + r)
    return _top(scores, k)


def minmax(scores: Sequence[float]) -> np.ndarray:
    """Scores scaled to [0, 1] by (s - min) / (max - min); all-equal scores map to 1."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    lo, hi = s.min(), s.max()
    return np.ones_like(s) if hi == lo else (s - lo) / (hi - lo)


def weighted(dense: tuple[Sequence[str], Sequence[float]],
             sparse: tuple[Sequence[str], Sequence[float]], k: int = 10, *,
             alpha: float = 0.5) -> tuple[list[str], np.ndarray]:
    """Convex combination of min-max normalized scores: alpha * dense + (1 - alpha) * sparse.

    dense, sparse: (ids, scores) of each retriever's candidates. A document missing from one
    list contributes 0 from it. Returns (top-k ids, float64 scores), ties by first appearance.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    scores: dict[str, float] = {}
    for w, (ids, s) in ((alpha, dense), (1.0 - alpha, sparse)):
        if len(ids) != len(s):
            raise ValueError("each (ids, scores) pair must have equal lengths")
        for d, v in zip(ids, minmax(s)):
            scores[d] = scores.get(d, 0.0) + w * float(v)
    return _top(scores, k)


def _top(scores: dict[str, float], k: int) -> tuple[list[str], np.ndarray]:
    ids = list(scores)
    vals = np.fromiter((scores[d] for d in ids), dtype=np.float64, count=len(ids))
    order = np.argsort(-vals, kind="stable")[:k]
    return [ids[i] for i in order], vals[order]
