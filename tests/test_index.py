"""gingham.Index: create / add / search / rerank / open / stats and input validation."""
import os

import numpy as np
import pytest

import gingham
from gingham import _core
from plaid_data import clustered_docs, csr, file_states, maxsim_np, queries_from


@pytest.fixture(scope="module")
def data():
    docs = clustered_docs(500, 32, 40, seed=11)
    return docs, queries_from(docs, 6, 8, seed=12)


@pytest.fixture(scope="module")
def built(tmp_path_factory, data):
    docs, _ = data
    path = tmp_path_factory.mktemp("idx") / "index"
    idx = gingham.Index.create(path, dim=32, nbits=2, n_centroids=64, seed=3)
    idx.add([f"doc-{i}" for i in range(300)], docs[:300],
            metadata=[{"n": i} for i in range(300)])
    idx.add([f"doc-{i}" for i in range(300, 500)], docs[300:])
    return path, idx


def test_search_shapes_and_hits(built, data):
    path, idx = built
    _, queries = data
    hits = idx.search(queries[0], k=5)
    assert isinstance(hits, list) and len(hits) == 5
    assert all(isinstance(h, gingham.Hit) for h in hits)
    assert [h.rank for h in hits] == list(range(5))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    batch = idx.search(queries, k=3)
    assert len(batch) == len(queries) and all(len(b) == 3 for b in batch)
    assert batch[0] == idx.search(queries[0], k=3)
    assert len(idx.search(queries[0], k=10_000, mode="exact")) == 500
    assert len(idx) == 500


def test_exact_mode_and_rerank_agree_with_decoded_oracle(built, data):
    path, idx = built
    docs, queries = data
    view = idx._view
    codec = view.snap.codec
    decoded = np.concatenate([
        _core.codec_decode(np.asarray(s.arrays["codes"]), np.asarray(s.arrays["residuals"]),
                           np.asarray(s.arrays["scales"]),
                           np.asarray(codec["centroids"], np.float32),
                           np.asarray(codec["bucket_weights"]), 2)
        for s in view.segments])
    offsets = csr(docs)[1]
    np.testing.assert_array_equal(idx.tokens("doc-42"), decoded[offsets[42]:offsets[43]])
    ref = maxsim_np(queries[1], decoded, offsets)
    hits = idx.search(queries[1], k=8, mode="exact")
    np.testing.assert_allclose([h.score for h in hits], np.sort(ref)[::-1][:8], rtol=1e-5)
    ids = ["doc-7", "doc-450", hits[0].id]
    rr = idx.rerank(queries[1], ids)
    want = {f"doc-{i}": ref[i] for i in range(500)}
    assert sorted(h.id for h in rr) == sorted(ids)
    for h in rr:
        assert h.score == pytest.approx(want[h.id], rel=1e-5)
    assert rr[0].id == hits[0].id
    assert idx.rerank(queries[1], ids, k=2) == rr[:2]
    with pytest.raises(KeyError, match="nope"):
        idx.rerank(queries[1], ["nope"])


def test_compressed_scores_are_close_to_fp32(built, data):
    path, idx = built
    docs, queries = data
    tokens, offsets = csr(docs)
    for q in queries:
        ref = maxsim_np(q, tokens, offsets)
        hits = idx.search(q, k=5, mode="exact")
        for h in hits:
            assert abs(h.score - ref[int(h.id[4:])]) < 0.1 * len(q)  # 2 bits, 64 centroids


def test_staged_equals_exact_when_exhaustive(built, data):
    path, idx = built
    _, queries = data
    a = idx.search(queries, k=20, mode="exact")
    b = idx.search(queries, k=20, ncells=64, centroid_score_threshold=float("-inf"), ndocs=4000)
    assert a == b


def test_reopen_gives_identical_results(built, data):
    path, idx = built
    _, queries = data
    again = gingham.Index.open(path)
    assert len(again) == 500
    assert again.stats() == idx.stats()
    for mode in ("plaid", "exact"):
        assert again.search(queries, k=7, mode=mode) == idx.search(queries, k=7, mode=mode)


def test_stats(built):
    path, idx = built
    s = idx.stats()
    assert s["n_docs"] == 500 and s["n_segments"] == 2 and s["nbits"] == 2 and s["dim"] == 32
    assert s["n_centroids"] == 64
    assert s["n_tokens"] == sum(int(x.arrays["doc_offsets"][-1]) for x in idx._view.segments)
    assert s["code_bytes_per_token"] == 2 + 32 * 2 / 8 + 2  # code + residual bits + scale
    on_disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    assert s["bytes_on_disk"] == on_disk
    assert s["bytes_per_token"] == pytest.approx(on_disk / s["n_tokens"])


def test_return_stats(built, data):
    path, idx = built
    _, queries = data
    hits, st = idx.search(queries[0], k=4, return_stats=True)
    assert hits == idx.search(queries[0], k=4)
    assert st["ncells"] == 1 and st["ndocs"] == 256 and st["mode"] == "plaid"
    assert set(st["stages_ms"]) == {"centroid", "candidate", "approx", "full", "topk"}
    q = st["per_query"][0]
    assert q["n_candidates"] >= q["n_after_pruning"] >= q["n_full"] >= 4
    _, st = idx.search(queries, k=4, mode="exact", return_stats=True)
    assert all(p["n_full"] == 500 for p in st["per_query"])


def test_default_centroids_and_small_first_add(tmp_path):
    docs = clustered_docs(20, 16, 5, seed=1, min_len=1, max_len=3)
    idx = gingham.Index.create(tmp_path / "small", dim=16)
    idx.add([str(i) for i in range(20)], docs)
    n_tokens = sum(len(d) for d in docs)
    assert idx.stats()["n_centroids"] <= n_tokens
    assert gingham.engine.index.default_n_centroids(10_000) == 1024
    assert gingham.engine.index.default_n_centroids(10_000_000) == 32768
    hits = idx.search(docs[3], k=3, mode="exact")
    assert len(hits) == 3


def test_later_adds_reuse_the_codec(tmp_path, data):
    docs, queries = data
    idx = gingham.Index.create(tmp_path / "i", dim=32, n_centroids=32)
    idx.add(["a", "b"], docs[:2])
    before = file_states(tmp_path / "i" / "codec")
    idx.add(["c"], docs[2:3])
    assert file_states(tmp_path / "i" / "codec") == before
    assert idx.stats()["n_segments"] == 2
    with pytest.raises(ValueError, match="already in the index"):
        idx.add(["a"], docs[:1])


def test_empty_index_searches(tmp_path, data):
    _, queries = data
    idx = gingham.Index.create(tmp_path / "e", dim=32)
    assert idx.search(queries[0], k=3) == []
    assert idx.search(queries[:2], k=3) == [[], []]
    assert len(idx) == 0


@pytest.mark.parametrize("bad", [
    ("dim", lambda d: ([d[0][:, :16]], ["x"]), ValueError, "dim"),
    ("nan", lambda d: ([np.where(np.arange(32) == 3, np.nan, d[0]).astype(np.float32)], ["x"]),
     ValueError, "non-finite"),
    ("inf", lambda d: ([np.full((2, 32), np.inf, np.float32)], ["x"]), ValueError, "non-finite"),
    ("empty", lambda d: ([np.zeros((0, 32), np.float32)], ["x"]), ValueError, "at least one"),
    ("dup", lambda d: ([d[0], d[1]], ["x", "x"]), ValueError, "more than once"),
    ("notstr", lambda d: ([d[0]], [5]), TypeError, "string"),
    ("count", lambda d: ([d[0], d[1]], ["x"]), ValueError, "one array per id"),
    ("second-bad", lambda d: ([d[0], d[1][:, :8]], ["x", "y"]), ValueError, "dim"),
])
def test_bad_adds_write_nothing(tmp_path, data, bad):
    docs, _ = data
    _, make, exc, match = bad
    path = tmp_path / "bad"
    idx = gingham.Index.create(path, dim=32, n_centroids=16)
    for attempt in range(2):  # before and after the codec exists
        before = file_states(path)
        embeddings, ids = make(docs)
        with pytest.raises(exc, match=match):
            idx.add(ids, embeddings)
        assert file_states(path) == before
        assert len(idx) == 2 * attempt
        idx.add([f"ok{attempt}a", f"ok{attempt}b"], docs[10:12])
    with pytest.raises(ValueError, match="metadata"):
        idx.add(["m"], docs[:1], metadata=[{}, {}])
    with pytest.raises(TypeError, match="JSON"):
        idx.add(["m"], docs[:1], metadata=[{"x": object()}])


def test_bad_searches(built, data):
    path, idx = built
    _, queries = data
    q = queries[0]
    with pytest.raises(ValueError, match="k must"):
        idx.search(q, k=0)
    with pytest.raises(TypeError, match="k must"):
        idx.search(q, k=2.5)
    with pytest.raises(ValueError, match="mode"):
        idx.search(q, mode="fast")
    with pytest.raises(TypeError):
        idx.search(q, nprobe=3)  # unknown parameter
    with pytest.raises(ValueError, match="dim"):
        idx.search(q[:, :16])
    with pytest.raises(ValueError, match="non-finite"):
        idx.search(np.full((2, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match="ncells"):
        idx.search(q, ncells=0)
    with pytest.raises(ValueError, match="NaN"):
        idx.search(q, centroid_score_threshold=float("nan"))


def test_bad_create(tmp_path):
    with pytest.raises(ValueError, match="nbits"):
        gingham.Index.create(tmp_path / "a", dim=32, nbits=3)
    with pytest.raises(ValueError, match="multiple of 8"):
        gingham.Index.create(tmp_path / "b", dim=10, nbits=2)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("keep")
    with pytest.raises(FileExistsError):
        gingham.Index.create(tmp_path / "c", dim=32)
    with pytest.raises(FileNotFoundError):
        gingham.Index.open(tmp_path / "missing")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_more_centroids_than_tokens_is_capped(tmp_path):
    docs = clustered_docs(3, 16, 2, seed=4, min_len=2, max_len=2)  # 6 tokens
    idx = gingham.Index.create(tmp_path / "tiny", dim=16, n_centroids=64)
    idx.add(["a", "b", "c"], docs)
    assert idx.stats()["n_centroids"] == 6
    assert [h.id for h in idx.search(docs[1], k=1)] == ["b"]
    assert len(idx.search(docs[1], k=5)) == 3
