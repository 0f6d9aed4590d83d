"""Concurrency: a writer process adds, upserts, deletes, compacts and retrains while reader
threads and a reader process keep taking snapshots. Every snapshot must equal exactly the
model state of the commit it reports, also after being held while the writer moved on (and
removed the folders it had mapped)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import _storage_workload as wl
from gingham.storage import Store

SEED = 31


def test_readers_see_only_whole_commits(tmp_path):
    _run(tmp_path, 60)


@pytest.mark.slow
def test_readers_see_only_whole_commits_long(tmp_path):
    _run(tmp_path, 300)


def _run(tmp_path, LAST):
    path = tmp_path / "idx"
    Store.create(path, {"dim": wl.DIM}).close()
    workload = str(Path(wl.__file__))
    reader = subprocess.Popen([sys.executable, workload, "--read", str(path), str(SEED),
                               str(LAST)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    writer = subprocess.Popen([sys.executable, workload, str(path), str(SEED),
                               str(tmp_path / "log"), str(LAST)], env=dict(os.environ))
    errors, counts = [], []

    def read(hold):
        try:
            counts.append(wl.read_until(str(path), SEED, LAST, hold))
        except BaseException as exc:  # reported below with its traceback
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(h,)) for h in (0.0, 0.02, 0.05)]
    for t in threads:
        t.start()
    assert writer.wait(timeout=300) == 0
    for t in threads:
        t.join(timeout=300)
    out, _ = reader.communicate(timeout=300)
    if errors:
        raise errors[0]
    assert reader.returncode == 0
    assert int(out.split()[-1]) > 1 and all(c > 1 for c in counts), (out, counts)
    print(f"\n{LAST} commits; snapshots checked: process {out.split()[-1]}, threads {counts}")
    store = Store.open(path)
    assert store.verify()["commit"] == LAST
    store.close()
