"""BEIR reader, metrics (hand-computed), latency percentile and the embedding cache."""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("pytrec_eval")

from gingham.eval.compare import (  # noqa: E402
    EmbeddingCache,
    encode_cached,
    evaluate_run,
    from_csr,
    p50_ms,
    to_csr,
)
from gingham.text.beir import load_beir, read_qrels  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def test_metrics_hand_computed():
    qrels = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}, "q3": {"d9": 1}}
    run = {
        "q1": ["d4", "d1", "d5", "d2"],
        "q2": [f"x{i}" for i in range(10)] + ["d3"],   # relevant at rank 11
        # q3 is judged but missing from the run: counts as 0 everywhere
    }
    m = evaluate_run(run, qrels)
    ndcg_q1 = (2 / math.log2(3) + 1 / math.log2(5)) / (2 / math.log2(2) + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx(ndcg_q1 / 3)
    assert m["recall@100"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert m["mrr@10"] == pytest.approx((1 / 2 + 0.0 + 0.0) / 3)


def test_metrics_use_our_order_not_pytrec_tiebreak():
    qrels = {"q": {"a": 1}}
    assert evaluate_run({"q": ["b", "a"]}, qrels)["mrr@10"] == pytest.approx(0.5)
    assert evaluate_run({"q": ["a", "b"]}, qrels)["mrr@10"] == pytest.approx(1.0)
    assert evaluate_run({"q": ["z", "b", "a"]}, qrels)["ndcg@10"] == pytest.approx(0.5)


def test_metrics_reject_empty_qrels():
    with pytest.raises(ValueError):
        evaluate_run({"q": ["a"]}, {})


def test_p50_ms():
    assert p50_ms([0.003, 0.001, 0.002]) == pytest.approx(2.0)
    assert p50_ms([0.001, 0.002, 0.003, 0.004]) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        p50_ms([])


def write_beir(folder, header: bool):
    os.makedirs(folder / "qrels")
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "d1", "title": "Title", "text": "body one"}) + "\n")
        f.write(json.dumps({"_id": "d2", "title": "", "text": "body two"}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "q1", "text": "first"}) + "\n")
        f.write(json.dumps({"_id": "q2", "text": "unjudged"}) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        if header:
            f.write("query-id\tcorpus-id\tscore\n")
        f.write("q1\td1\t2\nq1\tgone\t1\nq7\td2\t1\n")


@pytest.mark.parametrize("header", [True, False])
def test_load_beir(tmp_path, header):
    write_beir(tmp_path, header)
    ds = load_beir(str(tmp_path))
    assert ds.doc_ids == ["d1", "d2"]
    assert ds.doc_texts == ["Title body one", "body two"]
    assert ds.qrels == {"q1": {"d1": 2, "gone": 1}}
    assert ds.missing_judged == [("q1", "gone")]
    assert ds.unknown_queries == 1
    assert ds.judged_queries == (["q1"], ["first"])


def test_load_beir_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        (tmp_path / "corpus.jsonl").write_text("")
        load_beir(str(tmp_path))


def test_read_qrels_rejects_bad_score(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("q1\td1\t1\nq1\td2\tx\n")
    with pytest.raises(ValueError, match="not a number"):
        read_qrels(str(p))


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="shared data not present")
def test_shared_sets_read():
    ms = load_beir(os.path.join(SHARED, "msmarco"))
    assert len(ms.doc_ids) == 5000 and len(ms.qrels) == 43
    assert {g for docs in ms.qrels.values() for g in docs.values()} == {1, 2, 3}
    ar = load_beir(os.path.join(SHARED, "arcd"))
    assert len(ar.doc_ids) == 255 and len(ar.qrels) == 50
    assert len({d for _, d in ar.missing_judged}) == 1


def test_csr_roundtrip():
    docs = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((1, 2), np.float32)]
    tokens, offsets = to_csr(docs)
    assert offsets.tolist() == [0, 3, 4] and offsets.dtype == np.int64
    for a, b in zip(from_csr(tokens, offsets), docs):
        np.testing.assert_array_equal(a, b)


class FakeEncoder:
    def __init__(self):
        self.calls = 0

    def fingerprint(self):
        return "fake-v1"

    def config(self):
        return {"fake": True}

    def encode_documents(self, texts):
        self.calls += 1
        return [np.full((len(t), 3), float(len(t)), np.float32) for t in texts]

    encode_queries = encode_documents


def test_embedding_cache_encodes_once(tmp_path):
    src = tmp_path / "corpus.jsonl"
    src.write_text("x")
    cache = EmbeddingCache(str(tmp_path / "cache"))
    enc = FakeEncoder()
    first = encode_cached(enc, ["ab", "cde"], str(src), "documents", cache)
    second = encode_cached(enc, ["ab", "cde"], str(src), "documents", cache)
    assert enc.calls == 1
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert second[1].shape == (3, 3) and second[1][0, 0] == 3.0
    # a changed source file, other texts or another kind are different keys
    src.write_text("y")
    encode_cached(enc, ["ab", "cde"], str(src), "documents", cache)
    encode_cached(enc, ["ab"], str(src), "documents", cache)
    encode_cached(enc, ["ab"], str(src), "queries", cache)
    assert enc.calls == 4
    with pytest.raises(ValueError, match="kind"):
        encode_cached(enc, ["ab"], str(src), "passages", cache)


def test_runners_against_numpy_oracles():
    from gingham.eval.compare import fuse_runs, run_late_interaction, run_single_vector
    from gingham.text.fusion import rrf

    rng = np.random.default_rng(1)
    docs = [rng.normal(size=(n, 8)).astype(np.float32) for n in (3, 1, 5, 2)]
    ids = ["a", "b", "c", "d"]
    queries = [rng.normal(size=(4, 8)).astype(np.float32) for _ in range(3)]
    ranked, scores, secs = run_late_interaction(ids, queries, docs, k=3)
    for q, r, s in zip(queries, ranked, scores):
        oracle = np.array([(q.astype(np.float64) @ d.T).max(axis=1).sum() for d in docs])
        order = np.argsort(-oracle, kind="stable")[:3]
        assert r == [ids[i] for i in order]
        np.testing.assert_allclose(s, oracle[order], rtol=1e-5)
    assert len(secs) == 3 and min(secs) >= 0

    dvecs = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    ranked, scores, _ = run_single_vector(ids[:3], np.array([[1, 0]], np.float32), dvecs, k=3)
    assert ranked == [["a", "c", "b"]]                     # tie a/c broken by index
    np.testing.assert_allclose(scores[0], [1, 1, 0])

    a = ([["x", "y"], ["p"]], [np.array([2.0, 1.0]), np.array([1.0])])
    b = ([["y", "z"], ["q", "p"]], [np.array([5.0, 1.0]), np.array([3.0, 2.0])])
    assert fuse_runs(a, b, fusion="rrf", k=5) == [rrf([["x", "y"], ["y", "z"]], 5)[0],
                                                  rrf([["p"], ["q", "p"]], 5)[0]]
    assert fuse_runs(a, b, fusion="weighted", alpha=1.0, k=1) == [["x"], ["p"]]
    with pytest.raises(ValueError, match="fusion"):
        fuse_runs(a, b, fusion="max")
