"""Store operations against hand-computed expectations: ids, upsert, compaction, retrain,
snapshots and refresh, the writer lock, garbage collection, input validation."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import _storage_workload as wl
from gingham.storage import (
    DuplicateIdError,
    LockTimeoutError,
    Merged,
    StorageError,
    Store,
    UnknownIdError,
)


def _arrays(ids, version=0):
    return wl.segment_arrays([(i, version) for i in ids])


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "idx", {"dim": wl.DIM, "nbits": 2, "model": None})
    yield s
    s.close()


def test_segment_external_ids_of_rows_equal_the_ids_one_by_one(store):
    ids = ["a", "\u00e9t\u00e9", "b", "\u6587\u6863-7", "zz" * 40]
    store.add(ids, _arrays("abcde"))
    with store.snapshot() as snap:
        seg = snap.segments[0]
        assert seg.external_ids() == ids
        rows = np.array([4, 0, 3, 3, 1, 2], dtype=np.int64)
        assert seg.external_ids(rows) == [seg.external_id(int(r)) for r in rows]
        assert seg.external_ids([2, 1]) == ["b", "\u00e9t\u00e9"]
        assert seg.external_ids(np.zeros(0, np.int64)) == []


def test_create_refuses_non_empty_folder_and_open_missing(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(FileExistsError):
        Store.create(tmp_path / "x", {})
    with pytest.raises(StorageError, match="not a gingham index"):
        Store.open(tmp_path / "nothing")


def test_ids_survive_delete_compact_and_reopen(store, tmp_path):
    r1 = store.add(["a", "b", "c"], _arrays("abc"), metadata=[{"k": 1}, {"k": 2}, {"k": 3}])
    r2 = store.add(["d", "e"], _arrays("de"))
    assert r1.internal_ids.tolist() == [0, 1, 2] and r2.internal_ids.tolist() == [3, 4]
    store.delete(["b", "d"])
    with store.snapshot() as snap:
        before = dict(zip(snap.ids(), snap.resolve(snap.ids()).tolist()))
    assert before == {"a": 0, "c": 2, "e": 4}
    res = store.compact(wl.merge_arrays)
    assert res.internal_ids.tolist() == [0, 2, 4]
    store.close()
    reopened = Store.open(tmp_path / "idx")
    with reopened.snapshot() as snap:
        assert len(snap.segments) == 1 and snap.segments[0].external_ids() == ["a", "c", "e"]
        assert dict(zip(snap.ids(), snap.resolve(snap.ids()).tolist())) == before
        assert snap.get("c") == {"k": 3} and snap.get("e") == {}
        np.testing.assert_array_equal(
            snap.segments[0].arrays["vectors"],
            np.concatenate([wl.payload(x, 0) for x in "ace"]))
    assert reopened.verify()["n_live"] == 3
    reopened.close()


def test_duplicate_and_upsert(store):
    store.add(["a", "b"], _arrays("ab"), metadata=[{"v": 0}, {"v": 0}])
    with pytest.raises(DuplicateIdError, match="'b'"):
        store.add(["b", "c"], _arrays("bc"))
    with pytest.raises(ValueError, match="unique"):
        store.add(["c", "c"], _arrays("cc"))
    res = store.add(["b", "c"], _arrays("bc", 1), metadata=[{"v": 1}, {"v": 1}], upsert=True)
    with store.snapshot() as snap:
        assert snap.ids() == ["a", "b", "c"]
        assert snap.resolve(["b"]).tolist() == [res.internal_ids[0]]
        assert snap.get("b") == {"v": 1}
        assert [s.live.tolist() for s in snap.segments] == [[1, 0], [1, 1]]
        assert snap.commit == 2  # the failed calls committed nothing


def test_delete_unknown_raises_before_changing_anything(store):
    store.add(["a", "b"], _arrays("ab"))
    with pytest.raises(UnknownIdError, match="zz"):
        store.delete(["a", "zz"])
    with store.snapshot() as snap:
        assert snap.ids() == ["a", "b"]
    assert store.delete(["a", "zz"], missing="ignore").n_docs == 1


def test_snapshot_is_isolated_until_refresh(store):
    store.add(["a"], _arrays("a"), metadata=[{"x": 1}])
    old = store.snapshot()
    store.add(["b"], _arrays("b"), metadata=[{"x": 1}])
    store.delete(["a"])
    store.compact(wl.merge_arrays)  # drops (and removes) the folder `old` has mapped
    assert old.ids() == ["a"] and old.get("a") == {"x": 1}
    assert old.where("json_extract(metadata, '$.x') = ?", [1]).tolist() == [0]
    np.testing.assert_array_equal(old.segments[0].arrays["vectors"], wl.payload("a", 0))
    new = old.refresh()
    assert new.ids() == ["b"] and new.commit == old.commit + 3
    old.close()
    new.close()


def test_retrain_replaces_codec_and_keeps_ids(store):
    store.add(["a", "b"], _arrays("ab"), codec=wl.codec(1))
    store.add(["c"], _arrays("c"))
    res = store.compact(lambda m: Merged(wl.merge_arrays(m), wl.codec(2)))
    assert res.codec_version == 2
    with store.snapshot() as snap:
        assert snap.codec_version == 2 and float(snap.codec["centroids"][0, 0]) == 2.0
        assert list(snap.codecs) == [2] and snap.segments[0].codec_version == 2
        assert snap.resolve(["a", "b", "c"]).tolist() == [0, 1, 2]
    assert len(list((store.path / "codec").iterdir())) == 1
    with pytest.raises(ValueError, match="every segment"):
        store.add(["d"], _arrays("d"))
        store.compact(lambda m: Merged(wl.merge_arrays(m), wl.codec(3)), segment_ids=[3])


def test_compact_of_only_deleted_documents_drops_segments(store):
    store.add(["a", "b"], _arrays("ab"))
    store.delete(["a", "b"])
    called = []
    res = store.compact(lambda m: called.append(1))
    assert not called and res.segment_id is None
    with store.snapshot() as snap:
        assert snap.segments == [] and len(snap) == 0
    assert store.verify()["n_documents"] == 0


def test_second_writer_times_out_then_succeeds(store, tmp_path):
    other = Store.open(tmp_path / "idx", lock_timeout=0.2)
    with store.write_lock():
        t0 = time.monotonic()
        with pytest.raises(LockTimeoutError, match="another writer"):
            other.add(["x"], _arrays("x"))
        assert time.monotonic() - t0 >= 0.19
    released = threading.Event()

    def hold():
        with store.write_lock():
            released.wait(0.3)

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.05)
    other.lock_timeout = 5.0
    other.add(["x"], _arrays("x"))  # waits for the holder, then commits
    t.join()
    with store.snapshot() as snap:
        assert snap.ids() == ["x"]
    other.close()


def test_next_writer_collects_garbage(store):
    store.add(["a"], _arrays("a"))
    (store.path / "tmp" / "segment-dead").mkdir()
    (store.path / "segments" / "00000099-deadbeef").mkdir()
    (store.path / "segments" / "00000099-deadbeef" / "x.npy").write_bytes(b"junk")
    assert store.verify()["garbage"] == ["00000099-deadbeef"]
    store.delete(["a"])
    assert not (store.path / "tmp" / "segment-dead").exists()
    assert not (store.path / "segments" / "00000099-deadbeef").exists()
    assert len(list((store.path / "segments").iterdir())) == 1


def test_bad_inputs_raise_before_writing(store):
    with pytest.raises(TypeError):
        store.add("abc", _arrays("abc"))
    with pytest.raises(ValueError, match="metadata has 1 entries"):
        store.add(["a", "b"], _arrays("ab"), metadata=[{}])
    with pytest.raises(ValueError, match="JSON"):
        store.add(["a"], _arrays("a"), metadata=[{"x": float("nan")}])
    with pytest.raises(TypeError, match="dtype"):
        store.add(["a"], {"bad": np.array(["s"], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        store.add(["a"], {"_internal_ids": np.zeros(1)})
    with pytest.raises(ValueError, match="array name"):
        store.add(["a"], {"../x": np.zeros(1)})
    with store.snapshot() as snap:
        assert snap.commit == 0
    assert list((store.path / "segments").iterdir()) == []
