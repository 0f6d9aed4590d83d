"""The synthetic-data generator: unit norm, lengths, reproducibility, clusteredness (brute
force over the centers), queries near documents."""
import numpy as np
import pytest

from gingham._synthetic import (
    clustered_corpus,
    clustered_docs,
    queries_near,
    sphere_centers,
    split,
    to_csr,
)


def test_unit_rows_lengths_and_layout():
    tokens, offsets = clustered_corpus(300, dim=24, n_centers=16, min_len=3, max_len=9, seed=5)
    assert tokens.dtype == np.float32 and offsets.dtype == np.int64
    assert tokens.shape == (offsets[-1], 24) and offsets[0] == 0 and len(offsets) == 301
    np.testing.assert_allclose(np.linalg.norm(tokens, axis=1), 1.0, atol=1e-6)
    lengths = np.diff(offsets)
    assert lengths.min() >= 3 and lengths.max() <= 9
    assert set(lengths.tolist()) == set(range(3, 10))  # 300 draws cover all 7 lengths


def test_seeded_reproducible_and_seed_sensitive(tmp_path):
    a = clustered_corpus(50, dim=8, n_centers=4, seed=1, chunk=7)
    b = clustered_corpus(50, dim=8, n_centers=4, seed=1, chunk=7,
                         out=tmp_path / "tokens.npy")
    np.testing.assert_array_equal(a[0], np.load(tmp_path / "tokens.npy"))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = clustered_corpus(50, dim=8, n_centers=4, seed=2, chunk=7)
    assert not np.array_equal(a[0][:10], c[0][:10])
    docs = clustered_docs(50, dim=8, n_centers=4, seed=1, chunk=7)
    np.testing.assert_array_equal(to_csr(docs)[0], a[0])
    assert [len(d) for d in split(*a)] == np.diff(a[1]).tolist()


def test_tokens_cluster_around_few_centers_per_document():
    dim, n_centers, topics = 64, 40, 3
    tokens, offsets = clustered_corpus(200, dim=dim, n_centers=n_centers, noise=0.3,
                                       topics=topics, seed=9)
    centers = sphere_centers(n_centers, dim, seed=9)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-6)
    cos = tokens.astype(np.float64) @ centers.T.astype(np.float64)  # brute force
    best = cos.max(axis=1)
    # noise of norm ~0.3 around a unit center: cosine ~ 1 / sqrt(1 + 0.09) ~ 0.96
    assert best.min() > 0.85
    # random unit vectors in 64-d: |cosine| ~ 1/8; the second-best center is far
    assert np.median(np.sort(cos, axis=1)[:, -2]) < 0.4
    nearest = cos.argmax(axis=1)
    for i in range(200):
        assert len(set(nearest[offsets[i]:offsets[i + 1]].tolist())) <= topics
    # no noise: every token is exactly one of the centers
    exact, _ = clustered_corpus(20, dim=dim, n_centers=n_centers, noise=0.0, seed=9)
    dist = np.abs(exact[:, None, :] - centers[None, :, :]).max(axis=2).min(axis=1)
    assert dist.max() < 1e-6


def test_queries_are_unit_and_near_a_document():
    tokens, offsets = clustered_corpus(80, dim=32, n_centers=64, seed=3)
    queries = queries_near(tokens, offsets, 10, n_tokens=6, noise=0.1, seed=4)
    assert len(queries) == 10
    for q in queries:
        assert q.shape == (6, 32) and q.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
        # every query token is within noise of some corpus token (brute force)
        assert (q.astype(np.float64) @ tokens.T.astype(np.float64)).max(axis=1).min() > 0.98
    again = queries_near(tokens, offsets, 10, n_tokens=6, noise=0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(queries, again))


@pytest.mark.parametrize("bad", [{"n_docs": 0}, {"dim": 0}, {"min_len": 0},
                                 {"min_len": 5, "max_len": 4}, {"noise": -1.0},
                                 {"n_docs": True}])
def test_bad_arguments_name_the_argument(bad):
    kwargs = {"n_docs": 3, **bad}
    name = next(iter(bad)) if "max_len" not in bad else "max_len"
    with pytest.raises(ValueError, match=name):
        clustered_corpus(kwargs.pop("n_docs"), **kwargs)
