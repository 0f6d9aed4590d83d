"""No function compiled with ISA flags can be bound by baseline code.

A weak (inline / template) symbol defined in a per-ISA object file (kernels/*_avx2.cpp,
*_avx512.cpp, *_neon.cpp) could be picked by the linker for every caller, so a baseline code
path would run AVX instructions on a CPU without them. The ISA files keep every helper in an
anonymous namespace and include no inline helper; this test reads their object files with
``nm`` and fails on any weak symbol they define."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ISA_SUFFIXES = ("_avx2.cpp.o", "_avx512.cpp.o", "_neon.cpp.o")


def sanitized(tree: Path) -> bool:
    """A GINGHAM_SANITIZE build tree (make test-asan): its instrumented objects carry the
    sanitizer runtime's weak references and are never linked into a wheel."""
    cache = tree / "CMakeCache.txt"
    return cache.is_file() and "GINGHAM_SANITIZE:BOOL=ON" in cache.read_text(errors="replace")


def isa_objects() -> list[Path]:
    found = ROOT.glob("build/*/CMakeFiles/gingham_core.dir/csrc/gingham/kernels/*.o")
    return sorted(p for p in found if p.name.endswith(ISA_SUFFIXES)
                  and not sanitized(p.parents[5]))


def test_isa_objects_define_no_weak_symbols():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm is not installed")
    objects = isa_objects()
    if not objects:
        pytest.skip("no ISA object files under build/ (the extension was not built here)")
    leaks = []
    for obj in objects:
        out = subprocess.run([nm, "-C", "--defined-only", str(obj)], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) == 3 and parts[1] in ("W", "V", "u"):
                leaks.append(f"{obj.name}: {parts[2]}")
    assert not leaks, "weak symbols defined in ISA files:\n" + "\n".join(leaks)
