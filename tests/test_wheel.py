"""The release artifacts (tools/build_wheel.sh -> dist/): what auditwheel and the metadata say,
what the sdist holds, and installs into fresh venvs that hold nothing but gingham and numpy.

Slow (a build, venvs, and for the sdist a compile): `make test-wheel`
(GINGHAM_TEST_WHEEL=1 pytest tests/test_wheel.py).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from wheel_util import (
    ROOT,
    artifacts,
    bare_env,
    fresh_venv,
    numpy_wheelhouse,
    opt_in,
    pip_install,
    version,
)

pytestmark = [pytest.mark.slow, opt_in,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the pipeline here builds Linux wheels")]
SMOKE = Path(__file__).with_name("installed_smoke.py")


@pytest.fixture(scope="module")
def wheel() -> Path:
    return artifacts()[0]


@pytest.fixture(scope="module")
def sdist() -> Path:
    return artifacts()[1]


def cpu_levels() -> set[str]:
    """SIMD levels this CPU can run, from /proc/cpuinfo (independent of gingham's cpuid)."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    levels = {"scalar"}
    if {"avx2", "fma", "f16c"} <= flags:
        levels.add("avx2")
        if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
            levels.add("avx512")
    if "asimd" in flags:
        levels.add("neon")
    return levels


def run_smoke(bin_dir: Path, env: dict, cwd: Path, what: str) -> dict:
    out = subprocess.run([str(bin_dir / "python"), str(SMOKE), what], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_auditwheel_reports_a_manylinux_tag_with_libgomp_bundled(wheel):
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                         capture_output=True, text=True, check=True).stdout
    tag = wheel.name.rsplit("-", 1)[1].removesuffix(".whl")
    assert tag.startswith("manylinux_2_") and f'platform tag: "{tag}"' in " ".join(out.split())
    names = zipfile.ZipFile(wheel).namelist()
    bundled = [n for n in names if n.startswith("gingham.libs/") and not n.endswith("/")]
    assert len(bundled) == 1 and Path(bundled[0]).name.startswith("libgomp-"), bundled


def test_wheel_metadata_requires_numpy_only(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(f"gingham-{version()}.dist-info/METADATA").decode())
        names = set(z.namelist())
    core = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert core == ["numpy>=1.23"]
    assert set(meta.get_all("Provides-Extra")) >= {"text", "server", "client", "dev"}
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.9"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert {"gingham/py.typed", "gingham/_core.pyi"} <= names


def test_sdist_holds_sources_and_no_build_outputs(sdist):
    with tarfile.open(sdist) as t:
        members = [m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name]
    binaries = [m for m in members
                if m.endswith((".so", ".pyd", ".dylib", ".dll", ".whl", ".o", ".a", ".pyc"))
                or m.split("/")[0] in ("build", "dist", ".venv", "wheelhouse", ".github")
                or "__pycache__" in m]
    assert binaries == []
    assert {"pyproject.toml", "CMakeLists.txt", "LICENSE", "README.md",
            "python/gingham/_core.pyi", "python/gingham/py.typed",
            "csrc/gingham/omp_compat.h"} <= set(members)


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory):
    """A fresh venv with the wheel and numpy installed with no compiler on PATH."""
    tmp = tmp_path_factory.mktemp("wheel_venv")
    house = numpy_wheelhouse(tmp / "house")
    bin_dir = fresh_venv(tmp / "venv")
    env = bare_env(bin_dir)
    pip_install(bin_dir, house, str(wheel), env=env)
    return bin_dir, env, tmp


def test_wheel_installs_numpy_and_nothing_else(wheel_venv):
    bin_dir, env, _ = wheel_venv
    out = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert {p["name"].lower() for p in json.loads(out)} - {"pip", "setuptools"} == \
        {"gingham", "numpy"}


def test_wheel_searches_without_a_compiler(wheel_venv):
    bin_dir, env, tmp = wheel_venv
    report = run_smoke(bin_dir, env, tmp, "search")
    assert report["gingham"].startswith(report["prefix"])  # the installed copy, not the tree
    assert report["exact_top"] == 17 and report["compressed_docs"] == 600
    help_text = subprocess.run([str(bin_dir / "gingham"), "--help"], env=env, cwd=tmp,
                               capture_output=True, text=True, check=True).stdout
    assert help_text.startswith("usage: gingham") and "search" in help_text


def test_wheel_holds_every_simd_level_this_cpu_runs(wheel_venv):
    bin_dir, env, tmp = wheel_venv
    expected = cpu_levels()
    for level in sorted(expected):
        report = run_smoke(bin_dir, dict(env, GINGHAM_SIMD_LEVEL=level), tmp, "simd")
        assert report["level"] == level
        assert set(report["supported"]) == expected


def test_sdist_installs_and_searches(sdist, tmp_path):
    """The sdist builds in a fresh venv (a compiler stays on PATH; build requirements come
    from the local wheelhouse, with build isolation as a user's pip would do it)."""
    house = numpy_wheelhouse(tmp_path / "house", "scikit-build-core>=0.10", "pybind11>=2.12",
                             "cmake>=3.18", "ninja")
    bin_dir = fresh_venv(tmp_path / "venv")
    env = bare_env(bin_dir)
    env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    pip_install(bin_dir, house, str(sdist), env=env)
    report = run_smoke(bin_dir, env, tmp_path, "search")
    assert report["gingham"].startswith(report["prefix"])
    assert report["exact_top"] == 17 and report["compressed_docs"] == 600
    subprocess.run([str(bin_dir / "gingham"), "--help"], env=env, check=True,
                   capture_output=True)
    assert ROOT not in Path(report["gingham"]).parents
