"""Inverted lists against a Python reference."""
import numpy as np
import pytest

from gingham import _core


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_ivf_matches_reference(dtype):
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 12, size=300)  # some empty documents
    offsets = np.zeros(301, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    codes = rng.integers(0, 37, size=offsets[-1]).astype(dtype)
    ivf_offsets, ivf_ids = _core.ivf_build(codes, offsets, 40)
    assert ivf_offsets.dtype == np.int64 and ivf_ids.dtype == np.int32
    assert ivf_offsets.shape == (41,) and ivf_offsets[-1] == len(ivf_ids)
    for c in range(40):
        want = sorted({d for d in range(300) if c in set(codes[offsets[d]:offsets[d + 1]])})
        assert ivf_ids[ivf_offsets[c]:ivf_offsets[c + 1]].tolist() == want


def test_ivf_rejects_out_of_range_codes():
    with pytest.raises(ValueError, match="n_centroids"):
        _core.ivf_build(np.array([0, 5], np.uint16), np.array([0, 2], np.int64), 5)
    with pytest.raises(TypeError, match="uint16 or uint32"):
        _core.ivf_build(np.array([0, 1], np.int64), np.array([0, 2], np.int64), 5)


def test_index_stores_float16_centroids_and_uint16_ivf_ids(tmp_path):
    """A new residual index writes float16 centroids and uint16 IVF document ids (a segment of
    at most 65,536 documents); exact search from codes equals the numpy decode of the stored
    arrays, and the inverted lists equal numpy's (document, centroid) pairs."""
    import gingham
    from plaid_data import clustered_docs, csr, decode_np, maxsim_np

    docs = clustered_docs(120, 16, 6, seed=3)
    idx = gingham.Index.create(tmp_path / "i", dim=16, n_centroids=8)
    idx.add([str(i) for i in range(len(docs))], docs)
    codec = idx._view.snap.codec
    seg = idx._view.segments[0].arrays
    assert codec["centroids"].dtype == np.float16
    assert seg["ivf_doc_ids"].dtype == np.uint16
    codes, offsets = np.asarray(seg["codes"]), np.asarray(seg["doc_offsets"])
    doc_of_token = np.repeat(np.arange(len(docs)), np.diff(offsets))
    for c in range(8):
        want = np.unique(doc_of_token[codes == c])
        got = seg["ivf_doc_ids"][seg["ivf_offsets"][c]:seg["ivf_offsets"][c + 1]]
        np.testing.assert_array_equal(got, want)
    decoded = decode_np(codes, np.asarray(seg["residuals"]), np.asarray(seg["scales"]),
                        codec["centroids"].astype(np.float32),
                        np.asarray(codec["bucket_weights"]), 2)
    query = docs[7][:4]
    ref = maxsim_np(query, decoded, offsets)
    hits = idx.search(query, k=5, mode="exact")
    np.testing.assert_allclose([h.score for h in hits], np.sort(ref)[::-1][:5], rtol=1e-5,
                               atol=1e-5)
    assert csr(docs)[1].tolist() == offsets.tolist()
