"""Retrieval metrics of ranked runs (pytrec_eval) and latency percentiles.

Runs are ``{query_id: [doc_id, ...]}`` ranked best first; qrels are ``{query_id: {doc_id:
grade}}``. Metrics are means over every judged query (a judged query with no results scores 0):
``ndcg@10`` (graded gains as in the qrels), ``recall@100`` and ``mrr@10`` with relevance =
grade >= 1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def _trec_run(run: dict[str, Sequence[str]], depth: int) -> dict[str, dict[str, float]]:
    # Scores from ranks, so pytrec_eval's own tie-breaking can never reorder our ranking.
    out = {}
    for qid, docs in run.items():
        docs = list(docs)[:depth]
        out[qid] = {str(d): float(len(docs) - r) for r, d in enumerate(docs)}
    return out


def evaluate_run(run: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]
                 ) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 of a ranked run against qrels, averaged over the judged
    queries (a judged query missing from the run counts 0). Returns {metric: float}."""
    import pytrec_eval

    if not qrels:
        raise ValueError("qrels must judge at least one query")
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    per_full = full.evaluate(_trec_run(run, 100))
    per_top10 = top10.evaluate(_trec_run(run, 10))
    n = len(qrels)
    return {
        "ndcg@10": sum(per_full.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels) / n,
        "recall@100": sum(per_full.get(q, {}).get("recall_100", 0.0) for q in qrels) / n,
        "mrr@10": sum(per_top10.get(q, {}).get("recip_rank", 0.0) for q in qrels) / n,
    }


def per_query_ndcg(run: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]
                   ) -> dict[str, float]:
    """nDCG@10 of each judged query -> {query_id: float} (0 for a query missing from the run)."""
    import pytrec_eval

    if not qrels:
        raise ValueError("qrels must judge at least one query")
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    per = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(_trec_run(run, 100))
    return {q: per.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels}


def win_tie_loss(scores: dict[str, float], reference: dict[str, float], *, tol: float = 1e-9
                 ) -> tuple[int, int, int]:
    """Queries where ``scores`` beats / ties (|delta| <= tol) / loses to ``reference``: both
    {query_id: float} over the same queries. Returns (wins, ties, losses)."""
    if scores.keys() != reference.keys():
        raise ValueError("scores and reference must cover the same queries")
    deltas = np.array([scores[q] - reference[q] for q in reference], dtype=np.float64)
    wins, losses = int((deltas > tol).sum()), int((deltas < -tol).sum())
    return wins, len(deltas) - wins - losses, losses


def p50_ms(seconds: Sequence[float]) -> float:
    """Median of per-query latencies given in seconds, in milliseconds."""
    if len(seconds) == 0:
        raise ValueError("p50_ms needs at least one latency")
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), 50) * 1e3)
