"""The core built without OpenMP (-DGINGHAM_OPENMP=OFF, what a compiler without OpenMP gets):
it links no OpenMP runtime, reports one thread, and the kernel tests pass against it.

Slow (a second build in build/serial): `make test-wheel`
(GINGHAM_TEST_WHEEL=1 pytest tests/test_serial_build.py).
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wheel_util import ROOT, opt_in

pytestmark = [pytest.mark.slow, opt_in,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="readelf and the build folder layout are Linux's")]
KERNEL_TESTS = ["test_maxsim.py", "test_plaid.py", "test_codec.py", "test_kmeans.py",
                "test_int8.py", "test_ivf.py", "test_core_safety.py"]
# Asserts get_num_threads() == 2 after set_num_threads(2): a serial core reports 1 by design.
THREAD_ROUND_TRIP = "test_thread_count_does_not_change_scores"


@pytest.fixture(scope="module")
def serial_package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation",
                    "--no-deps", "-Ccmake.define.GINGHAM_OPENMP=OFF",
                    "-Cbuild-dir=build/serial", "--wheel-dir", str(out / "dist"), "."],
                   cwd=ROOT, check=True, timeout=1800)
    (wheel,) = (out / "dist").glob("gingham-*.whl")
    zipfile.ZipFile(wheel).extractall(out / "site")
    return out / "site"


def test_serial_core_links_no_openmp_and_reports_one_thread(serial_package):
    (so,) = (serial_package / "gingham").glob("_core*.so")
    needed = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True,
                            check=True).stdout
    assert "omp" not in needed.lower()
    code = ("import gingham; a = gingham.get_num_threads(); gingham.set_num_threads(4); "
            "print(gingham.__file__, a, gingham.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(serial_package)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(serial_package)) and out[1:] == ["1", "1"]


def test_kernel_tests_pass_on_the_serial_core(serial_package):
    tests = [str(ROOT / "tests" / name) for name in KERNEL_TESTS]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-k", f"not {THREAD_ROUND_TRIP}", *tests],
                         env={"PYTHONPATH": str(serial_package), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
