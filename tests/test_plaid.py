"""Staged PLAID search (gingham._core.plaid_search) against numpy oracles."""
import numpy as np
import pytest

from gingham import _core
from plaid_data import (
    approx_reference,
    clustered_docs,
    csr,
    decode_np,
    maxsim_np,
    queries_from,
    topk_np,
)

NBITS = 2
INF = float("-inf")


class Corpus:
    """A codec and segments built directly from _core calls."""

    def __init__(self, n_docs=600, dim=32, n_centroids=128, nbits=NBITS, seed=0, splits=(0.5,),
                 empty=()):
        docs = clustered_docs(n_docs, dim, 60, seed)
        for i in empty:
            docs[i] = np.zeros((0, dim), np.float32)
        self.docs, self.nbits, self.dim = docs, nbits, dim
        tokens, _ = csr(docs)
        self.centroids = _core.kmeans_fit(tokens, n_centroids, 5, seed)
        codes = _core.kmeans_assign(tokens, self.centroids)
        self.cutoffs, self.weights = _core.codec_fit_buckets(tokens, codes, self.centroids, nbits)
        self.codec = _core.Codec(self.centroids, self.cutoffs, self.weights, nbits)
        bounds = [0] + [int(s * n_docs) for s in splits] + [n_docs]
        self.segments, decoded = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            t, off = csr(docs[a:b])
            codes, res, scales = _core.codec_encode(t, self.centroids, self.cutoffs, self.weights,
                                                    nbits)
            ivf_off, ivf_ids = _core.ivf_build(codes, off, n_centroids)
            self.segments.append((codes, res, scales, off, ivf_off, ivf_ids, None))
            decoded.append(decode_np(codes, res, scales, self.centroids, self.weights, nbits))
        self.decoded_tokens = np.concatenate(decoded)
        self.offsets = csr(docs)[1]
        self.native = [self.segment(s) for s in self.segments]
        self.bases = np.cumsum([0] + [len(s[3]) - 1 for s in self.segments])

    def segment(self, arrays):
        """A native segment of (codes, residuals, scales, doc_offsets, ivf_offsets,
        ivf_doc_ids, ...) over this codec."""
        return _core.ResidualSegment(self.codec, *arrays[:6])

    def search(self, queries, k, ncells=1, threshold=0.5, ndocs=256, exact=False, masks=None,
               segments=None):
        """-> (scores, global document ids (segment base + row), stats records)."""
        segments = self.native if segments is None else segments
        masks = [None] * len(segments) if masks is None else masks
        stacked, q_off = csr(queries)
        scores, seg, rows, stats = _core.plaid_search(stacked, q_off, segments, masks, k, ncells,
                                                      threshold, ndocs, exact)
        return scores, self.bases[seg] + rows, stats

    def oracle(self, query):
        """float64 MaxSim of the query against the decoded tokens of every document."""
        return maxsim_np(query, self.decoded_tokens, self.offsets)


@pytest.fixture(scope="module")
def corpus():
    return Corpus(empty=(3, 400))


@pytest.fixture(scope="module")
def queries(corpus):
    return queries_from(corpus.docs[:3] + corpus.docs[4:], 12, 8, seed=1)


def test_default_params():
    assert _core.plaid_default_params(10) == (1, pytest.approx(0.5), 256)
    assert _core.plaid_default_params(11) == (2, pytest.approx(0.45), 1024)
    assert _core.plaid_default_params(100) == (2, pytest.approx(0.45), 1024)
    assert _core.plaid_default_params(101) == (4, pytest.approx(0.4), 4096)


def test_exact_mode_matches_numpy_decode(corpus, queries):
    scores, ids, _ = corpus.search(queries, k=20, exact=True)
    assert ids.shape == (12, 20)
    for q, s_row, i_row in zip(queries, scores, ids):
        ref = corpus.oracle(q)
        np.testing.assert_allclose(s_row, ref[i_row], rtol=1e-5, atol=1e-5)
        want_s, _ = topk_np(ref, np.arange(len(ref)), 20)
        np.testing.assert_allclose(s_row, want_s, rtol=1e-5, atol=1e-5)  # same ranking
        assert 3 not in i_row and 400 not in i_row  # empty documents never appear


def test_exhaustive_staged_equals_exact(corpus, queries):
    """Every cell, no pruning, and ndocs / 4 >= n (stage 4 scores the best ndocs / 4)."""
    n = len(corpus.docs)
    for k in (1, 10, 100, 2000):
        a = corpus.search(queries, k, exact=True)
        b = corpus.search(queries, k, ncells=len(corpus.centroids), threshold=INF, ndocs=4 * n)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1].shape[1] == min(k, n - 2)


def probed_cells(query, centroids, ncells):
    """The union over query rows of the ncells centroids of highest cosine (plaid.h stage 2)."""
    c64 = centroids.astype(np.float64)
    cos = (query.astype(np.float64) @ c64.T) / np.linalg.norm(c64, axis=1)
    return np.unique(np.argsort(-cos, axis=1, kind="stable")[:, :ncells])


def test_candidate_stage_counts(corpus, queries):
    """n_candidates equals the union of the documents of each query row's ncells centroids of
    highest cosine (numpy oracle)."""
    for ncells in (1, 3):
        _, _, stats = corpus.search(queries, 5, ncells=ncells, threshold=INF, ndocs=10_000)
        for q, row in zip(queries, stats):
            cells = probed_cells(q, corpus.centroids, ncells)
            docs = set()
            base = 0
            for seg in corpus.segments:
                ivf_off, ivf_ids = seg[4], seg[5]
                for c in cells:
                    docs.update((base + ivf_ids[ivf_off[c]:ivf_off[c + 1]]).tolist())
                base += len(seg[3]) - 1
            assert row["n_cells"] == len(cells)
            assert row["n_candidates"] == len(docs)
            assert row["n_full"] == len(docs) if len(docs) >= 5 else True


def test_candidates_and_approximate_scores_on_every_level():
    """_core.plaid_candidates keeping every candidate: the candidates are the documents of the
    probed cells (numpy oracle), and their pruned and unpruned approximate scores equal
    approx_reference, alike on every SIMD level. One cell of a one-row query holds
    few of the documents (the candidate ids are sorted); every cell holds all of them (the
    candidate marks are read back in order)."""
    c = Corpus(n_docs=2000, n_centroids=256, seed=3, splits=(0.3, 0.7))
    n_docs = int(c.bases[-1])
    codes = np.concatenate([seg[0] for seg in c.segments]).astype(np.int64)
    before = _core.simd_level()
    try:
        for ncells, n_rows in ((1, 1), (256, 20), (256, 40), (256, 70)):  # lp 16, 32, 48, 80
            q = queries_from(c.docs, 1, n_rows, seed=ncells)[0]
            cells = probed_cells(q, c.centroids, ncells)
            want_docs = {d for d in range(n_docs) if len(c.docs[d])
                         and np.isin(codes[c.offsets[d]:c.offsets[d + 1]], cells).any()}
            assert (len(want_docs) * 16 < n_docs) == (ncells == 1)
            per_level = []
            for level in [lvl for lvl in _core.supported_simd_levels() if lvl != "neon"]:
                _core.set_simd_level(level)
                n_cand, n_kept, approx, rescored, segs, rows = _core.plaid_candidates(
                    q, np.array([0, len(q)], np.int64), c.native, [None] * len(c.native), 1,
                    ncells, 0.5, 10 * n_docs)
                got = c.bases[segs[0, :n_kept[0]]] + rows[0, :n_kept[0]]
                assert n_cand[0] == n_kept[0] == len(want_docs)
                assert set(got.tolist()) == want_docs
                per_level.append((got, approx[0, :n_kept[0]], rescored[0, :n_kept[0]]))
            got, approx, rescored = per_level[0]
            for threshold, values in ((0.5, approx), (INF, rescored)):
                want = [approx_reference(q, c.centroids, codes, c.offsets, d, threshold)
                        for d in got]
                np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-5)
            for other in per_level[1:]:  # stage 1 differs between levels in FMA rounding only
                mine, theirs = np.argsort(got), np.argsort(other[0])
                np.testing.assert_array_equal(got[mine], other[0][theirs])
                for a, b in zip(per_level[0][1:], other[1:]):
                    np.testing.assert_allclose(a[mine], b[theirs], rtol=1e-6, atol=1e-6)
    finally:
        _core.set_simd_level(before)


def test_staged_scores_are_exact_scores(corpus, queries):
    scores, ids, stats = corpus.search(queries, 10)
    assert (stats["n_full"] <= 64 + 0).all() or (stats["n_candidates"] < 10).any()
    for q, s_row, i_row in zip(queries, scores, ids):
        np.testing.assert_allclose(s_row, corpus.oracle(q)[i_row], rtol=1e-5, atol=1e-5)
        assert len(set(i_row.tolist())) == len(i_row)
        assert np.all(np.diff(s_row) <= 0)


def test_recall_on_clustered_data():
    c = Corpus(n_docs=3000, dim=64, n_centroids=256, seed=5, splits=())
    qs = queries_from(c.docs, 30, 16, seed=6)
    exact = c.search(qs, 10, exact=True)[1]
    staged = c.search(qs, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(), staged.tolist())])
    assert recall >= 0.9


def test_masks_exclude_documents(corpus, queries):
    n0 = len(corpus.segments[0][3]) - 1
    n = len(corpus.docs)
    rng = np.random.default_rng(3)
    mask = (rng.random(n) < 0.3).astype(np.uint8)
    masks = [mask[:n0].copy(), mask[n0:].copy()]
    searchable = [i for i in range(n) if mask[i] and len(corpus.docs[i])]
    for exact in (True, False):
        scores, ids, _ = corpus.search(queries, 10, exact=exact, masks=masks)
        assert ids.shape[1] == 10
        assert set(ids.ravel().tolist()) <= set(searchable)
    # exact mode under a mask = oracle restricted to the mask
    scores, ids, _ = corpus.search(queries[:3], 15, exact=True, masks=masks)
    for q, s_row in zip(queries[:3], scores):
        ref = corpus.oracle(q)[searchable]
        np.testing.assert_allclose(s_row, np.sort(ref)[::-1][:15], rtol=1e-5, atol=1e-5)


def test_selective_mask_falls_back_to_exact(corpus, queries):
    n0 = len(corpus.segments[0][3]) - 1
    n = len(corpus.docs)
    keep = [5, 77, 450, 3]  # doc 3 is empty: never returned
    mask = np.zeros(n, np.uint8)
    mask[keep] = 1
    masks = [mask[:n0].copy(), mask[n0:].copy()]
    scores, ids, stats = corpus.search(queries, 10, masks=masks)
    assert ids.shape == (len(queries), 3)
    for q, s_row, i_row in zip(queries, scores, ids):
        assert sorted(i_row.tolist()) == [5, 77, 450]
        np.testing.assert_allclose(s_row, np.sort(corpus.oracle(q)[[5, 77, 450]])[::-1],
                                   rtol=1e-5, atol=1e-5)
    assert (stats["n_full"] == 3).all()
    empty = [np.zeros(n0, np.uint8), np.zeros(n - n0, np.uint8)]
    scores, ids, _ = corpus.search(queries, 10, masks=empty)
    assert ids.shape == (len(queries), 0)


def test_threads_batch_and_levels_agree(corpus, queries):
    before_threads, before_level = _core.get_num_threads(), _core.simd_level()
    results = []
    try:
        for threads in (1, 2):
            _core.set_num_threads(threads)
            for level in [lvl for lvl in _core.supported_simd_levels() if lvl != "neon"]:
                _core.set_simd_level(level)
                batch = corpus.search(queries, 10, ndocs=64)
                single = [corpus.search([q], 10, ndocs=64) for q in queries]
                np.testing.assert_array_equal(batch[1], np.concatenate([s[1] for s in single]))
                results.append(batch)
    finally:
        _core.set_num_threads(before_threads)
        _core.set_simd_level(before_level)
    for r in results[1:]:
        np.testing.assert_array_equal(r[1], results[0][1])
        np.testing.assert_allclose(r[0], results[0][0], rtol=1e-5, atol=1e-5)


def test_score_docs_from_codes(corpus, queries):
    n0 = len(corpus.segments[0][3]) - 1
    ids = np.array([0, 5, 99, 400 - n0, 7], np.int64)
    got = _core.plaid_score_docs(queries[0], corpus.native[1], ids)
    ref = corpus.oracle(queries[0])[ids + n0]
    assert got[3] == -np.inf
    keep = np.isfinite(ref)
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nbits", [1, 4])
def test_other_nbits_exact(nbits):
    c = Corpus(n_docs=200, dim=16, n_centroids=32, nbits=nbits, seed=2)
    qs = queries_from(c.docs, 4, 5, seed=3)
    scores, ids, _ = c.search(qs, 7, exact=True)
    for q, s_row, i_row in zip(qs, scores, ids):
        np.testing.assert_allclose(s_row, c.oracle(q)[i_row], rtol=1e-5, atol=1e-5)


def test_bad_arguments(corpus, queries):
    with pytest.raises(ValueError, match="k must"):
        corpus.search(queries, 0)
    with pytest.raises(ValueError, match="ncells"):
        corpus.search(queries, 5, ncells=0)
    with pytest.raises(ValueError, match="mask"):
        corpus.search(queries, 5, masks=[np.ones(3, np.uint8), None])
    bad = list(corpus.segments[0])
    bad[4] = bad[4][:-1]
    with pytest.raises(ValueError, match="ivf_offsets"):
        corpus.segment(bad)
    bad = list(corpus.segments[0])
    bad[5] = bad[5].copy()
    bad[5][0] = 10_000
    with pytest.raises(ValueError, match="ivf_doc_ids"):
        corpus.segment(bad)
    bad = list(corpus.segments[0])
    bad[2] = bad[2].copy()
    bad[2][1] = np.inf
    with pytest.raises(ValueError, match="scales"):
        corpus.segment(bad)
    bad[2] = bad[2][:-1]
    with pytest.raises(ValueError, match="scales"):
        corpus.segment(bad)
    bad[2] = corpus.segments[0][2].astype(np.float32)
    with pytest.raises(TypeError, match="float16"):
        corpus.segment(bad)


def test_segments_without_scales_decode_with_scale_one(corpus, queries):
    """Format-1 residual segments carry no scales: they score as if every scale were 1."""
    ones = [corpus.segment(s[:2] + (np.ones(len(s[0]), np.float16),) + s[3:])
            for s in corpus.segments]
    none = [corpus.segment(s[:2] + (None,) + s[3:]) for s in corpus.segments]
    want = corpus.search(queries, 10, exact=True, segments=ones)
    got = corpus.search(queries, 10, exact=True, segments=none)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    args = (corpus.centroids, corpus.weights, corpus.nbits)
    seg = corpus.segments[0]
    np.testing.assert_array_equal(
        _core.codec_decode(seg[0], seg[1], None, *args),
        _core.codec_decode(seg[0], seg[1], np.ones(len(seg[0]), np.float16), *args))


def _hand_corpus(token_codes, centroids):
    """A codec whose decoded tokens are exactly its centroids (every weight 0, scale 1), and
    one segment of documents made of the listed centroid codes."""
    centroids = np.asarray(centroids, np.float32)
    dim = centroids.shape[1]
    cutoffs = np.tile(np.array([-0.5, 0.0, 0.5], np.float32), (dim, 1))
    codec = _core.Codec(centroids, cutoffs, np.zeros((dim, 4), np.float32), NBITS)
    codes = np.array([c for doc in token_codes for c in doc], np.uint16)
    offsets = np.cumsum([0] + [len(d) for d in token_codes]).astype(np.int64)
    residuals = np.zeros((len(codes), dim * NBITS // 8), np.uint8)
    scales = np.ones(len(codes), np.float16)
    ivf_off, ivf_ids = _core.ivf_build(codes, offsets, len(centroids))
    return _core.ResidualSegment(codec, codes, residuals, scales, offsets, ivf_off, ivf_ids)


# Unit centroids; against query rows q0 = e0, q1 = e1 they score:
HAND_CENTROIDS = [[1.0, 0.0, 0.0, 0.0],     # c0: (1, 0)
                  [0.0, 1.0, 0.0, 0.0],     # c1: (0, 1)
                  [0.4, 0.4, 0.8, 0.2],     # c2: (0.4, 0.4): pruned at threshold 0.5
                  [0.64, 0.6, 0.48, 0.0],   # c3: (0.64, 0.6)
                  [0.6, -0.8, 0.0, 0.0]]    # c4: (0.6, -0.8)


def test_pruned_row_adds_nothing_to_the_approximate_score():
    """Hand-computed stage 3 at threshold 0.5, every cell probed, ndocs = k = 1: only the best
    approximate score reaches stage 4, so the winner shows which approximate score was highest.

    [c0]:     approx 1 + 0 = 1.0 (exact 1.0)
    [c3]:     approx 0.64 + 0.6 = 1.24 (exact 1.24): wins. Flooring each row's maximum at the
              threshold would give [c0] 1 + 0.5 = 1.5 and pick it.
    [c2, c2]: every token pruned, no row reached: each adds 0, approx 0 (exact 0.8)
    [c4]:     approx 0.6 - 0.8 = -0.2 (exact -0.2): below [c2, c2], which colbert-ai's -9999
              per unreached row would rank last, and the floor at 1.0 < 1.1 below [c4].
    """
    query = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32)
    offsets = np.array([0, 2], np.int64)

    def winner(docs):
        segment = _hand_corpus(docs, HAND_CENTROIDS)
        scores, _, rows, stats = _core.plaid_search(query, offsets, [segment], [None], 1,
                                                    len(HAND_CENTROIDS), 0.5, 1, False)
        assert stats["n_candidates"][0] == len(docs) and stats["n_after_pruning"][0] == 1
        return int(rows[0, 0]), float(scores[0, 0])

    assert winner([[0], [3], [2, 2], [4]]) == (1, pytest.approx(1.24))
    assert winner([[0], [2, 2]]) == (0, pytest.approx(1.0))   # 1.0 + 0 beats 0 + 0
    assert winner([[4], [0]]) == (1, pytest.approx(1.0))      # -0.2 < 1.0 + 0
    # every token pruned: approx 0 beats -0.2; stage 4 then reports its exact 0.8
    assert winner([[2, 2], [4]]) == (0, pytest.approx(0.8))


def test_cells_are_the_centroids_of_highest_cosine():
    """Query row e0 against a = 0.5 e0 (dot 0.5, cosine 1) and b = (0.6, 0.8) (dot 0.6, cosine
    0.6): the probed cell is a, the centroid e0's tokens would be coded to, so only [a] is a
    candidate although [b] has the higher exact score."""
    segment = _hand_corpus([[0], [1]], [[0.5, 0.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0]])
    query = np.array([[1, 0, 0, 0]], np.float32)
    scores, _, rows, stats = _core.plaid_search(query, np.array([0, 1], np.int64), [segment],
                                                [None], 1, 1, INF, 10, False)
    assert stats["n_cells"][0] == 1 and stats["n_candidates"][0] == 1
    assert rows.tolist() == [[0]] and scores[0, 0] == pytest.approx(0.5)
    exact = _core.plaid_search(query, np.array([0, 1], np.int64), [segment], [None], 1, 1, INF,
                               10, True)
    assert exact[2].tolist() == [[1]] and exact[0][0, 0] == pytest.approx(0.6)
