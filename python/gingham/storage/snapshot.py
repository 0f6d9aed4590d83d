"""Read side of the store: an immutable, consistent view of one commit.

A snapshot holds one SQLite read transaction open for its whole life (WAL mode lets the writer
commit meanwhile), so its live masks, codec, segment list and every metadata / filter query
describe the same commit. Segment and codec arrays are memory-mapped read-only; nothing of the
vectors is read at open. Close snapshots you no longer need: an open read transaction keeps the
WAL file from being recycled.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import catalog as cat
from .errors import CorruptionError, StorageError, UnknownIdError
from .files import check_folder, check_sha256, checked_at_open, load_array, read_manifest

INTERNAL_IDS = "_internal_ids"
EXTERNAL_ID_BYTES = "_external_id_bytes"
EXTERNAL_ID_OFFSETS = "_external_id_offsets"
RESERVED = (INTERNAL_IDS, EXTERNAL_ID_BYTES, EXTERNAL_ID_OFFSETS)
_CHUNK = 500  # bound parameters per IN (...) query
_MAX_RETRIES = 20


@dataclass(frozen=True)
class FolderFiles:
    """The immutable, memory-mapped arrays of one published folder (segment or codec)."""

    folder: Path
    manifest_sha256: str
    arrays: Mapping[str, np.ndarray]


def load_folder(folder: Path, manifest_sha256: str, full_check: bool) -> FolderFiles:
    """Map the arrays of one published folder after checking its manifest; the sha256 of
    every file when ``full_check``, else of the small ones (``files.checked_at_open``)."""
    manifest = read_manifest(folder, manifest_sha256)
    if full_check:
        check_folder(folder, manifest)
    arrays = {}
    for name, entry in manifest["arrays"].items():
        arrays[name] = load_array(folder, entry)
        if not full_check and checked_at_open(name, entry):
            check_sha256(folder, entry)
    return FolderFiles(folder, manifest_sha256, arrays)


@dataclass(frozen=True)
class SegmentView:
    """One segment as seen by a snapshot.

    arrays: the caller's arrays (read-only memory maps), e.g. codes / residuals / doc_offsets.
    internal_ids: int64 (n_docs,), the internal id of each row.
    live: uint8 (n_docs,), 1 where the row's document is live in this snapshot.
    """

    id: int
    codec_version: int | None
    n_docs: int
    files: FolderFiles
    live: np.ndarray = field(repr=False)

    @property
    def folder(self) -> Path:
        return self.files.folder

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.files.arrays.items() if k not in RESERVED}

    @property
    def internal_ids(self) -> np.ndarray:
        return self.files.arrays[INTERNAL_IDS]

    @property
    def n_live(self) -> int:
        return int(np.count_nonzero(self.live))

    @property
    def external_id_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(bytes uint8 (B,), offsets int64 (n_docs + 1,)) of the rows' UTF-8 external ids,
        offsets checked at open."""
        return self.files.arrays[EXTERNAL_ID_BYTES], self.files.arrays[EXTERNAL_ID_OFFSETS]

    def external_id(self, row: int) -> str:
        """External id of one row (read from the segment's own files, whose offsets were
        checked at open); CorruptionError naming the bytes file if they are not UTF-8."""
        offsets = self.files.arrays[EXTERNAL_ID_OFFSETS]
        start, end = int(offsets[row]), int(offsets[row + 1])
        try:
            return bytes(self.files.arrays[EXTERNAL_ID_BYTES][start:end]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptionError(self.folder / f"{EXTERNAL_ID_BYTES}.npy",
                                  f"row {row} is not UTF-8: {exc.reason}") from None

    def external_ids(self, rows: Iterable[int] | None = None) -> list[str]:
        """External ids of ``rows`` (int64 row numbers; None: every row), in order, read
        through one buffer view (a memory-map slice per id costs microseconds);
        CorruptionError as :meth:`external_id`."""
        data, offsets = self.external_id_arrays
        rows = (np.arange(self.n_docs, dtype=np.int64) if rows is None else
                np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), np.int64))
        starts, ends = offsets[rows].tolist(), offsets[rows + 1].tolist()
        buffer = memoryview(np.asarray(data))
        try:
            return [str(buffer[a:b], "utf-8") for a, b in zip(starts, ends)]
        except UnicodeDecodeError:
            for r in rows.tolist():
                self.external_id(r)  # raises naming the first row that is not UTF-8
            raise


def check_segment_files(seg_id: int, n_docs: int, files: FolderFiles) -> None:
    """Header-level checks of the store's own arrays in a segment (no data read)."""
    for name in RESERVED:
        if name not in files.arrays:
            raise CorruptionError(files.folder / "manifest.json", f"array {name} missing")
    ids = files.arrays[INTERNAL_IDS]
    offs = files.arrays[EXTERNAL_ID_OFFSETS]
    if ids.shape != (n_docs,) or ids.dtype != np.int64:
        raise CorruptionError(files.folder / f"{INTERNAL_IDS}.npy",
                              f"expected int64 ({n_docs},) for segment {seg_id}")
    if offs.shape != (n_docs + 1,) or offs.dtype != np.int64:
        raise CorruptionError(files.folder / f"{EXTERNAL_ID_OFFSETS}.npy",
                              f"expected int64 ({n_docs + 1},) for segment {seg_id}")
    blob = files.arrays[EXTERNAL_ID_BYTES]
    if blob.ndim != 1 or blob.dtype != np.uint8:
        raise CorruptionError(files.folder / f"{EXTERNAL_ID_BYTES}.npy",
                              f"expected uint8 1-D for segment {seg_id}")
    # O(n_docs) over arrays a plain open has already read to checksum them; neighbours are
    # compared, not subtracted, since a difference of damaged int64 values can wrap around
    if offs[0] != 0 or offs[-1] != blob.shape[0] or bool(np.any(offs[1:] < offs[:-1])):
        raise CorruptionError(files.folder / f"{EXTERNAL_ID_OFFSETS}.npy",
                              f"not non-decreasing offsets from 0 to {blob.shape[0]} "
                              f"(segment {seg_id})")


def _filter_authorizer(action, arg1, arg2, dbname, source):
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ and arg1 in ("documents", "tombstones", "json_each",
                                                  "json_tree"):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


class Snapshot:
    """A consistent, read-only view of the index at one commit. Thread-safe.

    Attributes: ``commit`` (int), ``settings`` (dict), ``codec_version`` (int or None),
    ``codec`` (dict name -> read-only array, or None before the first codec),
    ``codecs`` (version -> dict, every codec a segment uses), ``segments`` (list of
    SegmentView in segment-id order).
    """

    def __init__(self, path: Path, *, full_check: bool = False,
                 reuse: Mapping[str, FolderFiles] | None = None,
                 after_delete: tuple["Snapshot", int, np.ndarray] | None = None):
        """after_delete: (base snapshot, commit, locations) when the caller itself just made
        ``commit`` as a delete (``CommitResult.locations``: int64 (n, 2) segment id and row of
        each tombstoned document). If this snapshot reads exactly that commit and ``base`` is
        at the commit before it, the live masks are base's with those rows cleared: O(deleted
        now), not O(all tombstones). Otherwise it loads as usual."""
        self.path = Path(path)
        self._catalog = self.path / cat.CATALOG
        self._full_check = full_check
        self._lock = threading.Lock()
        self._conn = cat.connect_reader(self._catalog)
        try:
            cat.check_header(self._conn, self._catalog)
            self._load(dict(reuse or {}), after_delete)
        except BaseException:
            self._conn.close()
            raise

    # -- loading -------------------------------------------------------------------------
    def _load(self, reuse: dict, after_delete=None) -> None:
        last_missing = None
        for _ in range(_MAX_RETRIES):
            with cat.translate_errors(self._catalog):
                self._conn.execute("BEGIN")
                state = self._read_state()
                if after_delete is not None and self._apply_delete(state, *after_delete):
                    return
                state["dead"] = self._read_dead()
            try:
                self._open_files(state, reuse)
                return
            except FileNotFoundError as exc:
                # A writer may have dropped (and garbage-collected) a segment between our read
                # transaction and opening its files: retry on a newer commit if there is one.
                last_missing = exc.filename
                self._conn.execute("COMMIT")
                with cat.translate_errors(self._catalog):
                    now = int(dict(cat.check_row(self._catalog, "meta", r) for r in
                                   self._conn.execute("SELECT key, value, crc FROM meta")
                                   )["commit"])
                if now == state["commit"]:
                    raise CorruptionError(last_missing, "file referenced by the catalog is "
                                                        "missing") from None
        raise CorruptionError(last_missing, "file missing after repeated retries")

    def _read_state(self) -> dict:
        c, p = self._conn, self._catalog
        meta = cat.read_meta(c, p)
        cat.check_key_index(c, p, "settings")
        settings = {}
        for row in c.execute("SELECT key, value, crc FROM settings"):
            key, value = cat.check_row(p, "settings", row)
            if key in settings:  # a damaged cell pointer can show one row twice
                raise CorruptionError(p, f"setting {key!r} listed twice")
            try:
                settings[key] = json.loads(value)
            except ValueError as exc:
                raise CorruptionError(p, f"setting {key!r} is not JSON") from exc
        codecs = [cat.check_row(p, "codecs", r) for r in
                  c.execute(f"SELECT {cat.CODEC_COLUMNS}, crc FROM codecs ORDER BY version")]
        segments = [cat.check_row(p, "segments", r) for r in
                    c.execute(f"SELECT {cat.SEGMENT_COLUMNS}, crc FROM segments ORDER BY id")]
        current = int(meta["current_codec"]) if meta["current_codec"] else None
        return {"commit": int(meta["commit"]), "settings": settings, "codecs": codecs,
                "segments": segments, "current_codec": current}

    def _read_dead(self) -> np.ndarray:
        """(segment id, row) int64 (n, 2) of every tombstoned document: one scan of the
        narrow tombstones table, O(tombstones)."""
        # tombstone rows are read without their CRC (verify checks it): at least their types
        # are checked, in one scan inside SQLite, so a text or real value cannot be truncated
        # into a wrong row number
        (bad,) = self._conn.execute(
            "SELECT count(*) FROM tombstones WHERE typeof(segment_id) != 'integer' "
            "OR typeof(row) != 'integer'").fetchone()
        if bad:
            raise CorruptionError(self._catalog, f"{bad} tombstone row(s) whose segment_id or "
                                                 "row is not an integer")
        return np.array(self._conn.execute("SELECT segment_id, row FROM tombstones").fetchall(),
                        dtype=np.int64).reshape(-1, 2)

    def _apply_delete(self, state: dict, base: "Snapshot", commit: int,
                      locations: np.ndarray) -> bool:
        """Build this snapshot from ``base`` plus one delete commit, if that is what it is."""
        if (state["commit"] != commit or base.commit != commit - 1
                or state["segments"] != base._rows["segments"]
                or state["codecs"] != base._rows["codecs"]
                or state["current_codec"] != base.codec_version):
            return False
        locations = np.asarray(locations, dtype=np.int64).reshape(-1, 2)
        segments = []
        for seg in base.segments:
            rows = locations[locations[:, 0] == seg.id, 1]
            live = seg.live
            if rows.size:
                if rows.min() < 0 or rows.max() >= seg.n_docs:
                    raise CorruptionError(self._catalog, f"document row out of range for "
                                                         f"segment {seg.id}")
                live = live.copy()
                live[rows] = 0
            segments.append(SegmentView(seg.id, seg.codec_version, seg.n_docs, seg.files, live))
        self._set_state(state, base.codecs, segments, dict(base._reuse))
        return True

    def _files(self, reuse: dict, folder: Path, sha: str) -> FolderFiles:
        key = str(folder)
        files = reuse.get(key)
        if files is None or files.manifest_sha256 != sha:
            files = load_folder(folder, sha, self._full_check)
        self._used[key] = files
        return files

    def _open_files(self, state: dict, reuse: dict) -> None:
        self._used: dict = {}
        codecs = {}
        for version, folder, sha, _commit in state["codecs"]:
            codecs[version] = dict(self._files(reuse, self.path / "codec" / folder, sha).arrays)
        if state["current_codec"] is not None and state["current_codec"] not in codecs:
            raise CorruptionError(self._catalog, f"current codec {state['current_codec']} "
                                                 "has no row in table codecs")
        segments, dead = [], state["dead"]
        for seg_id, folder, codec_version, n_docs, sha, _commit in state["segments"]:
            if codec_version is not None and codec_version not in codecs:
                raise CorruptionError(self._catalog, f"segment {seg_id} uses missing codec "
                                                     f"{codec_version}")
            path = self.path / "segments" / folder
            earlier = reuse.get(str(path))
            files = self._files(reuse, path, sha)
            if files is not earlier:  # a folder is immutable: check it once per process
                check_segment_files(seg_id, n_docs, files)
            live = np.ones(n_docs, dtype=np.uint8)
            rows = dead[dead[:, 0] == seg_id, 1]
            if rows.size and (rows.min() < 0 or rows.max() >= n_docs):
                raise CorruptionError(self._catalog, f"document row out of range for "
                                                     f"segment {seg_id}")
            live[rows] = 0
            segments.append(SegmentView(seg_id, codec_version, n_docs, files, live))
        known = {s[0] for s in state["segments"]}
        if dead.size and not set(np.unique(dead[:, 0]).tolist()) <= known:
            raise CorruptionError(self._catalog, "a deleted document points to a missing "
                                                 "segment")
        # only folders this commit uses are kept for reuse: dropped ones are let go
        self._set_state(state, codecs, segments, self._used)

    def _set_state(self, state: dict, codecs: dict, segments: list, used: dict) -> None:
        self.commit = state["commit"]
        self.settings = state["settings"]
        self.codecs = codecs
        self.codec_version = state["current_codec"]
        self.codec = codecs.get(self.codec_version)
        self.segments = segments
        self._rows = {"segments": state["segments"], "codecs": state["codecs"]}
        self._reuse = used

    # -- lifecycle -----------------------------------------------------------------------
    def refresh(self) -> "Snapshot":
        """A new snapshot of the latest commit; unchanged segment files are reused."""
        return Snapshot(self.path, full_check=self._full_check, reuse=self._reuse)

    def close(self) -> None:
        """End the read transaction. Arrays already taken stay valid."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    # -- documents -----------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(s.n_live for s in self.segments)

    @property
    def n_live(self) -> int:
        return len(self)

    def _query(self, sql: str, params: Sequence = ()) -> list:
        with self._lock:
            if self._conn is None:
                raise StorageError("snapshot is closed")
            with cat.translate_errors(self._catalog):
                return self._conn.execute(sql, params).fetchall()

    def _chunked(self, sql: str, values: list) -> list:
        out = []
        for i in range(0, len(values), _CHUNK):
            part = values[i:i + _CHUNK]
            out += self._query(sql.format(",".join("?" * len(part))), part)
        return out

    def resolve(self, external_ids: Iterable[str], *, missing: str = "raise") -> np.ndarray:
        """Internal ids (int64, input order) of live documents named by external ids.

        missing: 'raise' (UnknownIdError naming the unknown ids) or 'ignore' (drop them)."""
        if missing not in ("raise", "ignore"):
            raise ValueError("missing must be 'raise' or 'ignore'")
        ids = _as_str_list(external_ids, "external_ids")
        rows = self._chunked("SELECT external_id, internal_id FROM documents "
                             "WHERE external_id IN ({}) AND " + cat.LIVE, ids)
        found = dict(rows)
        unknown = [i for i in ids if i not in found]
        if unknown and missing == "raise":
            raise UnknownIdError.of(unknown)
        return np.array([found[i] for i in ids if i in found], dtype=np.int64)

    def rows(self, external_ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(internal ids, segment ids, rows), int64 each in input order, of live documents
        named by external ids; UnknownIdError naming the ids that are not live."""
        ids = _as_str_list(external_ids, "external_ids")
        found = {r[0]: r[1:] for r in self._chunked(
            "SELECT external_id, internal_id, segment_id, row FROM documents "
            "WHERE external_id IN ({}) AND " + cat.LIVE, ids)}
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise UnknownIdError.of(unknown)
        out = np.array([found[i] for i in ids], dtype=np.int64).reshape(-1, 3)
        return out[:, 0], out[:, 1], out[:, 2]

    def _docs(self, internal_ids) -> dict:
        ids = [int(i) for i in np.asarray(internal_ids, dtype=np.int64).ravel()]
        rows = self._chunked(f"SELECT {cat.DOC_COLUMNS}, crc FROM documents "
                             "WHERE internal_id IN ({})", ids)
        docs = {}
        for row in rows:
            values = cat.check_row(self._catalog, "documents", row)
            docs[values[0]] = values
        unknown = [i for i in ids if i not in docs]
        if unknown:
            raise UnknownIdError(f"internal id(s) {unknown[:5]!r} not in this snapshot")
        return docs

    def external_ids(self, internal_ids) -> list[str]:
        """External ids of internal ids (any document of this snapshot, live or deleted)."""
        docs = self._docs(internal_ids)
        return [docs[int(i)][1] for i in np.asarray(internal_ids).ravel()]

    def metadata(self, internal_ids) -> list[dict]:
        docs = self._docs(internal_ids)
        return [json.loads(docs[int(i)][4]) for i in np.asarray(internal_ids).ravel()]

    def texts(self, internal_ids) -> list:
        docs = self._docs(internal_ids)
        return [docs[int(i)][5] for i in np.asarray(internal_ids).ravel()]

    def documents(self, internal_ids) -> list[dict]:
        """{"id", "metadata", "text"} of internal ids (input order), in one batched query."""
        docs = self._docs(internal_ids)
        rows = (docs[i] for i in np.asarray(internal_ids, dtype=np.int64).ravel().tolist())
        return [{"id": r[1], "metadata": json.loads(r[4]), "text": r[5]} for r in rows]

    def get(self, external_id: str) -> dict:
        """Metadata dict of one live document."""
        return self.metadata(self.resolve([external_id]))[0]

    def ids(self) -> list[str]:
        """External ids of all live documents, in internal-id order. The rows are read
        without their CRC (that would read every metadata and text); what every id list must
        be -- distinct non-empty strings -- is checked."""
        ids = [r[0] for r in self._query(
            f"SELECT external_id FROM documents WHERE {cat.LIVE} ORDER BY internal_id")]
        if not all(type(i) is str and i for i in ids) or len(set(ids)) != len(ids):
            raise CorruptionError(self._catalog, "the live documents' external ids are not "
                                                 "distinct non-empty strings")
        return ids

    def where(self, expr: str, params: Sequence = ()) -> np.ndarray:
        """Sorted internal ids (int64) of live documents for which the SQL expression holds.

        The expression sees columns ``metadata`` (JSON text), ``external_id``, ``internal_id``
        and ``text`` of table documents, e.g. ``json_extract(metadata, '$.lang') = ?``.
        Values must be passed in ``params`` (bound, never formatted in). It runs on a
        read-only connection under an authorizer that allows reading table documents only.
        """
        if not isinstance(expr, str) or not expr.strip():
            raise ValueError("where must be a non-empty SQL expression string")
        if ";" in expr or "--" in expr or "/*" in expr:
            raise ValueError(f"where={expr!r}: must be a single expression without ';' or "
                             "comments; pass values through params")
        if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, Mapping)):
            raise TypeError("params must be a sequence (or a mapping for :named parameters)")
        sql = (f"SELECT internal_id FROM documents WHERE {cat.LIVE} AND ({expr}) "
               "ORDER BY internal_id")
        with self._lock:
            if self._conn is None:
                raise StorageError("snapshot is closed")
            self._conn.set_authorizer(_filter_authorizer)
            try:
                with cat.translate_errors(self._catalog):
                    rows = self._conn.execute(sql, params).fetchall()
            except CorruptionError:
                raise
            except (sqlite3.Error, sqlite3.Warning, OverflowError) as exc:
                raise ValueError(f"where={expr!r} failed: {exc}") from exc
            finally:
                self._conn.set_authorizer(None)
        try:
            return np.array([r[0] for r in rows], dtype=np.int64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"where={expr!r} did not select document ids") from exc

    def masks(self, internal_ids) -> list[np.ndarray]:
        """Per-segment uint8 masks: 1 where the row is live and its internal id is given."""
        ids = np.unique(np.asarray(internal_ids, dtype=np.int64))
        return [(np.isin(s.internal_ids, ids, assume_unique=True) & (s.live != 0))
                .astype(np.uint8) for s in self.segments]


def _as_str_list(values, name: str) -> list[str]:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    out = list(values)
    for v in out:
        if not isinstance(v, str):
            raise TypeError(f"{name} must contain str; got {type(v).__name__}")
    return out
