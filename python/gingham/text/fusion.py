"""Fusion of ranked lists from late interaction and BM25.

Three ways to fuse, chosen in docs/hybrid.md from measurements on three labelled sets:

- ``auto`` (the default, :func:`complete_fusion` with :func:`factor_weight` of
  :func:`headroom`): complete-score fusion. Every document of the union of both candidate lists
  gets its real score from both sides (exact MaxSim from the stored vectors, exact BM25), each
  side is z-scored over the union, and the two are combined with the weights of the best linear
  estimate of one latent relevance from two noisy standardized indicators (one-factor model,
  weight = loading / unique variance). The loadings come from a label-free confidence of this
  query: the headroom of its best MaxSim (how far it rises above the corpus's average MaxSim for
  the query, as a fraction of the most it could rise) for late interaction, the rest for BM25.
  No constant is tuned.
- ``weighted``: ``alpha * dense + (1 - alpha) * sparse`` over min-max normalized scores of each
  list; a document absent from a list gets 0 from it.
- ``rrf``: reciprocal rank fusion, k = 60.
"""
from __future__ import annotations

import math
from itertools import chain
from typing import Sequence

import numpy as np

DEFAULT_ALPHA = 0.5
# Documents sampled evenly over the corpus to estimate the average MaxSim of a query: the
# estimate's standard error is about std / sqrt(32), a few hundredths of the headroom.
NULL_SAMPLE = 32


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


def zscore(scores: Sequence[float]) -> np.ndarray:
    """float64 (s - mean) / std (population std); all-equal scores map to 0."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    centred = s - float(s.sum()) / s.size  # np.mean and np.std, without their overhead
    sd = math.sqrt(float(centred @ centred) / s.size)
    return np.zeros_like(s) if sd == 0 else centred / sd


def standardize(scores: Sequence[float], null: tuple[float, float] | None) -> np.ndarray:
    """float64 (s - mean) / std against a null distribution ``null = (mean, std)`` (the scores
    of documents unrelated to the query); :func:`zscore` of the scores themselves when ``null``
    is None or its std is not positive."""
    if null is None or not float(null[1]) > 0:
        return zscore(scores)
    return (np.asarray(scores, dtype=np.float64) - float(null[0])) / float(null[1])


def weighted(dense: tuple[Sequence[str], Sequence[float]],
             sparse: tuple[Sequence[str], Sequence[float]], k: int = 10, *,
             alpha: float = 0.5) -> tuple[list[str], np.ndarray]:
    """Convex combination of min-max normalized scores: alpha * dense + (1 - alpha) * sparse.

    dense, sparse: (ids, scores) of each retriever's candidates. A document missing from one
    list contributes 0 from it. Returns (top-k ids, float64 scores), ties by first appearance.
    """
    _check_alpha(alpha)
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    scores: dict[str, float] = {}
    for w, (ids, s) in ((alpha, dense), (1.0 - alpha, sparse)):
        if len(ids) != len(s):
            raise ValueError("each (ids, scores) pair must have equal lengths")
        for d, v in zip(ids, minmax(s)):
            scores[d] = scores.get(d, 0.0) + w * float(v)
    return _top(scores, k)


def headroom(top: float, mean: float, ceiling: float) -> float:
    """Confidence in [0, 1] of a ranked list from its score shape: (top - mean) /
    (ceiling - mean), clipped. top: the best score of the list; mean: the average score of the
    corpus for this query (the level a document unrelated to the query reaches); ceiling: the
    highest score possible (MaxSim of unit vectors: the number of query tokens). 0 when the
    ceiling is not above the mean."""
    room = float(ceiling) - float(mean)
    if room <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (float(top) - float(mean)) / room)))


def factor_weight(confidence: float) -> float:
    """Late-interaction weight alpha in [0, 1] of the best linear estimate of one latent
    relevance from two standardized lists whose loadings (correlations with it) are
    ``confidence`` (late interaction) and ``1 - confidence`` (BM25).

    One-factor model z_i = l_i * r + e_i with var(z_i) = 1, so var(e_i) = 1 - l_i^2; the least
    squares (Bartlett) estimate of r weights z_i by l_i / (1 - l_i^2). Normalized to sum 1:
    alpha = h^2 (2 - h) / (h^2 (2 - h) + (1 - h)^2 (1 + h)) for h = confidence: 0 at 0, 1/2 at
    1/2, 1 at 1, and alpha(1 - h) = 1 - alpha(h). It lets the confident list dominate more
    than alpha = h does, because an indicator's noise falls with the square of its loading.
    """
    h = min(1.0, max(0.0, float(confidence)))
    late, bm25 = h * h * (2.0 - h), (1.0 - h) * (1.0 - h) * (1.0 + h)
    return late / (late + bm25)


def complete_fusion(ids: Sequence[str], dense: Sequence[float], sparse: Sequence[float],
                    k: int = 10, *, alpha: float, dense_null: tuple[float, float] | None = None,
                    sparse_null: tuple[float, float] | None = None
                    ) -> tuple[list[str], np.ndarray]:
    """Complete-score fusion: alpha * standardize(dense, dense_null) + (1 - alpha) *
    standardize(sparse, sparse_null) (:func:`standardize`; without nulls: z-scores over ids).

    ids: the union of both candidate lists, each id once; dense, sparse: each document's real
    score from each retriever (no imputed values), aligned with ids; dense_null / sparse_null:
    (mean, std) of each retriever's scores over documents unrelated to the query. Returns (top-k
    ids, float64 fused scores), ties by position in ids.
    """
    _check_alpha(alpha)
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    ids = list(ids)
    d = np.asarray(dense, dtype=np.float64)
    s = np.asarray(sparse, dtype=np.float64)
    if not len(ids) == d.size == s.size:
        raise ValueError(f"ids, dense and sparse must have equal lengths; got {len(ids)}, "
                         f"{d.size} and {s.size}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique (the union of both lists)")
    fused = alpha * standardize(d, dense_null) + (1.0 - alpha) * standardize(s, sparse_null)
    order = np.argsort(-fused, kind="stable")[:k]
    return [ids[i] for i in order.tolist()], fused[order]


def null_sample(ids: Sequence[str], size: int = NULL_SAMPLE) -> list[str]:
    """``size`` ids taken evenly over ``ids`` (all of them when there are fewer): the documents
    whose MaxSim estimates the corpus average for a query."""
    n = len(ids)
    if n <= size:
        return list(ids)
    if size == 1:
        return [ids[0]]
    # the positions of np.linspace(0, n - 1, size) truncated, without its per-call overhead
    step = (n - 1) / (size - 1)
    return [ids[int(i * step)] for i in range(size - 1)] + [ids[n - 1]]


def hybrid_scored_ids(sparse_ids: Sequence[str], corpus_ids: Sequence[str]) -> list[str]:
    """The ids whose exact MaxSim :func:`auto_fuse` needs beside the late-interaction search
    (``Index.search(also_score=)``): the BM25 candidates, then :func:`null_sample` of the
    corpus's live ids (each id once)."""
    return list(dict.fromkeys([*sparse_ids, *null_sample(corpus_ids)]))


def auto_fuse(index, bm25, text: str, query: np.ndarray,
              dense: tuple[Sequence[str], Sequence[float]], sparse_ids: Sequence[str],
              scored: dict[str, float], k: int = 10, *, subset: Sequence[str] | None = None,
              where: str | None = None, params: Sequence | None = None
              ) -> tuple[list[str], np.ndarray]:
    """The default hybrid: complete-score fusion of one query's two candidate lists.

    index: the ``gingham.Index`` holding the documents; bm25: the ``BM25Index`` over the same
    ids; text / query: the query string and its (Lq, dim) unit token vectors; dense: the
    late-interaction candidates (ids, MaxSim scores from the stored vectors, as
    ``Index.search`` returns them, already filtered); sparse_ids: the BM25 candidates; scored:
    {id: exact MaxSim} of the live ids of :func:`hybrid_scored_ids` (``Index.search`` returns
    it beside the dense list when given them as ``also_score``). The BM25 hits missing from
    ``dense`` take their MaxSim from ``scored`` (with ``where``, from an exact
    ``Index.search`` restricted to them, which applies the filter); ``subset`` / ``where`` /
    ``params`` and deletions are honoured, so a filtered-out or deleted BM25 hit never
    appears. Every candidate gets its BM25 score from ``BM25Index.score``. The
    late-interaction weight is :func:`factor_weight` of the :func:`headroom` of the best
    MaxSim over the mean MaxSim of the null sample. Returns (top-k ids, float64 fused
    scores): min(k, candidates passing the filters) distinct ids.
    """
    exact = dict(zip(dense[0], dense[1]))
    extra = [d for d in dict.fromkeys(sparse_ids) if d not in exact]  # BM25-only hits
    if subset is not None:
        allowed = set(subset)
        extra = [d for d in extra if d in allowed]
    found = scored if where is None else _passing_where(index, query, extra, where, params)
    extra = [d for d in extra if d in found]
    live = [*exact, *extra]
    if not live:
        return [], np.zeros(0, np.float64)
    scores = np.fromiter(chain(exact.values(), map(found.__getitem__, extra)), np.float64,
                         len(live))
    # an empty document scores -inf: it is no sample of what unrelated documents score
    null = [v for v in map(scored.get, null_sample(bm25.ids))
            if v is not None and math.isfinite(v)]
    confidence = headroom(scores.max(), math.fsum(null) / len(null) if null else scores.mean(),
                          ceiling=np.asarray(query).shape[0])
    return complete_fusion(live, scores, bm25.score(text, live), k,
                           alpha=factor_weight(confidence))


def _passing_where(index, query: np.ndarray, ids: list[str], where: str,
                   params: Sequence | None) -> dict[str, float]:
    """{id: MaxSim from the stored vectors} of the ids that are live and pass ``where``."""
    if not ids:
        return {}
    hits = index.search(query, k=len(ids), mode="exact", subset=ids, where=where,
                        params=params)
    return {h.id: h.score for h in hits}


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")


def _top(scores: dict[str, float], k: int) -> tuple[list[str], np.ndarray]:
    ids = list(scores)
    vals = np.fromiter((scores[d] for d in ids), dtype=np.float64, count=len(ids))
    order = np.argsort(-vals, kind="stable")[:k]
    return [ids[i] for i in order.tolist()], vals[order]
