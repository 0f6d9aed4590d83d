"""Crash safety through gingham.Index: a child process adds, deletes and compacts in a loop and
is SIGKILLed at random moments. After every kill the index opens, verify() passes, and it holds
exactly the documents of the last logged operation or of the one in flight -- 0 lost, 0 partial.
(The store-level twin with upserts and retraining is tests/test_storage_crash.py.)"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import _index_workload as wl
import gingham

N_KILLS = 30


def _last_logged(log: Path) -> int:
    return int(log.read_text().split()[-1]) if log.exists() and log.read_text().split() else 0


def _check_state(path: Path, logged: int) -> int:
    """Open, verify, and return how many operations the index holds (logged or logged + 1)."""
    index = gingham.Index.open(path)
    try:
        index.verify()
        ids = sorted(index.ids())
        if ids == wl.expected_ids(logged):
            held = logged
        else:
            assert ids == wl.expected_ids(logged + 1), f"state after {logged} ops is neither"
            held = logged + 1
        if ids:  # every document is searchable and whole: its own tokens find it first
            probe = ids[len(ids) // 2]
            hits = index.search(wl.embedding(probe), k=len(ids), mode="exact")
            assert len(hits) == len(ids) and {h.id for h in hits} == set(ids)
            assert index.get(probe)["metadata"]["op"] == int(probe.split("-")[1])
            np.testing.assert_equal(index.tokens(probe).shape, wl.embedding(probe).shape)
        return held
    finally:
        index.close()


def test_sigkill_during_writes_loses_nothing(tmp_path):
    path, log = tmp_path / "idx", tmp_path / "ops.log"
    gingham.Index.create(path, dim=wl.DIM, nbits=2, n_centroids=8).close()
    rng = random.Random(7)
    in_flight_kills = 0
    env = dict(os.environ, PYTHONPATH=str(Path(wl.__file__).parent))
    for _ in range(N_KILLS):
        child = subprocess.Popen([sys.executable, wl.__file__, str(path), str(log), "100000"],
                                 env=env)
        ready = Path(str(log) + ".ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ready.exists(), "workload did not start"
        ready.unlink()
        time.sleep(rng.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL, "child died before it was killed"
        logged = _last_logged(log)
        in_flight_kills += _check_state(path, logged) == logged + 1
    assert _last_logged(log) > N_KILLS  # the loop made progress between kills
    print(f"{N_KILLS} kills, {_last_logged(log)} operations, {in_flight_kills} killed between "
          "commit and log")
