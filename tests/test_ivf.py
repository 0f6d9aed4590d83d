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
