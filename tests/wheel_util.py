"""Helpers of the wheel tests: the built artifacts in dist/ and fresh virtual environments."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
COMPILERS = ("cc", "c++", "gcc", "g++", "clang", "clang++")
# The artifact tests build wheels and compile the sdist (minutes): opt in with
# GINGHAM_TEST_WHEEL=1, as `make test-wheel` does.
opt_in = pytest.mark.skipif(os.environ.get("GINGHAM_TEST_WHEEL") != "1",
                            reason="builds and installs artifacts: GINGHAM_TEST_WHEEL=1 "
                                   "(make test-wheel)")


def version() -> str:
    text = (ROOT / "python" / "gingham" / "_version.py").read_text()
    return re.search(r'__version__ = "(.+)"', text)[1]


def artifacts() -> tuple[Path, Path]:
    """(repaired wheel, sdist) in dist/, built by tools/build_wheel.sh when either is missing."""
    v = version()
    wheels = sorted(DIST.glob(f"gingham-{v}-*manylinux*.whl"))
    sdist = DIST / f"gingham-{v}.tar.gz"
    if not wheels or not sdist.exists():
        env = dict(os.environ, PYTHON=sys.executable)
        subprocess.run(["bash", str(ROOT / "tools" / "build_wheel.sh")], env=env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        wheels = sorted(DIST.glob(f"gingham-{v}-*manylinux*.whl"))
    assert len(wheels) == 1, f"expected one repaired wheel in {DIST}; found {wheels}"
    return wheels[0], sdist


def numpy_wheelhouse(dest: Path, *extra: str) -> Path:
    """dest/ holding binary wheels of numpy (and `extra` requirements), from the pip cache or
    the configured index: the only packages a fresh venv may install besides gingham."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--dest", str(dest),
                    "numpy", *extra], check=True)
    return dest


def fresh_venv(path: Path) -> Path:
    """A new venv with pip and nothing else; returns its bin/ folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / ("Scripts" if os.name == "nt" else "bin")


def bare_env(bin_dir: Path) -> dict[str, str]:
    """Environment whose PATH is the venv's bin/ only: no compiler can be found."""
    for name in COMPILERS:
        assert shutil.which(name, path=str(bin_dir)) is None, f"{name} found in {bin_dir}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_", "GINGHAM_")) and
           k not in ("CC", "CXX")}
    # no pip config file either: nothing but the --find-links folder can be installed
    env.update(PATH=str(bin_dir), PIP_NO_INPUT="1", PIP_CONFIG_FILE=os.devnull)
    return env


def pip_install(bin_dir: Path, wheelhouse: Path, *requirements: str,
                env: dict[str, str] | None = None) -> None:
    """pip install with no index: only what wheelhouse/ (and the requirements' paths) hold."""
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--find-links", str(wheelhouse), *requirements],
                   check=True, env=env, timeout=1800)
