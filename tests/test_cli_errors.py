"""The CLI on a corrupt or locked index: one line on stderr, exit status 2, no traceback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gingham
from gingham.cli.main import main
from gingham.storage.lock import WriterLock

FIXTURES = Path(__file__).parent / "fixtures"
SRC = str(Path(gingham.__file__).resolve().parent.parent)


@pytest.fixture
def index(tmp_path) -> str:
    """A two-document fp32 index made through the public Index API; returns its path."""
    rng = np.random.default_rng(0)
    path = str(tmp_path / "ix")
    with gingham.Index.create(path, dim=8, storage="fp32") as idx:
        idx.add(["a", "b"], [rng.standard_normal((3, 8)), rng.standard_normal((2, 8))])
    return path


def _segment_file(index: str, name: str) -> str:
    (folder,) = (Path(index) / "segments").iterdir()
    return str(folder / name)


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize("command", ["info", "search", "verify"])
def test_truncated_segment_file(index, capsys, command):
    path = _segment_file(index, "tokens.npy")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 8)
    rel = os.path.relpath(path, index)
    argv = [command, index] + (["query"] if command == "search" else [])
    assert main(argv) == 2
    assert _one_line(capsys) == (f"gingham {command}: error: index at {index} is corrupt: "
                                 f"{rel}: size is 280 bytes, manifest says 288")


def test_flipped_byte_found_by_verify(index, capsys):
    path = _segment_file(index, "tokens.npy")
    with open(path, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\x00\x00\x80\x3f")  # a finite float32 (1.0): only the checksum can tell
    assert main(["verify", index]) == 2
    assert _one_line(capsys) == (f"gingham verify: error: index at {index} is corrupt: "
                                 f"{os.path.relpath(path, index)}: sha256 differs from manifest")


@pytest.mark.parametrize("command", ["info", "verify"])
def test_damaged_catalog(index, capsys, command):
    with open(os.path.join(index, "catalog.sqlite"), "r+b") as f:
        f.write(b"not a database" * 8)
    assert main([command, index]) == 2
    assert _one_line(capsys) == (f"gingham {command}: error: index at {index} is corrupt: "
                                 "catalog.sqlite: SQLite: file is not a database")


def _old_format_copy(tmp_path) -> str:
    """A format-1 index: opening it upgrades it in place under the writer lock."""
    path = str(tmp_path / "v1")
    shutil.copytree(FIXTURES / "index-v1-fp32", path)
    return path


def test_locked_in_this_process(tmp_path, capsys):
    path = _old_format_copy(tmp_path)
    lock = WriterLock(Path(path))
    lock.acquire(0)
    try:
        assert main(["info", path, "--lock-timeout", "0"]) == 2
        assert _one_line(capsys) == (f"gingham info: error: index at {path} is locked by "
                                     "another writer")
    finally:
        lock.release()
    assert main(["info", path, "--lock-timeout", "0"]) == 0  # upgraded once the lock is free
    assert f"index {path}: 5 documents" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["verify"], ["search", "QUERY"]])
def test_lock_timeout_of_verify_and_search(tmp_path, capsys, command):
    path = _old_format_copy(tmp_path)
    argv = [command[0], path, *command[1:], "--lock-timeout", "0"]
    lock = WriterLock(Path(path))
    lock.acquire(0)
    try:
        assert main(argv) == 2
        assert _one_line(capsys) == (f"gingham {command[0]}: error: index at {path} is locked "
                                     "by another writer")
    finally:
        lock.release()


def test_locked_by_another_process(tmp_path):
    path = _old_format_copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": SRC}
    hold = ("import sys; from pathlib import Path; from gingham.storage.lock import WriterLock; "
            "WriterLock(Path(sys.argv[1])).acquire(0); print('held', flush=True); "
            "sys.stdin.read()")  # holds the lock until the test closes its stdin
    with subprocess.Popen([sys.executable, "-c", hold, path], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=env) as holder:
        try:
            assert holder.stdout.readline() == "held\n"
            proc = subprocess.run([sys.executable, "-m", "gingham", "info", path,
                                   "--lock-timeout", "0"], capture_output=True, text=True,
                                  env=env, timeout=120)
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"gingham info: error: index at {path} is locked by another writer\n"


def test_not_an_index_and_missing_index(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    assert _one_line(capsys) == (f"gingham info: error: {str(tmp_path)!r} is not a gingham "
                                 "index (no catalog.sqlite)")
    missing = str(tmp_path / "missing")
    assert main(["verify", missing]) == 2
    assert _one_line(capsys) == f"gingham verify: error: no gingham index at {missing!r}"
