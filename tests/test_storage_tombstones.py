"""Format 2 tombstones: a delete inserts tombstone rows only (O(number of ids), checked by
counting SQLite VM steps at two index sizes), a writer derives its next snapshot from the
previous one (and falls back to a full read when another commit came in between), and damaged
or dangling tombstones are caught."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import _storage_workload as wl
from gingham.storage import CorruptionError, Snapshot, Store
from gingham.storage import catalog as cat


def _store(path, n: int) -> Store:
    store = Store.create(path, {"dim": wl.DIM})
    ids = [f"doc-{i}" for i in range(n)]
    for a in range(0, n, 500):
        part = ids[a:a + 500]
        store.add(part, wl.segment_arrays([(i, 0) for i in part]),
                  metadata=[{"n": i, "pad": "x" * 200} for i in range(a, a + len(part))])
    return store


def _vm_steps(store: Store, fn) -> int:
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    conn = store._writer()
    conn.set_progress_handler(count, 1)
    try:
        fn()
    finally:
        conn.set_progress_handler(None, 1)
    return steps[0]


def test_delete_work_does_not_grow_with_the_index(tmp_path):
    """SQLite work of deleting 50 ids at 500 and at 5,000 documents (1,000 already deleted
    in the larger one): a scan of documents or tombstones would grow ~10x; b-tree probes grow
    with the depth only."""
    steps = []
    for n, already in ((500, 0), (5000, 1000)):
        store = _store(tmp_path / f"i{n}", n)
        if already:
            store.delete([f"doc-{i}" for i in range(n - already, n)])
        victims = [f"doc-{i}" for i in range(7, 7 + 50 * 7, 7)]
        steps.append(_vm_steps(store, lambda: store.delete(victims)))
        with store.snapshot() as snap:
            assert snap.resolve(victims, missing="ignore").size == 0
            assert len(snap) == n - already - 50
        store.close()
    assert steps[1] < 1.6 * steps[0], steps


def test_writer_derives_its_snapshot_after_its_own_delete(tmp_path, monkeypatch):
    store = _store(tmp_path / "idx", 1200)
    store.delete(["doc-3", "doc-700"])
    base = store.snapshot()
    result = store.delete(["doc-5", "doc-600", "doc-1100"])
    assert sorted(map(tuple, result.locations.tolist())) == [(1, 5), (2, 100), (3, 100)]

    def no_full_read(self):
        raise AssertionError("derived snapshot read every tombstone")

    with monkeypatch.context() as m:
        m.setattr(Snapshot, "_read_dead", no_full_read)
        derived = store.snapshot(base=base, deleted=result)
    fresh = Store.open(tmp_path / "idx").snapshot()
    assert derived.commit == fresh.commit == base.commit + 1
    for d, f, b in zip(derived.segments, fresh.segments, base.segments):
        assert np.array_equal(d.live, f.live)
        assert d.live is b.live or not np.array_equal(d.live, b.live)  # base left unchanged
    assert len(base) == 1198 and len(derived) == len(fresh) == 1195
    assert derived.where("json_extract(metadata, '$.n') IN (5, 6)").tolist() == [6]
    for s in (base, derived, fresh):
        s.close()
    store.close()


def test_derived_snapshot_falls_back_when_another_commit_came_between(tmp_path):
    store = _store(tmp_path / "idx", 600)
    other = Store.open(tmp_path / "idx")
    base = store.snapshot()
    other.delete(["doc-1"])
    other.add(["new"], wl.segment_arrays([("new", 0)]))
    result = store.delete(["doc-2", "doc-550"])
    snap = store.snapshot(base=base, deleted=result)
    assert snap.commit == base.commit + 3
    assert snap.resolve(["doc-1", "doc-2", "doc-550", "new", "doc-3"],
                        missing="ignore").size == 2
    assert len(snap) == 600 - 3 + 1 and len(snap.segments) == len(base.segments) + 1
    for s in (base, snap):
        s.close()
    other.close()
    store.close()


def _catalog_edit(path, sql: str, params=()) -> None:
    conn = sqlite3.connect(path / cat.CATALOG)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_tombstone_of_unknown_internal_id_is_caught(tmp_path):
    store = _store(tmp_path / "idx", 10)
    store.delete(["doc-1"])
    store.close()
    _catalog_edit(tmp_path / "idx", "INSERT INTO tombstones VALUES (?, ?, ?, ?, ?)",
                  cat.tombstone_row(12345, 1, 2, 2))
    with pytest.raises(CorruptionError, match="unknown internal id 12345") as err:
        Store.open(tmp_path / "idx").verify()
    assert err.value.path == str(tmp_path / "idx" / cat.CATALOG)


def test_tombstone_at_another_row_than_its_document_is_caught(tmp_path):
    store = _store(tmp_path / "idx", 10)
    store.delete(["doc-1"])
    store.close()
    _catalog_edit(tmp_path / "idx", "UPDATE tombstones SET row = ?, crc = ? "
                  "WHERE internal_id = 1", (2, cat.tombstone_row(1, 1, 2, 2)[-1]))
    with pytest.raises(CorruptionError, match="segment 1 row 2"):
        Store.open(tmp_path / "idx").verify()


def test_damaged_tombstone_row_is_caught_by_verify(tmp_path):
    store = _store(tmp_path / "idx", 10)
    store.delete(["doc-1"])
    store.close()
    # another existing id, checksum left as it was: the deleted document would come back
    _catalog_edit(tmp_path / "idx", "UPDATE tombstones SET internal_id = 4 WHERE internal_id = 1")
    with pytest.raises(CorruptionError, match="tombstones"):
        Store.open(tmp_path / "idx").verify()


def test_tombstone_commit_outside_history_is_caught_by_verify(tmp_path):
    store = _store(tmp_path / "idx", 10)
    store.delete(["doc-1"])
    store.close()
    _catalog_edit(tmp_path / "idx", "UPDATE tombstones SET deleted_commit = ?, crc = ? "
                  "WHERE internal_id = 1", cat.tombstone_row(1, 1, 1, 99)[3:])
    with pytest.raises(CorruptionError, match="commit 99"):
        Store.open(tmp_path / "idx").verify()


def test_compaction_drops_tombstones_with_their_segments(tmp_path):
    store = _store(tmp_path / "idx", 1000)
    store.delete([f"doc-{i}" for i in range(0, 1000, 3)])
    store.compact(wl.merge_arrays, segment_ids=[1])
    summary = store.verify()
    assert summary["n_tombstones"] == len(range(500, 1000, 3))
    assert summary["n_documents"] == 1000 - len(range(0, 500, 3))
    store.compact(wl.merge_arrays)
    summary = store.verify()
    assert summary["n_tombstones"] == 0 and summary["n_documents"] == summary["n_live"] == 666
    store.close()
