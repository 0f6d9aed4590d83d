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


# --- the skewed topical corpus -------------------------------------------------------------

def test_skewed_shapes_units_and_lengths():
    from gingham._synthetic import SkewedCorpus
    corpus = SkewedCorpus(600, dim=16, n_centers=64, mean_len=20, min_len=5, max_len=40, seed=3)
    tokens, offsets = corpus.csr()
    assert tokens.dtype == np.float32 and offsets.dtype == np.int64
    assert tokens.shape == (offsets[-1], 16) and len(offsets) == 601 and offsets[0] == 0
    np.testing.assert_allclose(np.linalg.norm(tokens, axis=1), 1.0, atol=1e-5)
    lengths = np.diff(offsets)
    assert lengths.min() >= 5 and lengths.max() <= 40
    assert 17 < lengths.mean() < 23  # gamma law of mean 20, lightly clipped
    np.testing.assert_array_equal(corpus.lengths(), lengths)
    np.testing.assert_array_equal(corpus.lengths(100, 350), lengths[100:350])
    np.testing.assert_allclose(corpus.popularity.sum(), 1.0)
    np.testing.assert_allclose(corpus.popularity[0] / corpus.popularity[9], 10.0)


def test_skewed_chunks_reproduce_the_corpus_whatever_the_chunking(tmp_path):
    from gingham._synthetic import SkewedCorpus
    corpus = SkewedCorpus(700, dim=8, n_centers=32, mean_len=6, min_len=2, max_len=12, seed=4)
    tokens, offsets = corpus.csr()
    disk, disk_offsets = corpus.csr(out=tmp_path / "tokens.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "tokens.npy"), tokens)
    np.testing.assert_array_equal(disk_offsets, offsets)
    for size in (1, 97, 256, 700, 5000):
        ids, docs = [], []
        for chunk_ids, chunk_docs in corpus.chunks(size):
            assert chunk_ids.dtype == np.int64 and len(chunk_ids) == len(chunk_docs)
            ids.extend(chunk_ids.tolist())
            docs.extend(chunk_docs)
        assert ids == list(range(700))
        np.testing.assert_array_equal(to_csr(docs)[0], tokens)
    part, part_offsets = corpus.chunk(300, 555)
    np.testing.assert_array_equal(part, tokens[offsets[300]:offsets[555]])
    np.testing.assert_array_equal(part_offsets, offsets[300:556] - offsets[300])
    again = SkewedCorpus(700, dim=8, n_centers=32, mean_len=6, min_len=2, max_len=12, seed=4)
    np.testing.assert_array_equal(again.csr()[0], tokens)
    other = SkewedCorpus(700, dim=8, n_centers=32, mean_len=6, min_len=2, max_len=12, seed=5)
    assert not np.array_equal(other.csr()[0][:10], tokens[:10])
    with pytest.raises(ValueError, match="start, stop"):
        corpus.chunk(5, 701)
    with pytest.raises(ValueError, match="size"):
        next(corpus.chunks(0))


def test_skewed_documents_are_topical_and_centers_skewed():
    from gingham._synthetic import SkewedCorpus
    corpus = SkewedCorpus(400, dim=64, n_centers=200, topic_size=3, noise=0.3, seed=6)
    tokens, offsets = corpus.csr()
    nearest = (tokens.astype(np.float64) @ corpus.centers.T.astype(np.float64)).argmax(axis=1)
    for i in range(400):
        assert len(set(nearest[offsets[i]:offsets[i + 1]].tolist())) <= 3
    counts = np.bincount(nearest, minlength=200)
    # Zipf 1 over 200 centers: the top 10 hold ~50% of topic draws, the last 100 ~12%
    assert counts[:10].sum() > 3 * counts[100:].sum()


def test_skewed_queries_near_their_source_document():
    from gingham._synthetic import SkewedCorpus
    corpus = SkewedCorpus(300, dim=32, n_centers=100, noise=0.3, seed=7)
    tokens, offsets = corpus.csr()
    queries, sources = corpus.queries(20, doc_tokens=6, fresh_tokens=2, noise=0.2, seed=8)
    again, again_sources = corpus.queries(20, doc_tokens=6, fresh_tokens=2, noise=0.2, seed=8)
    np.testing.assert_array_equal(sources, again_sources)
    for q, r in zip(queries, again):
        np.testing.assert_array_equal(q, r)
    assert sources.dtype == np.int64 and sources.min() >= 0 and sources.max() < 300
    for q, d in zip(queries, sources):
        assert q.shape == (8, 32) and q.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
        doc = tokens[offsets[d]:offsets[d + 1]]
        # the document part is a perturbed copy of the source's tokens (cosine ~0.98)
        assert (q[:6] @ doc.T).max(axis=1).min() > 0.9
