"""Streamed builds: sample_tokens, csr_batches, Index.add_batches and add(codec_sample=...)."""
import numpy as np
import pytest

import gingham
from gingham import _core
from gingham.engine.streaming import row_keys
from plaid_data import clustered_docs, csr, queries_from

N_CENTROIDS, SAMPLE_PER_CENTROID = 32, 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    docs = clustered_docs(240, 16, 30, seed=5)
    tokens, offsets = csr(docs)
    path = tmp_path_factory.mktemp("corpus") / "tokens.npy"
    np.save(path, tokens)
    return np.load(path, mmap_mode="r"), offsets, docs


def _splitmix64(x: int) -> int:
    mask = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_row_keys_are_splitmix64_of_seeded_positions():
    positions = np.array([0, 1, 7, 123_456_789, 2 ** 40], dtype=np.int64)
    for seed in (0, 3):
        want = [_splitmix64(p + seed * 0x94D049BB133111EB) for p in positions.tolist()]
        assert row_keys(positions, seed).tolist() == want


def test_sample_of_a_memmap_is_distinct_rows_in_order(corpus):
    tokens, _, _ = corpus
    sample = gingham.sample_tokens(tokens, 100, seed=4)
    assert sample.shape == (100, tokens.shape[1]) and sample.dtype == np.float32
    ram = np.asarray(tokens)
    positions = [int(np.flatnonzero((ram == row).all(axis=1))[0]) for row in sample]
    assert len(set(positions)) == 100 and positions == sorted(positions)
    np.testing.assert_array_equal(gingham.sample_tokens(ram, 100, seed=4), sample)
    np.testing.assert_array_equal(gingham.sample_tokens(tokens, 10 ** 9), ram)


def test_sample_of_an_iterable_keeps_the_smallest_keys_whatever_the_cut(corpus):
    tokens, _, docs = corpus
    ram = np.asarray(tokens)
    n = 150
    keys = row_keys(np.arange(len(ram), dtype=np.int64), 9)
    want = ram[np.sort(np.argsort(keys)[:n])]  # brute force over every row
    for cut in (1, 7, 64, len(ram)):
        blocks = (ram[a:a + cut] for a in range(0, len(ram), cut))
        np.testing.assert_array_equal(gingham.sample_tokens(blocks, n, seed=9), want)
    np.testing.assert_array_equal(gingham.sample_tokens(iter(docs), n, seed=9), want)
    np.testing.assert_array_equal(gingham.sample_tokens(iter(docs), 10 ** 9), ram)
    with pytest.raises(ValueError, match="at least one token row"):
        gingham.sample_tokens(iter([]), 5)
    with pytest.raises(ValueError, match="dim 16"):
        gingham.sample_tokens(iter([ram[:3], ram[:3, :8]]), 5)
    with pytest.raises(TypeError, match="source"):
        gingham.sample_tokens("tokens", 5)


def test_csr_batches_cut_documents_in_order(corpus):
    tokens, offsets, docs = corpus
    batches = list(gingham.csr_batches(tokens, offsets, 50))
    assert [len(ids) for ids, _ in batches] == [50, 50, 50, 50, 40]
    ids = [i for b, _ in batches for i in b]
    assert ids == [str(i) for i in range(240)]
    for got, want in zip([d for _, e in batches for d in e], docs):
        np.testing.assert_array_equal(got, want)
    named = list(gingham.csr_batches(tokens, offsets, 200, ids=[f"d{i}" for i in range(240)]))
    assert named[1][0][:2] == ["d200", "d201"]
    with pytest.raises(ValueError, match="one id per document"):
        list(gingham.csr_batches(tokens, offsets, 10, ids=["a"]))


def _create(path, **options):
    return gingham.Index.create(path, dim=16, nbits=2, n_centroids=N_CENTROIDS, seed=2,
                                sample_per_centroid=SAMPLE_PER_CENTROID, **options)


def test_streamed_build_stores_what_one_add_stores(tmp_path, corpus):
    tokens, offsets, docs = corpus
    sample = gingham.sample_tokens(tokens, N_CENTROIDS * SAMPLE_PER_CENTROID, seed=1)
    streamed = _create(tmp_path / "streamed")
    assert streamed.codec_sample_size == N_CENTROIDS * SAMPLE_PER_CENTROID
    n = streamed.add_batches(gingham.csr_batches(tokens, offsets, 70), codec_sample=sample)
    assert n == 240 and streamed.last_add_profile["n_batches"] == 4
    assert streamed.stats()["n_segments"] == 4
    whole = _create(tmp_path / "whole")
    whole.add([str(i) for i in range(240)], docs, codec_sample=sample)

    codec = streamed._view.snap.codec
    for name, array in whole._view.snap.codec.items():
        np.testing.assert_array_equal(codec[name], array)
    # numpy oracle: every stored code is the nearest centroid (L2) of its token
    centroids = np.asarray(codec["centroids"], np.float64)
    codes = np.concatenate([np.asarray(s.arrays["codes"]) for s in streamed._view.segments])
    dist = ((np.asarray(tokens, np.float64)[:, None, :] - centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes, np.argmin(dist, axis=1))
    # the centroids came from the sample, not from the first batch
    first_batch_codec = _create(tmp_path / "first")
    first_batch_codec.add([str(i) for i in range(70)], docs[:70])
    assert not np.array_equal(first_batch_codec._view.snap.codec["centroids"],
                              codec["centroids"])

    for doc_id in ("0", "69", "70", "239"):
        np.testing.assert_array_equal(streamed.tokens(doc_id), whole.tokens(doc_id))
    for q in queries_from(docs, 3, 6, seed=8):
        assert streamed.search(q, k=20, mode="exact") == whole.search(q, k=20, mode="exact")
        assert streamed.search(q, k=5) == whole.search(q, k=5)


def test_codec_sample_errors_before_anything_is_written(tmp_path, corpus):
    tokens, offsets, docs = corpus
    ids = [str(i) for i in range(5)]
    sample = np.asarray(tokens[:100])
    idx = _create(tmp_path / "a")
    with pytest.raises(ValueError, match="codec_sample must have dim 16"):
        idx.add(ids, docs[:5], codec_sample=sample[:, :8])
    idx.add(ids, docs[:5], codec_sample=sample)
    with pytest.raises(ValueError, match="already has a codec"):
        idx.add(["x"], docs[5:6], codec_sample=sample)
    assert len(idx) == 5
    default = gingham.Index.create(tmp_path / "b", dim=16, nbits=2)
    assert default.codec_sample_size is None
    with pytest.raises(ValueError, match="created with n_centroids"):
        default.add(ids, docs[:5], codec_sample=sample)
    flat = gingham.Index.create(tmp_path / "c", dim=16, storage="fp32")
    with pytest.raises(ValueError, match="residual indexes only"):
        flat.add_batches(iter([(ids, docs[:5])]), codec_sample=sample)
    assert len(default) == 0 and len(flat) == 0
    with pytest.raises(TypeError, match=r"batches\[0\] must be a tuple"):
        idx.add_batches([["y"]])
    with pytest.raises(TypeError, match="batches must be an iterable"):
        idx.add_batches(3)


def test_add_batches_keeps_earlier_batches_when_one_fails(tmp_path, corpus):
    _, _, docs = corpus
    idx = _create(tmp_path / "a")
    bad = np.full((4, 16), np.nan, np.float32)
    batches = [(["a", "b"], docs[:2]), (["c"], [bad])]
    with pytest.raises(ValueError, match="non-finite"):
        idx.add_batches(iter(batches))
    assert idx.ids() == ["a", "b"]
    centroids = np.asarray(idx._view.snap.codec["centroids"], np.float32)
    codes = np.asarray(idx._view.segments[0].arrays["codes"])
    np.testing.assert_array_equal(_core.kmeans_assign(docs[0], centroids), codes[:len(docs[0])])
