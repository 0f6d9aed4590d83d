"""k-means and nearest-centroid assignment against numpy references."""
import numpy as np
import pytest

from gingham import _core

LEVELS = [lvl for lvl in _core.supported_simd_levels() if lvl in ("scalar", "avx2", "avx512")]


@pytest.fixture(autouse=True)
def _restore_level():
    before = _core.simd_level()
    yield
    _core.set_simd_level(before)


def lloyd_np(x, init, n_iters):
    c = init.astype(np.float64).copy()
    x64 = x.astype(np.float64)
    for _ in range(n_iters):
        d = (x64 ** 2).sum(1)[:, None] - 2 * x64 @ c.T + (c ** 2).sum(1)[None, :]
        ids = d.argmin(1)
        for j in range(len(c)):
            if (ids == j).any():
                c[j] = x64[ids == j].mean(0)
    return c


def assignment_ok(x, centroids, ids):
    """ids are nearest centroids up to float32 rounding (near-ties may go either way)."""
    x64, c64 = x.astype(np.float64), centroids.astype(np.float64)
    d = ((x64[:, None, :] - c64[None]) ** 2).sum(-1)
    best = d.min(1)
    chosen = d[np.arange(len(x)), ids]
    return np.all(chosen <= best + 1e-4 * (1 + best))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dim,n,k", [(1, 50, 3), (7, 101, 17), (17, 200, 16), (33, 97, 40),
                                     (128, 500, 70)])
def test_assign_matches_numpy(level, dim, n, k):
    _core.set_simd_level(level)
    rng = np.random.default_rng(dim * 1000 + n)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    c = rng.standard_normal((k, dim)).astype(np.float32)
    ids = _core.kmeans_assign(x, c)
    assert ids.dtype == np.int32 and ids.shape == (n,)
    assert assignment_ok(x, c, ids)
    d = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1)
    assert (ids == d.argmin(1)).mean() > 0.99


def test_assign_levels_agree_and_ties_go_to_lower_id():
    rng = np.random.default_rng(1)
    c = rng.standard_normal((40, 16)).astype(np.float32)
    c = np.concatenate([c, c])  # every centroid twice: the lower copy must win
    x = rng.standard_normal((300, 16)).astype(np.float32)
    results = []
    for level in LEVELS:
        _core.set_simd_level(level)
        ids = _core.kmeans_assign(x, c)
        assert ids.max() < 40
        results.append(ids)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_ties_across_panel_blocks_go_to_lower_id():
    """At d = 128 one arg-max call covers 512 centroids (kmeans.cpp): 700 centroids, each
    duplicated 700 places later, span several calls; the lower copy must still win, and every
    level must match the float64 nearest centroid."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((700, 128)).astype(np.float32)
    c = np.concatenate([base, base])
    x = (base[rng.integers(0, 700, 400)] + 0.05 * rng.standard_normal((400, 128))).astype(
        np.float32)
    for level in LEVELS:
        _core.set_simd_level(level)
        ids = _core.kmeans_assign(x, c)
        assert ids.max() < 700, level
        assert assignment_ok(x, c, ids), level


def test_lloyd_matches_numpy_reference():
    rng = np.random.default_rng(2)
    centers = rng.standard_normal((8, 12)) * 3
    x = (centers[rng.integers(0, 8, 600)] + rng.standard_normal((600, 12))).astype(np.float32)
    init = x[rng.choice(600, 8, replace=False)].copy()
    got = _core.kmeans_fit(x, 8, n_iters=6, seed=0, init=init)
    np.testing.assert_allclose(got, lloyd_np(x, init, 6), rtol=1e-4, atol=1e-4)


def test_seeded_and_thread_independent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        a = _core.kmeans_fit(x, 50, 5, seed=7)
        _core.set_num_threads(2)
        b = _core.kmeans_fit(x, 50, 5, seed=7)
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(a, b)
    c = _core.kmeans_fit(x, 50, 5, seed=8)
    assert not np.array_equal(a, c)
    # the initial centroids are data rows
    init = _core.kmeans_fit(x, 50, 0, seed=7)
    assert all((np.abs(x - row).sum(1) == 0).any() for row in init)


def test_duplicates_and_as_many_centroids_as_points():
    x = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # 4 distinct points, 40 rows
    c = _core.kmeans_fit(x, 40, 5, seed=0)
    assert np.isfinite(c).all()
    ids = _core.kmeans_assign(x, c)
    np.testing.assert_array_equal(c[ids], x)  # every point sits on its centroid
    with pytest.raises(ValueError, match="n_centroids"):
        _core.kmeans_fit(x, 41, 5, seed=0)


def test_sample_indices():
    a = _core.sample_indices(1000, 300, 5)
    assert len(np.unique(a)) == 300 and a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(a, _core.sample_indices(1000, 300, 5))
    assert sorted(_core.sample_indices(10, 10, 1).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        _core.sample_indices(5, 6, 0)


def restricted_lloyd_np(x, init, n_iters, m):
    """Lloyd whose passes after the first compare each row only with the m centroids nearest
    (L2) to the one it is assigned to, that centroid included (float64)."""
    c = init.astype(np.float64).copy()
    x64 = x.astype(np.float64)
    ids = None
    for it in range(n_iters):
        d = (x64 ** 2).sum(1)[:, None] - 2 * x64 @ c.T + (c ** 2).sum(1)[None, :]
        if it > 0:
            between = ((c[:, None, :] - c[None]) ** 2).sum(-1)
            np.fill_diagonal(between, -1.0)
            near = np.argsort(between, axis=1, kind="stable")[:, :m]
            allowed = np.zeros(d.shape, dtype=bool)
            allowed[np.arange(len(x))[:, None], near[ids]] = True
            d = np.where(allowed, d, np.inf)
        ids = d.argmin(1)
        for j in range(len(c)):
            if (ids == j).any():
                c[j] = x64[ids == j].mean(0)
    return c


def clustered(rng, n, dim, n_centers, spread=3.0):
    centers = rng.standard_normal((n_centers, dim)) * spread
    return (centers[rng.integers(0, n_centers, n)] + rng.standard_normal((n, dim))
            ).astype(np.float32)


def test_neighbour_restricted_lloyd_matches_numpy_reference():
    rng = np.random.default_rng(5)
    x = clustered(rng, 1500, 8, 30, spread=1.5)
    init = x[rng.choice(len(x), 40, replace=False)].copy()
    got = _core.kmeans_fit(x, 40, n_iters=5, seed=0, init=init, neighbors=6)
    want = restricted_lloyd_np(x, init, 5, 6)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the restriction changed the result: the test exercises it
    assert np.abs(want - lloyd_np(x, init, 5)).max() > 1e-3


def test_neighbours_at_least_all_centroids_is_exact_lloyd():
    rng = np.random.default_rng(6)
    x = clustered(rng, 800, 16, 12)
    for m in (0, 20, 50):
        np.testing.assert_array_equal(_core.kmeans_fit(x, 20, 4, seed=3, neighbors=m),
                                      _core.kmeans_fit(x, 20, 4, seed=3))


def test_neighbour_restricted_lloyd_is_close_and_thread_independent():
    rng = np.random.default_rng(7)
    x = clustered(rng, 6000, 32, 200)

    def mse(c):
        return float(((x - c[_core.kmeans_assign(x, c)]) ** 2).sum(1).mean())

    exact = mse(_core.kmeans_fit(x, 256, 8, seed=1))
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        one = _core.kmeans_fit(x, 256, 8, seed=1, neighbors=32)
        _core.set_num_threads(2)
        two = _core.kmeans_fit(x, 256, 8, seed=1, neighbors=32)
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    assert mse(one) <= 1.03 * exact
    with pytest.raises(ValueError, match="neighbors must be >= 0"):
        _core.kmeans_fit(x, 8, 2, neighbors=-1)
