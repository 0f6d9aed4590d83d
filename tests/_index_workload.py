"""Replayable write workload through gingham.Index for the crash test.

Operation i (1-based) is a pure function of i and the live ids: adds, upserts, deletes and
compactions. ``expected_state(n)`` replays the first n operations without touching disk (id ->
number of the operation that last wrote it), so any process can tell which state a given
number of completed operations must leave; a document's tokens are ``embedding(id, op)``.

Run as a script: ``python _index_workload.py INDEX LOG N_OPS`` continues from the last logged
operation, and after each operation returns, appends its number to LOG and fsyncs it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

DIM = 16


def embedding(doc_id: str, op: int) -> np.ndarray:
    """Token vectors of one document as written by operation ``op``, (1..8, DIM) float32."""
    seed = int.from_bytes(f"{doc_id}@{op}".encode(), "little") % (2**32)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((int(rng.integers(1, 9)), DIM)).astype(np.float32)


def operation(i: int, live: list[str]) -> tuple[str, list[str]]:
    """Operation i given the live ids: ("add" | "upsert" | "delete" | "compact", ids). An
    upsert replaces two live documents and adds one new one, in one commit."""
    if i % 7 == 0:
        return "compact", []
    if i % 5 == 0 and len(live) > 2:
        return "upsert", sorted(live)[-2:] + [f"doc-{i}-0"]
    if i % 3 == 0 and len(live) > 2:
        return "delete", sorted(live)[:2]
    return "add", [f"doc-{i}-{j}" for j in range(3)]


def expected_state(n_ops: int) -> dict[str, int]:
    """Live id -> the operation that last wrote it, after the first ``n_ops`` operations."""
    live: dict[str, int] = {}
    for i in range(1, n_ops + 1):
        kind, ids = operation(i, list(live))
        if kind in ("add", "upsert"):
            live.update((x, i) for x in ids)
        elif kind == "delete":
            for x in ids:
                del live[x]
    return live


def expected_ids(n_ops: int) -> list[str]:
    """Sorted live ids after the first ``n_ops`` operations, replayed without disk."""
    return sorted(expected_state(n_ops))


def apply(index, i: int) -> None:
    """Perform operation i on ``index`` (a gingham.Index)."""
    kind, ids = operation(i, index.ids())
    if kind in ("add", "upsert"):
        index.add(ids, [embedding(x, i) for x in ids], metadata=[{"op": i}] * len(ids),
                  upsert=kind == "upsert")
    elif kind == "delete":
        index.delete(ids)
    else:
        index.compact()


def main(path: str, log: str, n_ops: int) -> None:
    """Script entry: continue the workload on ``path`` up to ``n_ops``, logging each."""
    import gingham

    done = int(Path(log).read_text().split()[-1]) if Path(log).exists() else 0
    index = gingham.Index.open(path)
    # killed between a commit and its log line: the operation is applied, log it now
    applied = expected_state(done + 1)
    if _state(index) == applied and applied != expected_state(done):
        done += 1
        _log(log, done)
    Path(log + ".ready").touch()
    for i in range(done + 1, n_ops + 1):
        apply(index, i)
        _log(log, i)


def _state(index) -> dict[str, int]:
    ids = index.ids()
    return {doc["id"]: doc["metadata"]["op"] for doc in index.documents(ids)} if ids else {}


def _log(log: str, i: int) -> None:
    with open(log, "a") as f:
        f.write(f"{i}\n")
        f.flush()
        os.fsync(f.fileno())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
