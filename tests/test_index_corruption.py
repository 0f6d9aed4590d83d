"""Damaged index files: open / search / verify raise CorruptionError naming the file, and
structural damage to the arrays the kernels index with is caught when a segment is opened, so
it can never make them read out of bounds or score NaN."""
import os

import numpy as np
import pytest

import gingham
from gingham.storage import CorruptionError
from plaid_data import clustered_docs, queries_from


def build(path, storage):
    docs = clustered_docs(60, 16, 6, seed=61, max_len=10)
    idx = gingham.Index.create(path, dim=16, storage=storage, n_centroids=16)
    idx.add([f"d{i}" for i in range(30)], docs[:30])
    idx.add([f"d{i}" for i in range(30, 60)], docs[30:])
    idx.delete(["d4"])
    return queries_from(docs, 2, 4, seed=62)


def data_offset(file):
    """Offset of the first data byte of a .npy file (after its header)."""
    with open(file, "rb") as f:
        major = f.read(8)[6]
        size = int.from_bytes(f.read(2 if major == 1 else 4), "little")
        return 8 + (2 if major == 1 else 4) + size


def overwrite(file, pos, data: bytes):
    with open(file, "r+b") as f:
        f.seek(pos)
        f.write(data)


STRUCTURAL = [  # (storage, file, bytes written at the start of the data)
    ("residual", "codes.npy", b"\xff\xff"),                 # code >= n_centroids
    ("residual", "ivf_doc_ids.npy", b"\xff\xff\xff\x7f"),   # doc id out of range
    ("residual", "ivf_offsets.npy", b"\x05" + b"\x00" * 7),  # offsets[0] != 0
    ("residual", "doc_offsets.npy", b"\x00" * 7 + b"\x01"),  # huge first offset
    ("fp32", "doc_offsets.npy", b"\xff" * 8),                 # negative offset
    ("int8", "doc_offsets.npy", b"\x00" * 7 + b"\x40"),
]


@pytest.fixture
def large_files(monkeypatch):
    """Treat every array as large (no checksum at a plain open), so that what catches the
    damage is the kind's own check of the segment, as for an index of large segments."""
    monkeypatch.setattr(gingham.storage.files, "SMALL_FILE_BYTES", 0)


@pytest.mark.parametrize("storage,name,data", STRUCTURAL)
def test_structural_damage_is_caught_at_open(tmp_path, large_files, storage, name, data):
    path = tmp_path / "i"
    build(path, storage)
    seg = sorted((path / "segments").iterdir())[0]
    file = seg / name
    overwrite(file, data_offset(file), data)
    with pytest.raises(CorruptionError) as info:
        gingham.Index.open(path)
    assert str(file) in str(info.value)
    with pytest.raises(CorruptionError):
        gingham.storage.Store.open(path).verify()  # the checksum names it too


NAN_F32, NAN_F16 = np.float32(np.nan).tobytes(), np.float16(np.nan).tobytes()
NON_FINITE = [  # (storage, folder, file, bytes written at an element): the kernels would score NaN
    ("residual", "codec", "centroids.npy", NAN_F16),  # float16 since codecs store it so
    ("residual", "codec", "bucket_weights.npy", np.float32(np.inf).tobytes()),
    ("residual", "codec", "bucket_cutoffs.npy", NAN_F32),
    ("residual", "segments", "scales.npy", NAN_F16),
    ("fp16", "segments", "tokens.npy", NAN_F16),
    ("fp32", "segments", "tokens.npy", NAN_F32),
    ("int8", "segments", "token_scales.npy", NAN_F32),
]


@pytest.mark.parametrize("storage,folder,name,data", NON_FINITE)
def test_non_finite_values_are_caught_at_open(tmp_path, large_files, storage, folder, name,
                                              data):
    path = tmp_path / "i"
    build(path, storage)
    file = sorted((path / folder).iterdir())[0] / name
    overwrite(file, data_offset(file) + 3 * len(data), data)
    with pytest.raises(CorruptionError, match="not finite") as info:
        gingham.Index.open(path)
    assert str(file) in str(info.value)


def open_search_verify(path):
    q = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    idx = gingham.Index.open(path)
    for mode in ("plaid", "exact"):
        idx.search(q, k=5, mode=mode)
    idx.rerank(q, idx.ids())
    idx.verify()


@pytest.mark.parametrize("storage", ["residual", "fp16", "int8"])
def test_every_file_flip_is_reported(tmp_path, storage):
    """Flip one byte in the middle of every segment and codec file, one at a time: open,
    search, rerank and verify must end in a CorruptionError naming the file (a crash would
    take the test run down with it)."""
    path = tmp_path / "i"
    build(path, storage)
    files = sorted(path.rglob("*.npy")) + sorted(path.rglob("manifest.json"))
    for f in files:
        with open(f, "rb") as inp:
            original = inp.read()
        pos = len(original) // 2
        overwrite(f, pos, bytes([original[pos] ^ 0x5A]))
        try:
            with pytest.raises(CorruptionError) as info:
                open_search_verify(path)
        finally:
            overwrite(f, pos, original[pos:pos + 1])
        assert str(f) in str(info.value)
    open_search_verify(path)  # restored


def test_truncated_segment_file(tmp_path):
    path = tmp_path / "t"
    build(path, "residual")
    file = sorted((path / "segments").iterdir())[1] / "residuals.npy"
    os.truncate(file, os.path.getsize(file) - 3)
    with pytest.raises(CorruptionError) as info:
        gingham.Index.open(path)
    assert str(file) in str(info.value)
