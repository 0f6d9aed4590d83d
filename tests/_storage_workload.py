"""Deterministic write workload for the storage tests, and the model it must produce.

Operation i (= commit i) is drawn from a RNG seeded by (seed, i) and the model state after
commit i-1, so any process can replay the expected state of any commit. Run as a script it is
the child process of the crash and concurrency tests:

    python _storage_workload.py <index> <seed> <log file> <last commit>
"""
from __future__ import annotations

import os
import random
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gingham.storage import Merged, Store

DIM = 4


def payload(ext_id: str, version: int) -> np.ndarray:
    """Token vectors of one document version, (1..5, DIM) float32."""
    rng = np.random.default_rng(zlib.crc32(f"{ext_id}/{version}".encode()))
    return rng.standard_normal((int(rng.integers(1, 6)), DIM)).astype(np.float32)


def segment_arrays(docs: list[tuple[str, int]]) -> dict:
    """Segment arrays (vectors, doc_offsets) holding the payload of each (id, version)."""
    vecs = [payload(i, v) for i, v in docs]
    offsets = np.zeros(len(vecs) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vecs], out=offsets[1:])
    return {"vectors": np.concatenate(vecs), "doc_offsets": offsets}


def merge_arrays(m) -> dict:
    """Merge function for Store.compact: concatenates the surviving documents' vectors."""
    vecs = []
    for seg, rows in zip(m.segments, m.rows):
        off, vec = seg.arrays["doc_offsets"], seg.arrays["vectors"]
        vecs += [np.asarray(vec[off[r]:off[r + 1]]) for r in rows]
    offsets = np.zeros(len(vecs) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vecs], out=offsets[1:])
    return {"vectors": np.concatenate(vecs), "doc_offsets": offsets}


def codec(gen: int) -> dict:
    """A codec whose centroids encode its generation ``gen``."""
    return {"centroids": np.full((2, DIM), float(gen), dtype=np.float32)}


@dataclass
class Model:
    """Expected store contents: live ids with their versions, codec generation, next id."""

    docs: dict = field(default_factory=dict)  # external id -> version
    codec_gen: int = 0
    next_new: int = 0

    def copy(self) -> "Model":
        """A copy that later operations can change independently."""
        return Model(dict(self.docs), self.codec_gen, self.next_new)


def next_op(seed: int, i: int, model: Model) -> tuple:
    """Operation i: (kind, ids), a function of (seed, i) and the model after commit i-1."""
    rng = random.Random(seed * 1_000_003 + i)
    kind = rng.choices(["add", "upsert", "delete", "compact", "retrain"],
                       [40, 15, 25, 15, 5])[0]
    existing = sorted(model.docs)
    if kind in ("upsert", "delete") and not existing:
        kind = "add"
    if kind == "add":
        return ("add", [f"doc-{model.next_new + j}" for j in range(rng.randint(1, 8))])
    if kind in ("upsert", "delete"):
        return (kind, rng.sample(existing, min(len(existing), rng.randint(1, 6))))
    return (kind, [])


def apply(model: Model, op: tuple, i: int) -> Model:
    """The model after operation ``op`` as commit i (a new Model)."""
    kind, ids = op
    m = model.copy()
    if kind == "add":
        m.next_new += len(ids)
        m.docs.update({x: i for x in ids})
        if m.codec_gen == 0:
            m.codec_gen = 1
    elif kind == "upsert":
        m.docs.update({x: i for x in ids})
    elif kind == "delete":
        for x in ids:
            del m.docs[x]
    elif kind == "retrain" and m.docs:
        m.codec_gen += 1
    return m


def execute(store: Store, op: tuple, i: int, model: Model) -> int:
    """Perform ``op`` on the store as commit i; returns the commit number."""
    kind, ids = op
    if kind in ("add", "upsert"):
        new_codec = codec(1) if model.codec_gen == 0 else None
        res = store.add(ids, segment_arrays([(x, i) for x in ids]),
                        metadata=[{"v": i, "id": x} for x in ids], texts=[f"text {x}" for x in ids],
                        upsert=kind == "upsert", codec=new_codec)
    elif kind == "delete":
        res = store.delete(ids)
    elif kind == "compact":
        res = store.compact(merge_arrays)
    else:
        res = store.compact(lambda m: Merged(merge_arrays(m), codec(model.codec_gen + 1)))
    return res.commit


def states(seed: int, n: int) -> list[Model]:
    """Expected model after each commit 0..n."""
    out = [Model()]
    for i in range(1, n + 1):
        out.append(apply(out[-1], next_op(seed, i, out[-1]), i))
    return out


def check_snapshot(snap, model: Model) -> None:
    """Raise AssertionError unless the snapshot holds exactly the model's documents."""
    seen = {}
    for seg in snap.segments:
        off, vec = seg.arrays["doc_offsets"], seg.arrays["vectors"]
        for row in np.flatnonzero(seg.live):
            ext = seg.external_id(int(row))
            assert ext not in seen, f"{ext} live twice"
            version = model.docs.get(ext)
            assert version is not None, f"{ext} live in store but not in model"
            np.testing.assert_array_equal(np.asarray(vec[off[row]:off[row + 1]]),
                                          payload(ext, version), err_msg=ext)
            seen[ext] = int(seg.internal_ids[row])
    assert set(seen) == set(model.docs), (sorted(set(model.docs) - set(seen))[:5],
                                          sorted(set(seen) - set(model.docs))[:5])
    if seen:
        ids = list(seen)
        metas = snap.metadata([seen[x] for x in ids])
        assert [mm["v"] for mm in metas] == [model.docs[x] for x in ids]
        assert snap.texts([seen[ids[0]]]) == [f"text {ids[0]}"]
    if model.codec_gen:
        assert snap.codec is not None and float(snap.codec["centroids"][0, 0]) == model.codec_gen
    else:
        assert snap.codec is None


def run_child(path: str, seed: int, log: str, last: int) -> None:
    """Child process: continue the workload up to commit ``last``, logging each commit."""
    store = Store.open(path, lock_timeout=60)
    with store.snapshot() as snap:
        start = snap.commit
    model = states(seed, start)[-1]
    Path(log + ".ready").write_text(str(os.getpid()))  # the crash test times kills from here
    with open(log, "a") as fh:
        for i in range(start + 1, last + 1):
            op = next_op(seed, i, model)
            commit = execute(store, op, i, model)
            assert commit == i, (commit, i)
            model = apply(model, op, i)
            fh.write(f"{i}\n")
            fh.flush()
            os.fsync(fh.fileno())
    store.close()


def read_until(path: str, seed: int, last: int, hold: float = 0.0) -> int:
    """Reader loop: take snapshots until commit ``last`` is visible; every snapshot must equal
    the model of its commit exactly (also after holding it while the writer goes on)."""
    import time
    expected = states(seed, last)
    store = Store.open(path)
    checked = 0
    snap = store.snapshot()
    while True:
        check_snapshot(snap, expected[snap.commit])
        if hold:
            time.sleep(hold)
            check_snapshot(snap, expected[snap.commit])  # its folders may be gone by now
        checked += 1
        if snap.commit >= last:
            break
        new = snap.refresh()
        snap.close()
        snap = new
    snap.close()
    store.close()
    return checked


if __name__ == "__main__":
    if sys.argv[1] == "--read":
        print(read_until(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), 0.01))
    else:
        run_child(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
