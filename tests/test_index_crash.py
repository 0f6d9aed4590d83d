"""Crash safety through gingham.Index: a child process adds, upserts, deletes and compacts in a
loop and is SIGKILLed at random moments. After every kill the index opens, verify() passes, and
it holds exactly the documents (ids, the operation that wrote each, their tokens) of the last
logged operation or of the one in flight -- 0 lost, 0 partial batches. The default run makes
N_KILLS kill points; ``-m slow`` makes N_KILLS_SLOW. (The store-level twin with retraining is
tests/test_storage_crash.py.)"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import _index_workload as wl
import gingham

N_KILLS = 30
N_KILLS_SLOW = 220


def _last_logged(log: Path) -> int:
    return int(log.read_text().split()[-1]) if log.exists() and log.read_text().split() else 0


def _check_state(path: Path, logged: int) -> int:
    """Open, verify, and return how many operations the index holds (logged or logged + 1)."""
    index = gingham.Index.open(path)
    try:
        index.verify()
        ids = sorted(index.ids())
        state = {d["id"]: d["metadata"]["op"] for d in index.documents(ids)} if ids else {}
        if state == wl.expected_state(logged):
            held = logged
        else:
            assert state == wl.expected_state(logged + 1), f"state after {logged} ops is neither"
            held = logged + 1
        for probe in ids[::max(1, len(ids) // 4)]:  # documents are whole and searchable
            tokens = wl.embedding(probe, state[probe])
            np.testing.assert_array_equal(index.tokens(probe).shape, tokens.shape)
            hits = index.search(tokens, k=len(ids), mode="exact")
            assert len(hits) == len(ids) and {h.id for h in hits} == set(ids)
        return held
    finally:
        index.close()


def test_sigkill_during_writes_loses_nothing(tmp_path):
    run_kills(tmp_path, N_KILLS, max_pause=0.5)


@pytest.mark.slow
def test_sigkill_at_scale(tmp_path):
    run_kills(tmp_path, N_KILLS_SLOW, max_pause=0.3)


def run_kills(tmp_path: Path, n_kills: int, max_pause: float) -> None:
    """n_kills SIGKILLs of the workload child, each after a random pause in [0, max_pause] s
    once it has opened the index; the state is checked after each."""
    path, log = tmp_path / "idx", tmp_path / "ops.log"
    gingham.Index.create(path, dim=wl.DIM, nbits=2, n_centroids=8).close()
    rng = random.Random(7)
    in_flight_kills = 0
    # the child imports the same gingham as this process (and the workload module)
    paths = [str(Path(wl.__file__).parent), str(Path(gingham.__file__).parents[1])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    kinds_hit = set()
    for kill in range(n_kills):
        before = _last_logged(log)
        child = subprocess.Popen([sys.executable, wl.__file__, str(path), str(log), "100000"],
                                 env=env)
        ready = Path(str(log) + ".ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ready.exists(), "workload did not start"
        ready.unlink()
        if kill % 2:
            # every other kill waits for one more logged operation first, so the loop makes
            # progress however slow the machine is (the others can hit the first one in flight)
            deadline = time.monotonic() + 120
            while (_last_logged(log) == before and child.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.005)
            assert _last_logged(log) > before, "workload made no progress"
        time.sleep(rng.uniform(0.0, max_pause))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL, "child died before it was killed"
        logged = _last_logged(log)
        in_flight_kills += _check_state(path, logged) == logged + 1
        kinds_hit.add(wl.operation(logged + 1, wl.expected_ids(logged))[0])
    if n_kills >= 200:  # enough kills that each kind of operation was surely hit in flight
        assert kinds_hit == {"add", "upsert", "delete", "compact"}, kinds_hit
    print(f"{n_kills} kills, {_last_logged(log)} operations, {in_flight_kills} killed between "
          f"commit and log; operations in flight at a kill: {sorted(kinds_hit)}")
