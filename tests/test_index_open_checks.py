"""What a plain ``Index.open`` checksums: the id maps always, every file of at most
``storage.files.SMALL_FILE_BYTES``, the manifests (through the catalog); large arrays only with
``check="full"`` or ``verify()``."""
import numpy as np
import pytest

import gingham
from gingham.storage import CorruptionError
from plaid_data import clustered_docs

ID_MAPS = ["_internal_ids.npy", "_external_id_bytes.npy", "_external_id_offsets.npy"]


def build(path, storage):
    docs = clustered_docs(40, 16, 4, seed=7, max_len=8)
    idx = gingham.Index.create(path, dim=16, storage=storage, n_centroids=8)
    idx.add([f"doc-{i}" for i in range(20)], docs[:20])
    idx.add([f"doc-{i}" for i in range(20, 40)], docs[20:])
    idx.close()


def flip_last_byte(file, mask=0x01):
    data = bytearray(file.read_bytes())
    data[-1] ^= mask
    file.write_bytes(bytes(data))


def small_files(path):
    """Every file of a test index except the catalog: all are small here."""
    return sorted(p for p in path.rglob("*") if p.is_file() and p.parent.name != "tmp"
                  and p.parent != path)


@pytest.mark.parametrize("storage", ["residual", "fp32", "int8"])
def test_flipping_a_byte_of_any_small_file_fails_a_plain_open(tmp_path, storage):
    path = tmp_path / "i"
    build(path, storage)
    files = small_files(path)
    assert any(f.name == "_external_id_bytes.npy" for f in files)
    for f in files:
        original = f.read_bytes()
        flip_last_byte(f)
        try:
            with pytest.raises(CorruptionError) as info:
                gingham.Index.open(path).close()
        finally:
            f.write_bytes(original)
        assert info.value.path == str(f), (f, info.value)
    with gingham.Index.open(path) as idx:
        assert sorted(idx.ids()) == sorted(f"doc-{i}" for i in range(40))


@pytest.mark.parametrize("name", ID_MAPS)
def test_id_maps_are_checked_even_when_large(tmp_path, monkeypatch, name):
    """With every file counted as large, the id maps are still checksummed at open: a wrong
    id (still valid UTF-8) or a non-UTF-8 byte is a CorruptionError naming the file, never a
    UnicodeDecodeError or a silently wrong id."""
    monkeypatch.setattr(gingham.storage.files, "SMALL_FILE_BYTES", 0)
    path = tmp_path / "i"
    build(path, "fp32")
    f = sorted((path / "segments").iterdir())[0] / name
    for mask in (0x01, 0x80):  # '9' -> '8' keeps UTF-8; 0x80 in an ASCII id breaks it
        original = f.read_bytes()
        flip_last_byte(f, mask)
        try:
            with pytest.raises(CorruptionError) as info:
                gingham.Index.open(path).close()
        finally:
            f.write_bytes(original)
        assert info.value.path == str(f)


def test_large_arrays_wait_for_check_full(tmp_path, monkeypatch):
    monkeypatch.setattr(gingham.storage.files, "SMALL_FILE_BYTES", 0)
    path = tmp_path / "i"
    build(path, "fp32")
    f = sorted((path / "segments").iterdir())[0] / "tokens.npy"
    data = bytearray(f.read_bytes())
    data[-2] ^= 0x01  # a low mantissa bit of the last token: still finite
    f.write_bytes(bytes(data))
    with gingham.Index.open(path) as idx:  # header-level open passes
        assert len(idx) == 40
        with pytest.raises(CorruptionError) as info:
            idx.verify()
        assert info.value.path == str(f)
    with pytest.raises(CorruptionError) as info:
        gingham.Index.open(path, check="full")
    assert info.value.path == str(f)


def test_check_must_be_header_or_full(tmp_path):
    path = tmp_path / "i"
    build(path, "fp32")
    with pytest.raises(ValueError, match="check"):
        gingham.Index.open(path, check="none")
    with gingham.Index.open(path, check="full") as idx:
        q = np.ones((2, 16), np.float32)
        assert len(idx.search(q, k=3)) == 3


@pytest.mark.parametrize("value", ["", "99999999999999999999", 1.5, b"\x01"])
def test_tombstone_values_of_another_type_fail_the_open(tmp_path, value):
    """Tombstone rows are read without their CRC at open; a value that is not an integer
    (found by fuzzing: '' and a 20-digit text raised raw ValueError / OverflowError, and 1.5
    would be truncated to row 1) is a CorruptionError naming the catalog."""
    import sqlite3
    path = tmp_path / "i"
    build(path, "fp32")
    with gingham.Index.open(path) as idx:
        idx.delete(["doc-3"])
    conn = sqlite3.connect(path / "catalog.sqlite")
    conn.execute("UPDATE tombstones SET row = ?", (value,))
    conn.commit()
    conn.close()
    with pytest.raises(CorruptionError) as info:
        gingham.Index.open(path)
    assert info.value.path == str(path / "catalog.sqlite")


@pytest.mark.parametrize("value", ["doc-1", "", b"doc-2"])
def test_listed_ids_that_cannot_be_ids_are_corruption(tmp_path, value):
    """ids() reads external ids without their row CRC; a duplicate, empty or non-text id
    (found by fuzzing catalog rows: it reached the caller, and then failed the caller's own
    argument checks) is a CorruptionError naming the catalog."""
    import sqlite3
    path = tmp_path / "i"
    build(path, "fp32")
    conn = sqlite3.connect(path / "catalog.sqlite")
    conn.execute("UPDATE documents SET external_id = ? WHERE external_id = 'doc-2'", (value,))
    conn.commit()
    conn.close()
    with gingham.Index.open(path) as idx, pytest.raises(CorruptionError) as info:
        idx.ids()
    assert info.value.path == str(path / "catalog.sqlite")


def test_row_crc_tells_null_from_every_text():
    """None, "", a lone NUL and a text starting with NUL give distinct crcs (hand-computed:
    None is one NUL, a NUL-led text gets one more), and other texts keep the crc they had."""
    import zlib

    from gingham.storage.catalog import row_crc
    values = [None, "", "\x00", "\x00\x00", "\x00a", "a"]
    assert len({row_crc(("id", v)) for v in values}) == len(values)
    assert row_crc(("id", None)) == zlib.crc32(b"id\x1f\x00")
    assert row_crc(("id", "\x00")) == zlib.crc32(b"id\x1f\x00\x00")
    assert row_crc(("id", "text", 3)) == zlib.crc32(b"id\x1ftext\x1f3")
