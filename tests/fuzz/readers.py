"""The readers of on-disk data, each wrapped as one function of fuzzer bytes with its contract.

Shared by the hypothesis tests (tests/test_fuzz_files.py) and the atheris harness
(tests/fuzz/atheris_fuzz.py). Each ``fuzz_*`` takes the damaged bytes and returns normally when
the reader gave a clean, correct result or raised the error it documents (naming the file);
anything else (another exception, a wrong result without an error) propagates as a failure.
"""
from __future__ import annotations

import functools
import json
import os
import random
import shutil
import sqlite3
import tempfile
import types
from pathlib import Path
from unittest import mock

import numpy as np

import gingham
from gingham.storage import CorruptionError, StorageError, UnknownIdError, files, store
from gingham.storage import catalog as cat
from gingham.storage.snapshot import SegmentView, check_segment_files, load_folder

DIM = 8


def scratch_root() -> Path:
    """A fresh folder for fuzzing, in memory (/dev/shm) where there is one: every execution
    writes files, and a disk would make the run measure the disk."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="gingham-fuzz-",
                                 dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))


def npy_bytes(arr: np.ndarray) -> bytes:
    """The .npy file of ``arr`` as gingham writes it."""
    with tempfile.TemporaryFile() as fh:
        np.lib.format.write_array(fh, arr, allow_pickle=False)
        fh.seek(0)
        return fh.read()


SEED_ARRAYS = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4),
               "i64": np.arange(5, dtype=np.int64), "u8": np.zeros(0, np.uint8)}


@functools.lru_cache(maxsize=None)
def seed_bytes(seed: str) -> bytes:
    """The .npy file of ``SEED_ARRAYS[seed]`` (computed once)."""
    return npy_bytes(SEED_ARRAYS[seed])


class NpyReader:
    """``files.load_array`` over a file whose bytes the fuzzer chooses; the manifest entry is
    that of a seed array and its byte size is the file's, so the header parser is reached."""

    def __init__(self, root: Path):
        self.folder = root / "npy"
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, data: bytes, seed: str = "f32") -> None:
        arr = SEED_ARRAYS[seed]
        # load_array checks the header, never the sha256 (that is check_sha256's job)
        entry = {"file": "a.npy", "dtype": arr.dtype.str, "shape": list(arr.shape),
                 "bytes": len(data), "sha256": "0" * 64}
        path = self.folder / "a.npy"
        path.write_bytes(data)
        for mmap in (True, False):
            try:
                got = files.load_array(self.folder, entry, mmap=mmap)
            except CorruptionError as exc:
                assert exc.path == str(path), exc
                continue
            assert got.dtype == arr.dtype and got.shape == arr.shape
            if data == seed_bytes(seed):
                assert np.array_equal(got, arr)
            del got


class ManifestReader:
    """``files.read_manifest`` over manifest bytes the fuzzer chooses, with the catalog's sha256
    matching them (a writer that wrote a malformed manifest), then ``load_array`` of every
    entry it accepted."""

    def __init__(self, root: Path):
        self.folder = root / "manifest"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "a.npy").write_bytes(npy_bytes(SEED_ARRAYS["f32"]))

    def __call__(self, data: bytes) -> None:
        path = self.folder / files.MANIFEST
        path.write_bytes(data)
        try:
            manifest = files.read_manifest(self.folder, files.sha256_bytes(data))
        except CorruptionError as exc:
            assert exc.path == str(path), exc
            return
        for name, entry in manifest["arrays"].items():
            assert entry["file"] == f"{name}.npy"  # never a path outside the folder
            try:
                files.load_array(self.folder, entry)
            except FileNotFoundError:
                pass  # the store turns a missing file into a CorruptionError (retrying)
            except CorruptionError as exc:
                assert exc.path == str(self.folder / entry["file"]), exc


def build_index(path: Path, storage: str, seed: int = 5) -> np.ndarray:
    """A small two-segment index with a deletion, the same bytes in every process; -> its
    query (4, DIM) float32."""
    rng = np.random.default_rng(seed)
    docs = [rng.standard_normal((int(rng.integers(1, 6)), DIM)).astype(np.float32)
            for _ in range(24)]
    with _seeded_folder_names(seed):
        idx = gingham.Index.create(path, dim=DIM, storage=storage, n_centroids=4)
        idx.add([f"d{i}" for i in range(12)], docs[:12])
        idx.add([f"d{i}" for i in range(12, 24)], docs[12:])
        idx.delete(["d3"])
        idx.close()
    return rng.standard_normal((4, DIM)).astype(np.float32)


def _seeded_folder_names(seed: int):
    """Seeded instead of random hex in segment and codec folder names. The names and their
    row CRCs are in the catalog's segments rows, and the CRCs' sizes place those records on
    their page: with random names, an input damaging that page (a byte offset in the catalog)
    would hit something else in every process, and its crash file or corpus case would not
    replay."""
    rng = random.Random(seed)
    seeded = types.SimpleNamespace(token_hex=lambda n: rng.randbytes(n).hex())
    return mock.patch.object(store, "secrets", seeded)


def results(path: Path, query: np.ndarray, check: str = "header") -> list:
    """Exact and PLAID search results, ids and documents of an index."""
    with gingham.Index.open(path, check=check) as idx:
        out = [idx.ids()]
        for mode in ("exact", "plaid"):
            out.append([(h.id, round(h.score, 4)) for h in idx.search(query, k=30, mode=mode)])
        out.append(idx.documents(idx.ids()))
        return out


class IndexFileReader:
    """``Index.open`` + search + verify of an index one of whose files the fuzzer rewrote
    (``target`` picks the file, ``data`` is written at ``pos`` modulo its size).

    Contract: every step either raises CorruptionError / StorageError naming a file of the
    index, or gives the pristine results; ``verify()`` raises whenever the bytes changed. With
    every file counted as large (``SMALL_FILE_BYTES = 0``: the index only checks headers and
    structure at open), search may differ but must still not crash or raise anything else."""

    def __init__(self, root: Path, storage: str):
        self.storage = storage
        self.pristine = root / f"pristine-{storage}"
        self.query = build_index(self.pristine, storage)
        self.expected = results(self.pristine, self.query)
        every = (p.relative_to(self.pristine) for p in self.pristine.rglob("*") if p.is_file())
        self.files = sorted(p for p in every if p.parts[0] != "tmp" and p.suffix != ".lock")
        # one working copy; each call damages one file and puts its bytes back afterwards
        # (opening, searching and verifying write nothing into the index folder)
        self.work = root / f"work-{storage}"
        shutil.copytree(self.pristine, self.work)
        self.originals = {rel: (self.work / rel).read_bytes() for rel in self.files}

    def __call__(self, target: int, pos: int, data: bytes, large: bool = False) -> None:
        rel = self.files[target % len(self.files)]
        file = self.work / rel
        original = self.originals[rel]
        pos = pos % max(len(original), 1)
        damaged = original[:pos] + data + original[pos + len(data):]
        file.write_bytes(damaged)
        try:
            self._check(rel, pos, damaged, original, large)
        finally:
            file.write_bytes(original)
            _drop_sqlite_side_files(self.work)

    def _check(self, rel: Path, pos: int, damaged: bytes, original: bytes, large: bool
               ) -> None:
        if rel.name.startswith("catalog.sqlite"):
            _drop_sqlite_side_files(self.work)
        saved = files.SMALL_FILE_BYTES
        files.SMALL_FILE_BYTES = 0 if large else saved
        try:
            got = results(self.work, self.query)
        except UnknownIdError:
            # a damaged SQLite index (documents_external) can hide a listed id from a lookup;
            # SQLite does not check its indexes on reads: verify() (integrity_check) must
            got = None
        except (CorruptionError, StorageError) as exc:
            assert str(self.work) in str(exc), exc
            return
        finally:
            files.SMALL_FILE_BYTES = saved
        assert got is not None or _is_catalog(rel), (rel, pos)
        if not large:
            assert got == self.expected or damaged == original or _is_catalog(rel), (rel, pos)
        try:
            with gingham.Index.open(self.work) as idx:
                idx.verify()
        except (CorruptionError, StorageError) as exc:
            assert damaged != original, exc
            assert str(self.work) in str(exc), exc
            return
        if damaged == original:
            return
        # verify passed: only catalog bytes SQLite does not read (free pages, slack) may
        # change without being noticed, and then the results must be the pristine ones
        assert _is_catalog(rel) and got == self.expected, (rel, pos, _state(self.work, rel,
                                                                             damaged))


def _state(folder: Path, rel: Path, damaged: bytes) -> dict:
    """What the folder looks like now, for a failure message: whether the damaged file still
    holds the damaged bytes, which SQLite side files exist, what a fresh read-only
    integrity_check says and which files of the folder this process holds open."""
    now = (folder / rel).read_bytes()
    out = {"file_still_damaged": now == damaged, "side_files": sorted(
        p.name for p in folder.iterdir() if p.name.startswith(cat.CATALOG + "-"))}
    try:
        conn = sqlite3.connect(f"{(folder / cat.CATALOG).as_uri()}?mode=ro", uri=True)
        try:
            out["integrity_check"] = [r[0] for r in conn.execute("PRAGMA integrity_check")][:3]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        out["integrity_check"] = repr(exc)
    fds = []
    for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            fds.append(target[len(str(folder)) + 1:])
    out["open_files"] = sorted(fds)
    return out


def _is_catalog(rel: Path) -> bool:
    return rel.name.startswith(cat.CATALOG)


def _drop_sqlite_side_files(folder: Path) -> None:
    for side in ("-wal", "-shm"):
        (folder / (cat.CATALOG + side)).unlink(missing_ok=True)


def catalog_row_values(path: Path) -> list[tuple[str, str]]:
    """(table, column) of every text/int column a catalog row checksum covers."""
    conn = sqlite3.connect(path / cat.CATALOG)
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            out += [(table, c) for c in cols if c != "crc"]
        return out
    finally:
        conn.close()


class CatalogRowReader:
    """Rewrite one column of one catalog row through SQLite (the file stays a valid database)
    with a fuzzer-chosen value: open / search / verify must raise CorruptionError naming the
    catalog, or (the value equal to the old one) give the pristine results."""

    def __init__(self, root: Path, storage: str):
        self.storage = storage
        self.pristine = root / f"catrow-{storage}"
        self.query = build_index(self.pristine, storage)
        self.expected = results(self.pristine, self.query)
        self.columns = catalog_row_values(self.pristine)
        # one working copy whose catalog is put back after each call (nothing else changes)
        self.work = root / f"catwork-{storage}"
        shutil.copytree(self.pristine, self.work)
        self.catalog = (self.work / cat.CATALOG).read_bytes()

    def __call__(self, column: int, row: int, value) -> None:
        try:
            self._rewrite_and_check(column, row, value)
        finally:
            (self.work / cat.CATALOG).write_bytes(self.catalog)
            _drop_sqlite_side_files(self.work)

    def _rewrite_and_check(self, column: int, row: int, value) -> None:
        table, col = self.columns[column % len(self.columns)]
        conn = sqlite3.connect(self.work / cat.CATALOG)
        try:
            rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
            if not rowids:
                return
            rowid = rowids[row % len(rowids)]
            (old,) = conn.execute(f"SELECT {col} FROM {table} WHERE rowid = ?", (rowid,)
                                  ).fetchone()
            try:
                conn.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (value, rowid))
                conn.commit()
            except sqlite3.IntegrityError:
                return  # the schema itself refuses the value
            # what SQLite stored after its type affinity (5.0 in an INTEGER column is 5)
            found = conn.execute(f"SELECT {col} FROM {table} WHERE rowid = ?", (rowid,)
                                 ).fetchone()
            new = value if found is None else found[0]  # None: col is the rowid itself
        finally:
            conn.close()
        unchanged = type(old) is type(new) and old == new
        try:
            got = results(self.work, self.query)
            with gingham.Index.open(self.work) as idx:
                idx.verify()
        except (CorruptionError, StorageError) as exc:
            assert str(self.work) in str(exc), exc
            assert not unchanged, exc
            return
        assert unchanged and got == self.expected, (table, col, old, new)


class FolderManifestReader:
    """The manifest of a real segment or codec folder (``which``) rewritten with fuzzer bytes
    whose sha256 the catalog records (a writer that wrote a malformed manifest), through what
    a snapshot and a view run on it: ``snapshot.load_folder``, ``check_segment_files`` and the
    kind's ``open_segment`` (or ``open_codec``); then ``files.check_folder`` (``verify()``).
    The folder's arrays stay pristine.

    Contract: a CorruptionError naming a file of the folder, a FileNotFoundError for a file of
    the folder (the snapshot retries, then names it), or an opened folder; and ``check_folder``
    passes only for a manifest that says what the pristine one says."""

    def __init__(self, root: Path, storage: str, which: str):
        path = root / f"manifest-{which}-{storage}"
        build_index(path, storage)
        with gingham.Index.open(path) as idx:
            self.kind = idx._kind
            snap = idx._view.snap
            seg = snap.segments[0]
            self.segment = (seg.id, seg.codec_version, seg.n_docs)
            self.codec = idx._view.codecs.get(seg.codec_version)
            codec_folders = sorted((path / "codec").iterdir())
        if which == "codec" and not codec_folders:
            raise ValueError(f"storage {storage!r} has no codec folder")
        self.which = which
        self.folder = seg.folder if which == "segment" else codec_folders[0]
        self.path = self.folder / files.MANIFEST
        self.seed = self.path.read_bytes()
        self.parsed = json.loads(self.seed)

    def __call__(self, data: bytes) -> None:
        self.path.write_bytes(data)
        try:
            self._check(data)
        finally:
            self.path.write_bytes(self.seed)

    def _check(self, data: bytes) -> None:
        try:
            loaded = load_folder(self.folder, files.sha256_bytes(data), full_check=False)
            if self.which == "segment":
                seg_id, version, n_docs = self.segment
                check_segment_files(seg_id, n_docs, loaded)
                view = SegmentView(seg_id, version, n_docs, loaded,
                                   np.ones(n_docs, dtype=np.uint8))
                self.kind.open_segment(self.folder, view.arrays, n_docs, self.codec)
                view.external_ids()
            else:
                self.kind.open_codec(self.folder, loaded.arrays)
        except CorruptionError as exc:
            assert exc.path.startswith(str(self.folder)), exc
            return
        except FileNotFoundError as exc:
            assert str(exc.filename).startswith(str(self.folder)), exc
            return
        try:
            files.check_folder(self.folder, files.read_manifest(self.folder,
                                                                files.sha256_bytes(data)))
        except CorruptionError as exc:
            assert exc.path.startswith(str(self.folder)), exc
            return
        assert json.loads(data)["arrays"] == self.parsed["arrays"], data


class ShardedManifestReader:
    """``distributed.manifest.read_manifest`` over a ``sharded.json`` of fuzzer bytes.

    Contract: the manifest dict, or a ValueError naming the file."""

    def __init__(self, root: Path):
        from gingham.distributed import manifest
        self.read = manifest.read_manifest
        self.folder = root / "sharded"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / manifest.MANIFEST

    def __call__(self, data: bytes) -> None:
        self.path.write_bytes(data)
        try:
            got = self.read(self.folder)
        except ValueError as exc:
            assert str(self.path) in str(exc), exc
            return
        assert isinstance(got, dict), got
