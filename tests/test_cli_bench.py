"""`gingham bench` builds a synthetic compressed index and reports per-stage profiles; its
recall figures are checked against a numpy brute force over the same generated data."""
import json

import numpy as np

from gingham import cli
from gingham._synthetic import clustered_corpus, queries_near


def _bench_json(capsys, *options: str) -> dict:
    assert cli.main(["bench", "--json", "--quiet", *options]) == 0
    return json.loads(capsys.readouterr().out)


def _brute_force_top(queries, tokens, offsets, k: int) -> list[list[str]]:
    """float64 MaxSim of every document; best first, ties by lower document index."""
    out = []
    t = tokens.astype(np.float64)
    for q in queries:
        sims = q.astype(np.float64) @ t.T
        scores = np.maximum.reduceat(sims, offsets[:-1], axis=1).sum(axis=0)
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        out.append([str(i) for i in order.tolist()])
    return out


def test_bench_recall_matches_brute_force(capsys):
    report = _bench_json(capsys, "--docs", "60", "--queries", "4", "--dim", "32", "-k", "5")
    assert report["index"]["n_docs"] == 60
    for name in ("plaid", "exact"):
        st = report[name]
        assert st["n_queries"] == 4
        assert set(st["stages_ms"]) == {"centroid", "candidate", "approx", "full", "topk"}
    assert report["exact"]["counts_mean"]["full"] == 60
    # The same corpus and queries the command generated (its documented defaults).
    tokens, offsets = clustered_corpus(60, dim=32, n_centers=1024, seed=0)
    queries = queries_near(tokens, offsets, 4, seed=1)
    truth = _brute_force_top(queries, tokens, offsets, 5)
    plaid, exact = report["top_ids"]["plaid"], report["top_ids"]["exact"]
    assert [len(x) for x in plaid] == [len(x) for x in exact] == [5] * 4
    recall = np.mean([len(set(p) & set(t)) / 5 for p, t in zip(plaid, truth)])
    assert report["recall_vs_fp32"] == recall
    overlap = np.mean([len(set(p) & set(e)) / 5 for p, e in zip(plaid, exact)])
    assert report["recall_vs_exact_mode"] == overlap


def test_bench_returns_every_document_when_k_covers_the_index(capsys):
    report = _bench_json(capsys, "--docs", "12", "--queries", "3", "--dim", "16", "-k", "20")
    every = {str(i) for i in range(12)}
    for ids in report["top_ids"]["plaid"] + report["top_ids"]["exact"]:
        assert len(ids) == 12 and set(ids) == every
    assert report["recall_vs_fp32"] == report["recall_vs_exact_mode"] == 1.0


def test_bench_text(capsys):
    assert cli.main(["bench", "--docs", "40", "--queries", "2", "--dim", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gingham bench: 40 docs,") and "ms per query" in out
    assert "plaid:" in out and "exact:" in out and "recall against exact search" in out
