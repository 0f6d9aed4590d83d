"""Finite inputs whose sums overflow: +inf + -inf over query tokens is NaN in the flat kernels
and in PLAID's centroid LUT sums alike. At every SIMD level the scores equal the scalar
kernel's (same NaN and inf positions, finite values within rounding), and every top-k ranks
NaN after every number, among themselves by id, so the sort stays a strict weak order."""
import numpy as np
import pytest

from gingham import _core

LEVELS = _core.supported_simd_levels()
DIM, NBITS = 4, 2
# one token per document, each on a centroid: the dot products are exact and only their sum
# over the two query tokens overflows
CENTROIDS = np.array([[2, 0, 0, 0], [0, 1, 0, 0], [-2, 0, 0, 0], [0, 0, 1, 0],
                      [0, 0, 0, 3]], np.float32)
DOCS = CENTROIDS[[0, 1, 2, 3, 4, 0, 2]]
OFFSETS = np.arange(len(DOCS) + 1, dtype=np.int64)
QUERY = np.array([[3e38, 0, 1, 1], [-3e38, 1, 0, 1]], np.float32)
QO = np.array([0, 2], np.int64)


@pytest.fixture
def at_level():
    before = _core.simd_level()
    yield _core.set_simd_level
    _core.set_simd_level(before)


def residual_segment():
    cutoffs = np.tile(np.array([-1e-3, 0, 1e-3], np.float32), (DIM, 1))  # (dim, 2^nbits - 1)
    weights = np.tile(np.array([-1e-4, -1e-5, 1e-5, 1e-4], np.float32), (DIM, 1))
    codes, residuals, scales = _core.codec_encode(DOCS, CENTROIDS, cutoffs, weights, NBITS)
    ivf_o, ivf_i = _core.ivf_build(codes, OFFSETS, len(CENTROIDS))
    codec = _core.Codec(CENTROIDS, cutoffs, weights, NBITS)
    return _core.ResidualSegment(codec, codes, residuals, scales, OFFSETS, ivf_o, ivf_i)


def expected_order(scores: np.ndarray) -> list[int]:
    """Best first, ties by id, NaN after every number (by id): the documented top-k order."""
    return sorted(range(len(scores)), key=lambda i: (bool(np.isnan(scores[i])),
                                                     0.0 if np.isnan(scores[i]) else
                                                     -float(scores[i]), i))


def same_scores(got, ref):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(ref) * np.sign(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-5)


def test_flat_scores_and_topk_at_every_level(at_level):
    at_level("scalar")
    ref = _core.maxsim_scores(QUERY, DOCS, OFFSETS)
    assert np.isnan(ref[[0, 2, 5, 6]]).all() and np.isfinite(ref[[1, 3, 4]]).all()
    for level in LEVELS:
        at_level(level)
        for tokens in (DOCS, DOCS.astype(np.float16)):
            got = _core.maxsim_scores(QUERY, tokens, OFFSETS)
            same_scores(got, ref)
            for k in (1, 3, 5, 7):
                scores, ids = _core.exact_search(QUERY, QO, tokens, OFFSETS, k)
                assert ids[0].tolist() == expected_order(ref)[:k], (level, k)
                same_scores(scores[0], ref[ids[0]])


def test_plaid_lut_sums_and_topk_at_every_level(at_level):
    seg = residual_segment()
    all_docs = np.arange(len(DOCS), dtype=np.int64)
    at_level("scalar")
    ref = _core.plaid_score_docs(QUERY, seg, all_docs)
    assert np.isnan(ref[[0, 2, 5, 6]]).all() and np.isfinite(ref[[1, 3, 4]]).all()
    for level in LEVELS:
        at_level(level)
        same_scores(_core.plaid_score_docs(QUERY, seg, all_docs), ref)
        for exact in (True, False):
            for k in (1, 3, 7):
                scores, _, rows, _ = _core.plaid_search(QUERY, QO, [seg], [None], k,
                                                        len(CENTROIDS), -np.inf, 64, exact)
                hits = [int(r) for r in rows[0] if r >= 0]
                order = expected_order(ref)
                if exact:
                    assert hits == order[:k], (level, k)
                # never a NaN ranked above a number
                nan = np.isnan(ref[hits])
                assert not np.any(nan[:-1] & ~nan[1:]), (level, exact, k, hits)


def test_int8_scaled_scores_overflow_the_same_way(at_level):
    q8, scales = _core.quantize_int8(DOCS)
    at_level("scalar")
    ref = _core.maxsim_scores(QUERY, q8, OFFSETS, scales)
    for level in LEVELS:
        at_level(level)
        same_scores(_core.maxsim_scores(QUERY, q8, OFFSETS, scales), ref)
        _, ids = _core.exact_search(QUERY, QO, q8, OFFSETS, 7, scales)
        assert ids[0].tolist() == expected_order(ref)
