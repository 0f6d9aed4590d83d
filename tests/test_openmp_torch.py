"""torch and gingham in one process: kernels from both, in turn and from two threads at once,
give numpy's results and finish (docs/packaging.md, "OpenMP next to torch").

The source build links libgomp.so.1 and shares whichever copy is loaded first with torch; the
repaired wheel brings its own libgomp under a hashed name, so the process runs two independent
OpenMP runtimes. Both layouts are checked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import gingham
from wheel_util import artifacts, opt_in

pytest.importorskip("torch")
CHECK = Path(__file__).with_name("openmp_torch_check.py")
SOURCE_BUILD = str(Path(gingham.__file__).parents[1])


def run_check(pythonpath: str, order: str, cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    try:
        out = subprocess.run([sys.executable, str(CHECK), order], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"torch + gingham ({order}) did not finish in 300 s")
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    assert report["gingham"].startswith(pythonpath) and report["threads"] == [2, 2]
    return report


@pytest.mark.parametrize("order", ["gingham-first",
                                   pytest.param("torch-first", marks=pytest.mark.slow)])
def test_source_build_next_to_torch(order, tmp_path):
    report = run_check(SOURCE_BUILD, order, tmp_path)
    assert len(report["runtimes"]) >= 1


@pytest.mark.slow
@opt_in
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the repaired wheel is Linux's")
@pytest.mark.parametrize("order", ["gingham-first", "torch-first"])
def test_repaired_wheel_next_to_torch(order, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(artifacts()[0]).extractall(site)
    report = run_check(str(site), order, tmp_path)
    ours = [p for p in report["runtimes"] if p.startswith(str(site / "gingham.libs"))]
    assert len(ours) == 1 and Path(ours[0]).name.startswith("libgomp-")
    assert len(report["runtimes"]) == 2, report["runtimes"]  # torch keeps its own runtime
