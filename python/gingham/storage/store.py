"""The durable store: create / open an index folder, and its write operations.

Every write (``add``, ``delete``, ``compact``) is exactly one commit: new
files are first written to ``tmp/``, fsynced and renamed into ``segments/`` or ``codec/``, and
only then referenced by one SQLite transaction that also bumps the commit counter. A crash at
any point leaves the index at the last commit; folders nobody references (a crash before the
commit, or segments dropped by a compaction) are removed by the next writer.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from . import catalog as cat
from .errors import DuplicateIdError, FormatVersionError, StorageError, UnknownIdError
from .files import fsync_dir, publish_folder, sha256_bytes, write_array_folder
from .lock import WriterLock
from .snapshot import (
    EXTERNAL_ID_BYTES,
    EXTERNAL_ID_OFFSETS,
    INTERNAL_IDS,
    FolderFiles,
    SegmentView,
    Snapshot,
    _as_str_list,
)

_CHUNK = 500


@dataclass(frozen=True)
class MergeInput:
    """What ``compact`` hands to the caller's merge function.

    segments: the segments being merged (SegmentView, segment-id order).
    rows: for each segment, the int64 rows that survive (its live rows, ascending).
    The merged segment must hold exactly these documents in this order (segment by
    segment, row by row). codec / codec_version: the current codec arrays (or None).
    """

    segments: list
    rows: list
    codec: Mapping[str, np.ndarray] | None
    codec_version: int | None
    settings: dict


@dataclass(frozen=True)
class Merged:
    """Return this from a merge function to also replace the codec (``retrain``)."""

    arrays: Mapping[str, np.ndarray]
    codec: Mapping[str, np.ndarray] | None = None


@dataclass(frozen=True)
class CommitResult:
    """Outcome of one write: the new commit number and what it created."""

    commit: int
    internal_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    segment_id: int | None = None
    codec_version: int | None = None
    n_docs: int = 0
    #: delete only: (segment id, row) of each tombstoned document, int64 (n_docs, 2), in the
    #: order of ``internal_ids`` -- what a reader needs to update its live masks in place.
    locations: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))


def _json_text(value, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable (no NaN/inf): {exc}") from None


def _external_id_csr(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [i.encode("utf-8") for i in ids]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return blob, offsets


def _gather_csr(blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray):
    starts, ends = offsets[rows], offsets[rows + 1]
    lens = ends - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=new_offsets[1:])
    index = np.repeat(starts - new_offsets[:-1], lens) + np.arange(new_offsets[-1])
    return np.asarray(blob[index], dtype=np.uint8), new_offsets


class Store:
    """A gingham index folder: catalog.sqlite + codec/ + segments/ (see docs/format.md).

    Readers call ``snapshot()``; writers call ``add`` / ``delete`` / ``compact``, each of which
    takes the writer lock for its duration (or hold it across several with ``write_lock()``).
    """

    def __init__(self, path: Path, *, lock_timeout: float, check: str):
        if check not in ("header", "full"):
            raise ValueError("check must be 'header' or 'full'")
        self.path = Path(path)
        self.catalog_path = self.path / cat.CATALOG
        self.lock_timeout = float(lock_timeout)
        self._full_check = check == "full"
        self._lock = WriterLock(self.path)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._conn = None
        self._cache: dict[str, FolderFiles] = {}
        try:
            snap = Snapshot(self.path, full_check=self._full_check)
        except FormatVersionError as exc:
            if exc.version != 1:
                raise
            self._upgrade_from_v1(exc)
            snap = Snapshot(self.path, full_check=self._full_check)
        with snap:
            self.settings = dict(snap.settings)
            self._cache = dict(snap._reuse)

    def _upgrade_from_v1(self, exc: FormatVersionError) -> None:
        """Format 1 -> 2 in one catalog transaction under the writer lock (docs/format.md)."""
        try:
            with self.write_lock():
                cat.upgrade_from_v1(self._writer(), self.catalog_path)
        except (OSError, sqlite3.OperationalError) as err:  # e.g. a read-only folder
            raise FormatVersionError(f"{exc} Upgrading failed: {err}", 1) from err
        finally:
            self.close()

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path, settings: Mapping, *, lock_timeout: float = 10.0) -> "Store":
        """Create an empty index at ``path`` (which must not exist or be an empty folder).

        settings: JSON-serialisable values, e.g. {"dim": 128, "nbits": 2, "model": None}.
        """
        path = Path(path)
        if not isinstance(settings, Mapping):
            raise TypeError("settings must be a dict of str -> JSON value")
        encoded = {}
        for key, value in settings.items():
            if not isinstance(key, str):
                raise TypeError(f"settings keys must be str; got {key!r}")
            encoded[key] = _json_text(value, f"settings[{key!r}]")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} exists and is not an empty folder")
        for sub in ("codec", "segments", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        conn = cat.connect_writer(path / cat.CATALOG)
        try:
            cat.create_schema(conn, encoded)
        finally:
            conn.close()
        fsync_dir(path)
        fsync_dir(path.parent)
        return cls(path, lock_timeout=lock_timeout, check="header")

    @classmethod
    def open(cls, path, *, lock_timeout: float = 10.0, check: str = "header") -> "Store":
        """Open an existing index. Maps files read-only; reads no vectors.

        check: 'header' (catalog rows, manifests, file sizes and .npy headers) or 'full'
        (also every file's sha256, as ``verify`` does).
        """
        path = Path(path)
        if not (path / cat.CATALOG).is_file():
            raise StorageError(f"{path} is not a gingham index (no {cat.CATALOG})")
        return cls(path, lock_timeout=lock_timeout, check=check)

    def snapshot(self, *, base: Snapshot | None = None,
                 deleted: CommitResult | None = None) -> Snapshot:
        """A consistent read-only view of the latest commit (close it when done).

        base, deleted: a snapshot and the result of a ``delete`` made right after it; if no
        other commit came in between, the new snapshot is base's live masks minus the deleted
        rows (O(deleted ids)) instead of a read of every tombstone."""
        after = None
        if base is not None and deleted is not None:
            after = (base, deleted.commit, deleted.locations)
        snap = Snapshot(self.path, full_check=self._full_check, reuse=self._cache,
                        after_delete=after)
        self._cache = dict(snap._reuse)
        return snap

    def close(self) -> None:
        with self._thread_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writer lock -----------------------------------------------------------------------
    @contextlib.contextmanager
    def write_lock(self, timeout: float | None = None):
        """Hold the writer lock across several writes (re-entrant within this Store)."""
        with self._thread_lock:
            if self._depth == 0:
                self._lock.acquire(self.lock_timeout if timeout is None else timeout)
                try:
                    self.gc()
                except BaseException:
                    self._lock.release()
                    raise
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._lock.release()

    def _writer(self):
        if self._conn is None:
            self._conn = cat.connect_writer(self.catalog_path)
        return self._conn

    def _meta(self) -> dict:
        with cat.translate_errors(self.catalog_path):
            return cat.read_meta(self._writer(), self.catalog_path)

    @contextlib.contextmanager
    def _transaction(self):
        conn = self._writer()
        with cat.translate_errors(self.catalog_path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def gc(self) -> list[str]:
        """Remove temporary folders and folders no commit references. Needs the lock.

        Readers never need a dropped folder again once their snapshot is open: their maps stay
        valid after unlink (POSIX), and a snapshot being opened retries on the newer commit."""
        if not self._lock.held:
            with self.write_lock():
                return []  # write_lock ran gc
        conn = self._writer()
        with cat.translate_errors(self.catalog_path):
            used = {("segments", r[0]) for r in conn.execute("SELECT folder FROM segments")}
            used |= {("codec", r[0]) for r in conn.execute("SELECT folder FROM codecs")}
        removed = []
        for sub in ("tmp", "segments", "codec"):
            root = self.path / sub
            root.mkdir(exist_ok=True)
            for entry in os.listdir(root):
                if sub == "tmp" or (sub, entry) not in used:
                    shutil.rmtree(root / entry, ignore_errors=True)
                    removed.append(f"{sub}/{entry}")
        return removed

    # -- writes ----------------------------------------------------------------------------
    def _publish(self, arrays: Mapping, kind: str, final_name: str, *, reserved_ok=False):
        tmp_folder, manifest = write_array_folder(self.path / "tmp", arrays, kind,
                                                  reserved_ok=reserved_ok)
        final = self.path / ("segments" if kind == "segment" else "codec") / final_name
        publish_folder(tmp_folder, final)
        return final, sha256_bytes(manifest)

    @staticmethod
    def _live_rows(conn, external_ids: list[str]) -> list[tuple]:
        """(internal_id, external_id, segment_id, row) of the live documents named by
        ``external_ids``: b-tree probes of the covering index documents_external and of
        tombstones only, no document row is read (``verify`` checks index against table)."""
        rows = []
        for i in range(0, len(external_ids), _CHUNK):
            part = external_ids[i:i + _CHUNK]
            rows += conn.execute(
                "SELECT internal_id, external_id, segment_id, row FROM documents WHERE "
                f"external_id IN ({','.join('?' * len(part))}) AND {cat.LIVE}", part).fetchall()
        return rows

    @staticmethod
    def _tombstone(conn, docs: Iterable[tuple], commit: int) -> None:
        # One small row per document: the document row and its checksum stay untouched.
        # In key order, the inserts walk the tombstones b-tree once, left to right.
        conn.executemany("INSERT INTO tombstones VALUES (?, ?, ?, ?, ?)",
                         [cat.tombstone_row(d[0], d[2], d[3], commit) for d in sorted(docs)])

    def add(self, ids: Sequence[str], arrays: Mapping[str, np.ndarray], *,
            metadata: Sequence | None = None, texts: Sequence | None = None,
            upsert: bool = False, codec: Mapping[str, np.ndarray] | None = None
            ) -> CommitResult:
        """Append one segment holding documents ``ids`` (row i = ids[i]) in one commit.

        arrays: the segment's arrays (name -> numeric ndarray), opaque to the store.
        metadata: one JSON-serialisable dict (or None) per document; texts: str or None each.
        upsert: replace live documents with the same ids (tombstoned in the same commit);
        otherwise such an id raises DuplicateIdError before anything is written.
        codec: if given, written as a new codec version that becomes current with this commit.
        Returns the commit with the new documents' internal ids (int64, row order).
        """
        ids = _as_str_list(ids, "ids")
        n = len(ids)
        if n == 0:
            raise ValueError("ids must name at least one document")
        if any(not i for i in ids):
            raise ValueError("ids must be non-empty strings")
        if len(set(ids)) != n:
            dup = sorted(k for k, c in Counter(ids).items() if c > 1)[:5]
            raise ValueError(f"ids must be unique within one call; repeated: {dup!r}")
        meta_json = self._per_doc(metadata, n, "metadata",
                                  lambda m, w: _json_text({} if m is None else m, w), dict)
        text_list = self._per_doc(texts, n, "texts", lambda t, w: t, str)
        if not isinstance(arrays, Mapping):
            raise TypeError("arrays must be a dict of name -> numpy array")
        with self.write_lock():
            conn = self._writer()
            meta = self._meta()
            with cat.translate_errors(self.catalog_path):
                existing = self._live_rows(conn, ids)
            if existing and not upsert:
                raise DuplicateIdError(
                    f"{len(existing)} id(s) already in the index, e.g. "
                    f"{[d[1] for d in existing[:5]]!r}; pass upsert=True to replace them")
            commit = int(meta["commit"]) + 1
            first = int(meta["next_internal_id"])
            seg_id = int(meta["next_segment_id"])
            internal = np.arange(first, first + n, dtype=np.int64)
            blob, offsets = _external_id_csr(ids)
            seg_arrays = dict(arrays)
            for name in seg_arrays:
                if name.startswith("_"):
                    raise ValueError(f"array name {name!r}: names starting with '_' are "
                                     "reserved")
            seg_arrays.update({INTERNAL_IDS: internal, EXTERNAL_ID_BYTES: blob,
                               EXTERNAL_ID_OFFSETS: offsets})
            codec_version = int(meta["current_codec"]) if meta["current_codec"] else None
            codec_folder = None
            published = []
            try:
                if codec is not None:
                    codec_version = int(meta["next_codec_version"])
                    codec_folder, codec_sha = self._publish(
                        codec, "codec", f"{codec_version:06d}-{secrets.token_hex(4)}")
                    published.append(codec_folder)
                seg_folder, seg_sha = self._publish(
                    seg_arrays, "segment", f"{seg_id:08d}-{secrets.token_hex(4)}",
                    reserved_ok=True)
                published.append(seg_folder)
                with self._transaction() as c:
                    if codec_folder is not None:
                        c.execute("INSERT INTO codecs VALUES (?, ?, ?, ?, ?)",
                                  cat.codec_row(codec_version, codec_folder.name, codec_sha,
                                                commit))
                        cat.set_meta(c, "current_codec", codec_version)
                        cat.set_meta(c, "next_codec_version", codec_version + 1)
                    c.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                              cat.segment_row(seg_id, seg_folder.name, codec_version, n,
                                              seg_sha, commit))
                    self._tombstone(c, existing, commit)
                    c.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (cat.doc_row(internal[r], ids[r], seg_id, r, meta_json[r],
                                               text_list[r]) for r in range(n)))
                    cat.set_meta(c, "next_internal_id", first + n)
                    cat.set_meta(c, "next_segment_id", seg_id + 1)
                    cat.set_meta(c, "commit", commit)
            except BaseException:
                for folder in published:  # never referenced: safe to drop now
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        return CommitResult(commit, internal, seg_id, codec_version, n)

    @staticmethod
    def _per_doc(values, n: int, name: str, convert, kind) -> list:
        if values is None:
            return [convert(None, name)] * n if name == "metadata" else [None] * n
        if isinstance(values, (str, bytes, Mapping)):
            raise TypeError(f"{name} must be a list with one entry per id")
        values = list(values)
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} ids")
        out = []
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, kind):
                raise TypeError(f"{name}[{i}] must be {kind.__name__} or None; "
                                f"got {type(v).__name__}")
            out.append(convert(v, f"{name}[{i}]"))
        return out

    def delete(self, ids: Iterable[str], *, missing: str = "raise") -> CommitResult:
        """Tombstone live documents by external id in one commit; O(len(ids)).

        missing: 'raise' (UnknownIdError before anything changes) or 'ignore'."""
        if missing not in ("raise", "ignore"):
            raise ValueError("missing must be 'raise' or 'ignore'")
        ids = list(dict.fromkeys(_as_str_list(ids, "ids")))
        with self.write_lock():
            meta = self._meta()
            with cat.translate_errors(self.catalog_path):
                docs = self._live_rows(self._writer(), ids)
            if missing == "raise" and len(docs) != len(ids):
                found = {d[1] for d in docs}
                unknown = [i for i in ids if i not in found]
                raise UnknownIdError.of(unknown)
            commit = int(meta["commit"]) + 1
            with self._transaction() as c:
                self._tombstone(c, docs, commit)
                cat.set_meta(c, "commit", commit)
        return CommitResult(commit, np.array([d[0] for d in docs], dtype=np.int64),
                            n_docs=len(docs),
                            locations=np.array([(d[2], d[3]) for d in docs],
                                               dtype=np.int64).reshape(-1, 2))

    def compact(self, merge_fn: Callable[[MergeInput], Mapping | Merged], *,
                segment_ids: Sequence[int] | None = None) -> CommitResult:
        """Merge segments into one, dropping deleted documents, in one commit.

        merge_fn(MergeInput) returns the merged segment's arrays (a dict) or ``Merged(arrays,
        codec)`` to also install a new codec version (only when merging every segment).
        It is not called when no live document remains; the segments are then just dropped.
        Internal and external ids of the surviving documents do not change.
        """
        with self.write_lock():
            snap = Snapshot(self.path, reuse=self._cache)
            try:
                return self._compact(snap, merge_fn, segment_ids)
            finally:
                snap.close()

    def _compact(self, snap: Snapshot, merge_fn, segment_ids) -> CommitResult:
        all_ids = [s.id for s in snap.segments]
        chosen = set(all_ids if segment_ids is None else (int(i) for i in segment_ids))
        if not chosen <= set(all_ids):
            raise ValueError(f"segment_ids {sorted(chosen - set(all_ids))} do not exist")
        inputs: list[SegmentView] = [s for s in snap.segments if s.id in chosen]
        rows = [np.flatnonzero(s.live).astype(np.int64) for s in inputs]
        total = int(sum(len(r) for r in rows))
        arrays, new_codec = None, None
        if total:
            out = merge_fn(MergeInput(inputs, rows, snap.codec, snap.codec_version,
                                      dict(snap.settings)))
            arrays, new_codec = (out.arrays, out.codec) if isinstance(out, Merged) else (out, None)
            if not isinstance(arrays, Mapping):
                raise TypeError("merge_fn must return a dict of arrays or Merged(...)")
            if any(name.startswith("_") for name in arrays):
                raise ValueError("merge_fn returned a reserved array name (leading '_')")
            if new_codec is not None and chosen != set(all_ids):
                raise ValueError("a new codec needs a compaction of every segment")
        meta = self._meta()
        commit = int(meta["commit"]) + 1
        seg_id = int(meta["next_segment_id"])
        codec_version = snap.codec_version
        published, seg_folder, codec_folder = [], None, None
        internal = np.zeros(0, np.int64)
        try:
            if new_codec is not None:
                codec_version = int(meta["next_codec_version"])
                codec_folder, codec_sha = self._publish(
                    new_codec, "codec", f"{codec_version:06d}-{secrets.token_hex(4)}")
                published.append(codec_folder)
            if total:
                internal = np.concatenate([s.internal_ids[r] for s, r in zip(inputs, rows)])
                parts = [_gather_csr(s.files.arrays[EXTERNAL_ID_BYTES],
                                     s.files.arrays[EXTERNAL_ID_OFFSETS], r)
                         for s, r in zip(inputs, rows)]
                blob = np.concatenate([p[0] for p in parts])
                lens = np.concatenate([np.diff(p[1]) for p in parts])
                offsets = np.zeros(total + 1, dtype=np.int64)
                np.cumsum(lens, out=offsets[1:])
                seg_arrays = dict(arrays)
                seg_arrays.update({INTERNAL_IDS: internal, EXTERNAL_ID_BYTES: blob,
                                   EXTERNAL_ID_OFFSETS: offsets})
                seg_folder, seg_sha = self._publish(
                    seg_arrays, "segment", f"{seg_id:08d}-{secrets.token_hex(4)}",
                    reserved_ok=True)
                published.append(seg_folder)
            new_row = {int(i): r for r, i in enumerate(internal)}
            chosen_sql = ",".join(str(i) for i in sorted(chosen)) or "NULL"
            with self._transaction() as c:
                if codec_folder is not None:
                    c.execute("DELETE FROM codecs")  # every segment is re-encoded below
                    c.execute("INSERT INTO codecs VALUES (?, ?, ?, ?, ?)",
                              cat.codec_row(codec_version, codec_folder.name, codec_sha,
                                            commit))
                    cat.set_meta(c, "current_codec", codec_version)
                    cat.set_meta(c, "next_codec_version", codec_version + 1)
                if seg_folder is not None:
                    c.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                              cat.segment_row(seg_id, seg_folder.name, codec_version, total,
                                              seg_sha, commit))
                    cat.set_meta(c, "next_segment_id", seg_id + 1)
                docs = [cat.check_row(self.catalog_path, "documents", r) for r in c.execute(
                    f"SELECT {cat.DOC_COLUMNS}, crc FROM documents WHERE "
                    f"segment_id IN ({chosen_sql}) AND {cat.LIVE}")]
                if len(docs) != total:
                    raise StorageError("live documents changed under the writer lock")
                c.executemany(
                    "UPDATE documents SET segment_id = ?, row = ?, crc = ? "
                    "WHERE internal_id = ?",
                    [(seg_id, new_row[d[0]],
                      cat.doc_row(d[0], d[1], seg_id, new_row[d[0]], d[4], d[5])[-1], d[0])
                     for d in docs])
                # What is left in the dropped segments is deleted documents and their
                # tombstones: both go with the segments.
                c.execute(f"DELETE FROM tombstones WHERE segment_id IN ({chosen_sql})")
                c.execute(f"DELETE FROM documents WHERE segment_id IN ({chosen_sql})")
                c.execute(f"DELETE FROM segments WHERE id IN ({chosen_sql})")
                cat.set_meta(c, "commit", commit)
        except BaseException:
            for folder in published:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        # Readers that already mapped these folders keep working (POSIX keeps unlinked files
        # alive while mapped); readers opening now see the new commit or retry.
        for s in inputs:
            shutil.rmtree(s.folder, ignore_errors=True)
        if codec_folder is not None:
            self.gc()  # the old codec folders are no longer referenced
        return CommitResult(commit, internal, seg_id if seg_folder else None, codec_version,
                            total)

    # -- checks ----------------------------------------------------------------------------
    def verify(self) -> dict:
        """Check checksums of every file and every catalog row, and the invariants.

        Raises CorruptionError naming the bad file; returns a summary dict otherwise."""
        from .verify import verify_store
        return verify_store(self.path)

    def __len__(self) -> int:
        with self.snapshot() as snap:
            return len(snap)
