"""Full consistency check of an index folder: every checksum and every invariant."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import catalog as cat
from .errors import CorruptionError
from .snapshot import Snapshot


def verify_store(path: Path) -> dict:
    """Check the catalog (SQLite integrity, row checksums), every manifest and file (size,
    header, sha256, no stray files) and that documents and segments agree.

    Raises CorruptionError naming the first bad file; returns a summary otherwise."""
    path = Path(path)
    catalog = path / cat.CATALOG
    with Snapshot(path, full_check=True) as snap:
        result = snap._query("PRAGMA integrity_check")
        if [r[0] for r in result] != ["ok"]:
            raise CorruptionError(catalog, f"SQLite integrity_check: {result[0][0]}")
        meta = dict(cat.check_row(catalog, "meta", r) for r in
                    snap._query("SELECT key, value, crc FROM meta"))
        docs = [cat.check_row(catalog, "documents", r) for r in
                snap._query(f"SELECT {cat.DOC_COLUMNS}, crc FROM documents")]
        tombstones = [cat.check_row(catalog, "tombstones", r) for r in
                      snap._query(f"SELECT {cat.TOMBSTONE_COLUMNS}, crc FROM tombstones")]
        where = {d[0]: (d[2], d[3]) for d in docs}
        dead = set()
        for internal_id, seg_id, row, deleted_commit in tombstones:
            if internal_id not in where:
                raise CorruptionError(catalog, f"tombstone of unknown internal id {internal_id}")
            if where[internal_id] != (seg_id, row):
                raise CorruptionError(catalog, f"tombstone of internal id {internal_id} names "
                                               f"segment {seg_id} row {row}; its document is at "
                                               f"{where[internal_id]}")
            if not 0 < deleted_commit <= snap.commit:
                raise CorruptionError(catalog, f"tombstone of internal id {internal_id}: "
                                               f"commit {deleted_commit} is not in "
                                               f"1..{snap.commit}")
            dead.add(internal_id)
        segs = {s.id: s for s in snap.segments}
        seen_rows: dict[int, np.ndarray] = {s.id: np.zeros(s.n_docs, np.int64)
                                            for s in snap.segments}
        # each segment's id arrays read once, in bulk: a memory-map slice per row costs
        # microseconds, which a million-document verify pays a million times
        seg_internal = {s.id: np.asarray(s.internal_ids).tolist() for s in snap.segments}
        seg_external = {s.id: s.external_ids() for s in snap.segments}
        live_external = set()
        for internal_id, external_id, seg_id, row, _metadata, _text in docs:
            seg = segs.get(seg_id)
            if seg is None:
                raise CorruptionError(catalog, f"document {external_id!r} points to missing "
                                               f"segment {seg_id}")
            if not 0 <= row < seg.n_docs:
                raise CorruptionError(catalog, f"document {external_id!r}: row {row} outside "
                                               f"segment {seg_id} ({seg.n_docs} rows)")
            seen_rows[seg_id][row] += 1
            if seg_internal[seg_id][row] != internal_id:
                raise CorruptionError(seg.folder / "_internal_ids.npy",
                                      f"row {row} holds internal id "
                                      f"{seg_internal[seg_id][row]}, catalog says {internal_id}")
            if seg_external[seg_id][row] != external_id:
                raise CorruptionError(seg.folder / "_external_id_bytes.npy",
                                      f"row {row} differs from catalog id {external_id!r}")
            if internal_id not in dead:
                if external_id in live_external:
                    raise CorruptionError(catalog, f"two live documents {external_id!r}")
                live_external.add(external_id)
        for seg_id, counts in seen_rows.items():
            if counts.size and (counts.min() != 1 or counts.max() != 1):
                bad = int(np.flatnonzero(counts != 1)[0])
                raise CorruptionError(catalog, f"segment {seg_id} row {bad} is referenced by "
                                               f"{counts[bad]} documents (expected 1)")
        if docs and int(meta["next_internal_id"]) <= max(d[0] for d in docs):
            raise CorruptionError(catalog, "next_internal_id is not above every id")
        if segs and int(meta["next_segment_id"]) <= max(segs):
            raise CorruptionError(catalog, "next_segment_id is not above every segment id")
        if snap.codec_version is None and any(s.codec_version is not None
                                              for s in snap.segments):
            raise CorruptionError(catalog, "segments use a codec but none is current")
        folders = [s.folder for s in snap.segments]
        n_files = sum(len(s.files.arrays) + 1 for s in snap.segments)
        n_bytes = sum(os.path.getsize(f / e) for f in folders for e in os.listdir(f))
        used = {f.name for f in folders}
        garbage = sorted(e for e in os.listdir(path / "segments") if e not in used)
        return {"commit": snap.commit, "n_documents": len(docs), "n_live": len(snap),
                "n_tombstones": len(tombstones),
                "n_segments": len(segs), "codec_version": snap.codec_version,
                "files_checked": n_files, "bytes_checked": n_bytes, "garbage": garbage}
