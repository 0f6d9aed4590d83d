"""Residual codec: bit layout, bucket fitting, scales and round-trip error against numpy."""
import numpy as np
import pytest

from gingham import _core
from plaid_data import clustered_docs, decode_np, unpack_buckets


def trained(nbits, dim=32, n_centroids=64, seed=0):
    x = np.concatenate(clustered_docs(300, dim, 40, seed))
    c = _core.kmeans_fit(x, n_centroids, 5, seed)
    codes = _core.kmeans_assign(x, c)
    cutoffs, weights = _core.codec_fit_buckets(x, codes, c, nbits)
    return x, c, cutoffs, weights


def lloyd_max_np(values: np.ndarray, nbits: int, iters: int = 50):
    """Reference quantizer of one dimension: start at the quantiles, then alternate bucket
    means and midpoints (a value v is in bucket b when cutoff[b-1] < v <= cutoff[b])."""
    nb = 1 << nbits
    cut = np.quantile(values, np.arange(1, nb) / nb)
    w = np.quantile(values, (np.arange(nb) + 0.5) / nb)
    for _ in range(iters):
        b = (values[:, None] > cut[None, :]).sum(1)
        for j in range(nb):
            if (b == j).any():
                w[j] = values[b == j].mean()
        new = 0.5 * (w[1:] + w[:-1])
        if np.array_equal(new, cut):
            break
        cut = new
    return cut, w


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_fit_buckets_are_lloyd_max(nbits):
    x, c, cutoffs, weights = trained(nbits)
    r = x.astype(np.float32) - c[_core.kmeans_assign(x, c)]
    for d in range(0, x.shape[1], 7):
        cut, w = lloyd_max_np(np.sort(r[:, d]).astype(np.float64), nbits)
        np.testing.assert_allclose(cutoffs[d], cut, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(weights[d], w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_lloyd_max_beats_quantile_buckets(nbits):
    """Squared error of the fitted quantizer is at most that of the quantile buckets it starts
    from (numpy), on the training residuals."""
    x, c, cutoffs, weights = trained(nbits)
    r = (x - c[_core.kmeans_assign(x, c)]).astype(np.float64)
    nb = 1 << nbits

    def sq_error(cut, w):  # cut (d, nb - 1), w (d, nb)
        b = (r[:, :, None] > cut[None, :, :]).sum(2)
        return np.mean((r - w[np.arange(r.shape[1])[None, :], b]) ** 2)

    q_cut = np.quantile(r, np.arange(1, nb) / nb, axis=0).T
    q_w = np.quantile(r, (np.arange(nb) + 0.5) / nb, axis=0).T
    assert sq_error(cutoffs, weights) < sq_error(q_cut, q_w)


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_encode_layout_and_decode_match_numpy(nbits):
    x, c, cutoffs, weights = trained(nbits)
    codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, nbits)
    assert codes.dtype == np.uint16 and residuals.shape == (len(x), 32 * nbits // 8)
    np.testing.assert_array_equal(codes, _core.kmeans_assign(x, c))
    # buckets read back with numpy.unpackbits: strictly above cutoff b-1, at most cutoff b
    r = x - c[codes.astype(np.int64)]
    buckets = unpack_buckets(residuals, 32, nbits)
    expected = (r[:, :, None] > cutoffs[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(buckets, expected)
    # scale = |x| / |centroid + weights| as float16
    y = decode_np(codes, residuals, np.ones(len(x)), c, weights, nbits)
    want = (np.linalg.norm(x.astype(np.float64), axis=1) / np.linalg.norm(y, axis=1))
    assert scales.dtype == np.float16
    np.testing.assert_allclose(scales.astype(np.float64), want, rtol=1e-3)
    decoded = _core.codec_decode(codes, residuals, scales, c, weights, nbits)
    np.testing.assert_allclose(decoded, decode_np(codes, residuals, scales, c, weights, nbits),
                               rtol=1e-6, atol=1e-6)
    # the decoded tokens keep the norms of x (up to float16 rounding of the scale)
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), np.linalg.norm(x, axis=1),
                               rtol=1e-3)


def test_scale_is_capped_at_the_largest_float16():
    c = np.zeros((1, 8), np.float32)
    cutoffs = np.zeros((8, 1), np.float32)
    weights = np.full((8, 2), 1e-9, np.float32)  # reconstructions next to the origin
    x = np.full((1, 8), 10.0, np.float32)
    codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, 1)
    assert scales.tolist() == [float(np.finfo(np.float16).max)]


def test_scale_of_zero_reconstruction_is_one():
    c = np.zeros((1, 8), np.float32)
    cutoffs = np.zeros((8, 1), np.float32)
    weights = np.zeros((8, 2), np.float32)  # every token decodes to 0 before scaling
    x = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [0] * 8], np.float32)
    codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, 1)
    assert scales.tolist() == [1.0, 1.0]
    assert not _core.codec_decode(codes, residuals, scales, c, weights, 1).any()


def test_pack_order_hand_computed():
    # dim 4, nbits 2, one centroid at 0: residual = x; cutoffs -1, 0, 1 per dimension
    c = np.zeros((1, 4), np.float32)
    cutoffs = np.tile(np.array([-1.0, 0.0, 1.0], np.float32), (4, 1))
    x = np.array([[-2.0, -0.5, 0.5, 2.0]], np.float32)  # buckets 0, 1, 2, 3
    weights = np.zeros((4, 4), np.float32)
    codes, residuals, _ = _core.codec_encode(x, c, cutoffs, weights, 2)
    assert residuals.tolist() == [[0b00011011]]
    x = np.array([[2.0, 0.5, -0.5, -2.0, 2.0, 2.0, 2.0, 2.0]], np.float32)
    c8 = np.zeros((1, 8), np.float32)
    cut8 = np.zeros((8, 1), np.float32)
    _, r1, _ = _core.codec_encode(x, c8, cut8, np.zeros((8, 2), np.float32), 1)  # 11001111
    assert r1.tolist() == [[0b11001111]]


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_round_trip_error_bounds(nbits):
    x, c, cutoffs, weights = trained(nbits)
    codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, nbits)
    decoded = _core.codec_decode(codes, residuals, np.ones(len(x), np.float16), c, weights,
                                 nbits)
    r = x - c[codes.astype(np.int64)]
    buckets = unpack_buckets(residuals, 32, nbits)
    nb = 1 << nbits
    lower = np.concatenate([np.full((32, 1), -np.inf), cutoffs], axis=1)
    upper = np.concatenate([cutoffs, np.full((32, 1), np.inf)], axis=1)
    lo = lower[np.arange(32)[None, :], buckets]
    hi = upper[np.arange(32)[None, :], buckets]
    err = np.abs(x - decoded)
    interior = np.isfinite(lo) & np.isfinite(hi)
    # inside an interior bucket the error is at most the bucket's width (plus rounding)
    assert np.all(err[interior] <= (hi - lo)[interior] + 1e-5)
    # the decoded token is closer to x than its centroid alone, and error shrinks with nbits
    assert np.mean(err ** 2) < np.mean(r ** 2)
    cos = (x * decoded).sum(1) / np.linalg.norm(decoded, axis=1)
    assert np.median(cos) > {1: 0.9, 2: 0.95, 4: 0.98}[nbits]
    # scaling to the token's norm changes the length, never the direction
    scaled = _core.codec_decode(codes, residuals, scales, c, weights, nbits)
    np.testing.assert_allclose(scaled, scales.astype(np.float32)[:, None] * decoded, rtol=1e-6)
    assert nb == weights.shape[1]


def test_error_decreases_with_nbits():
    errs = []
    for nbits in (1, 2, 4):
        x, c, cutoffs, weights = trained(nbits)
        codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, nbits)
        errs.append(np.mean((x - _core.codec_decode(codes, residuals, scales, c, weights,
                                                    nbits)) ** 2))
    assert errs[0] > errs[1] > errs[2]


def test_uint32_codes_beyond_65536_centroids():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((65537, 8)).astype(np.float32)
    x = c[[0, 65536, 12345]] + 0.001
    cutoffs = np.zeros((8, 1), np.float32)
    weights = np.tile(np.array([-0.001, 0.001], np.float32), (8, 1))
    codes, residuals, scales = _core.codec_encode(x, c, cutoffs, weights, 1)
    assert codes.dtype == np.uint32 and codes.tolist() == [0, 65536, 12345]
    np.testing.assert_allclose(_core.codec_decode(codes, residuals, scales, c, weights, 1), x,
                               atol=1e-3)


def test_bad_arguments():
    c = np.zeros((2, 12), np.float32)
    with pytest.raises(ValueError, match="nbits"):
        _core.codec_encode(c, c, np.zeros((12, 2), np.float32), np.zeros((12, 4), np.float32), 3)
    with pytest.raises(ValueError, match="multiple of 8"):
        _core.codec_encode(c, c, np.zeros((12, 1), np.float32), np.zeros((12, 2), np.float32), 1)
    z16 = np.zeros((2, 16), np.float32)
    with pytest.raises(ValueError, match="bucket_cutoffs"):
        _core.codec_encode(z16, z16, np.zeros((16, 2), np.float32), np.zeros((16, 4), np.float32),
                           2)
    with pytest.raises(ValueError, match="bucket_weights"):
        _core.codec_encode(z16, z16, np.zeros((16, 3), np.float32), np.zeros((16, 3), np.float32),
                           2)
    one = np.ones(1, np.float16)
    with pytest.raises(ValueError, match="codes"):
        _core.codec_decode(np.array([5], np.uint16), np.zeros((1, 4), np.uint8), one,
                           z16, np.zeros((16, 4), np.float32), 2)
    with pytest.raises(ValueError, match="scales"):
        _core.codec_decode(np.array([1], np.uint16), np.zeros((1, 4), np.uint8),
                           np.ones(2, np.float16), z16, np.zeros((16, 4), np.float32), 2)
    with pytest.raises(TypeError, match="scales must be float16"):
        _core.codec_decode(np.array([1], np.uint16), np.zeros((1, 4), np.uint8),
                           np.ones(1, np.float32), z16, np.zeros((16, 4), np.float32), 2)
