"""Corruption: truncating or flipping one byte of any index file makes open, snapshot or
verify raise an error naming that file -- or, for bytes of catalog.sqlite that SQLite never
reads (free space inside pages), leaves every answer unchanged. Never a crash or a silently
different answer."""
from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

import _storage_workload as wl
from gingham.storage import FORMAT_VERSION, CorruptionError, FormatVersionError, StorageError, Store

SEED = 5
N_COMMITS = 25


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "idx"
    Store.create(path, {"dim": wl.DIM}).close()
    wl.run_child(str(path), SEED, str(path) + ".log", N_COMMITS)
    store = Store.open(path)
    store.add(["late-1", "late-2"], wl.segment_arrays([("late-1", 0), ("late-2", 0)]),
              metadata=[{"v": 0}, {"v": 0}], texts=["text late-1", "text late-2"])
    store.delete(["late-1"])
    store.close()  # last connection closes: WAL checkpointed into catalog.sqlite and removed
    assert not (path / "catalog.sqlite-wal").exists()
    model = wl.states(SEED, N_COMMITS)[-1].copy()
    model.docs["late-2"] = 0
    return path, model


def _index_files(path: Path) -> list[Path]:
    files = [path / "catalog.sqlite"]
    for sub in ("codec", "segments"):
        files += sorted(p for p in (path / sub).rglob("*") if p.is_file())
    return files


def _read_everything(path: Path, model) -> None:
    """Open, snapshot, verify and read every document; raises on corruption."""
    store = Store.open(path)
    try:
        store.verify()
        with store.snapshot() as snap:
            wl.check_snapshot(snap, model)
            assert snap.where("json_extract(metadata, '$.v') >= ?", [0]).size == len(model.docs)
    finally:
        store.close()


def _expect_named_error(path: Path, bad: Path, model, *, may_be_harmless: bool) -> str:
    try:
        _read_everything(path, model)
    except StorageError as exc:
        assert str(bad) in str(exc), f"error does not name {bad}: {exc}"
        return "error"
    assert may_be_harmless, f"damage to {bad} went unnoticed"
    return "harmless"


def _damaged_copy(pristine_path: Path, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(pristine_path, dst)
    return dst


def test_pristine_copy_reads_back(pristine, tmp_path):
    path, model = pristine
    _read_everything(_damaged_copy(path, tmp_path, "ok"), model)


def test_truncating_any_file_is_named(pristine, tmp_path):
    path, model = pristine
    files = _index_files(path)
    assert len(files) >= 15
    for k, rel in enumerate(f.relative_to(path) for f in files):
        size = (path / rel).stat().st_size
        for new_size in sorted({size // 3, size - 1}):
            dst = _damaged_copy(path, tmp_path, f"t{k}-{new_size}")
            with open(dst / rel, "r+b") as fh:
                fh.truncate(new_size)
            _expect_named_error(dst, dst / rel, model, may_be_harmless=False)
            shutil.rmtree(dst)


def test_flipping_a_byte_of_any_array_or_manifest_is_named(pristine, tmp_path):
    path, model = pristine
    rng = random.Random(1)
    for k, f in enumerate(_index_files(path)[1:]):
        rel = f.relative_to(path)
        size = f.stat().st_size
        for pos in sorted({rng.randrange(128), size // 2, size - 1}):
            dst = _damaged_copy(path, tmp_path, f"f{k}-{pos}")
            data = bytearray((dst / rel).read_bytes())
            data[pos] ^= 0xFF
            (dst / rel).write_bytes(bytes(data))
            _expect_named_error(dst, dst / rel, model, may_be_harmless=False)
            shutil.rmtree(dst)


def _flip_catalog(path: Path, tmp_path: Path, model, pos: int, *, may_be_harmless: bool):
    dst = _damaged_copy(path, tmp_path, f"c{pos}")
    data = bytearray((dst / "catalog.sqlite").read_bytes())
    data[pos] ^= 0xFF
    (dst / "catalog.sqlite").write_bytes(bytes(data))
    try:
        return _expect_named_error(dst, dst / "catalog.sqlite", model,
                                   may_be_harmless=may_be_harmless)
    finally:
        shutil.rmtree(dst)


def test_flipping_record_bytes_of_the_catalog_is_named(pristine, tmp_path):
    """Bytes inside stored records (ids, metadata, texts, schema) are caught by the per-row
    checksums, the schema check or SQLite itself."""
    path, model = pristine
    data = (path / "catalog.sqlite").read_bytes()
    rng = random.Random(3)
    targets = []
    for needle in (b"doc-2", b'"v":', b"text doc", b"CREATE TABLE", b"late-2",
                   b"next_internal_id", b"manifest"):
        hits = [i for i in range(len(data)) if data.startswith(needle, i)]
        targets += [h + rng.randrange(len(needle)) for h in rng.sample(hits, min(3, len(hits)))]
    assert len(targets) >= 12
    for pos in sorted(set(targets)):
        _flip_catalog(path, tmp_path, model, pos, may_be_harmless=False)


def test_flipping_any_catalog_byte_is_named_or_harmless(pristine, tmp_path):
    """Elsewhere a flipped byte may land in free space inside a page that SQLite never reads:
    then every answer must still be exactly right."""
    path, model = pristine
    size = (path / "catalog.sqlite").stat().st_size
    rng = random.Random(2)
    positions = sorted({0, 18, 28, 60, 68} | {rng.randrange(size) for _ in range(50)})
    outcome = {"error": 0, "harmless": 0}
    for pos in positions:
        outcome[_flip_catalog(path, tmp_path, model, pos, may_be_harmless=True)] += 1
    assert outcome["error"] >= 5, outcome  # at least the header bytes chosen above


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "idx"
    Store.create(path, {"dim": 4}).close()
    conn = sqlite3.connect(path / "catalog.sqlite")
    conn.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    conn.close()
    with pytest.raises(FormatVersionError, match=f"format version {FORMAT_VERSION + 1}"):
        Store.open(path)


def test_missing_segment_folder_is_named(pristine, tmp_path):
    path, model = pristine
    dst = _damaged_copy(path, tmp_path, "gone")
    seg = sorted((dst / "segments").iterdir())[0]
    shutil.rmtree(seg)
    with pytest.raises(CorruptionError, match=seg.name):
        Store.open(dst)
