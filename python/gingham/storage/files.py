"""Write-once folders of .npy arrays with a manifest, and the checks that load them back.

A folder (a segment or a codec version) is written into ``tmp/`` under a random name, every
file and the folder itself are fsynced, and only then is it renamed to its final place and the
parent folder fsynced. The manifest records for each array its file, dtype, shape, byte size and
sha256; the catalog records the sha256 of the manifest itself, so a damaged manifest is caught
before any array is mapped.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import CorruptionError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_NAME = re.compile(r"^_?[a-z][a-z0-9_]{0,62}$")
_CHUNK = 1 << 20
#: Files of at most this size are checksummed on every open (reading them costs about what
#: mapping them does); larger ones get size + header checks, and their sha256 is left to
#: ``verify()`` / ``open(check="full")``.
SMALL_FILE_BYTES = 1 << 20


def fsync_dir(path: Path) -> None:
    """fsync a folder so that entries created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingWriter:
    """File-like sink that hashes and counts what passes through to a real file."""

    def __init__(self, fh):
        self._fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        self.sha.update(mv)
        self.size += mv.nbytes
        return self._fh.write(mv)


def check_array_name(name: str, *, reserved_ok: bool = False) -> None:
    """Array names become file names: lower-case ``[a-z][a-z0-9_]*``; a leading ``_`` is kept
    for arrays the store itself writes."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"array name {name!r} must match [a-z][a-z0-9_]* (at most 63 chars)")
    if name.startswith("_") and not reserved_ok:
        raise ValueError(f"array name {name!r}: names starting with '_' are reserved")


def _as_storable(name: str, arr) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise TypeError(f"array {name!r} must have a bool/int/uint/float dtype; got {arr.dtype}")
    return np.ascontiguousarray(arr)


def write_array_folder(tmp_root: Path, arrays: Mapping[str, np.ndarray], kind: str,
                       *, reserved_ok: bool = False) -> tuple[Path, bytes]:
    """Write ``arrays`` as ``<name>.npy`` files plus ``manifest.json`` into a new folder under
    ``tmp_root``; fsync files and folder. Returns (folder, manifest bytes)."""
    if not arrays:
        raise ValueError("arrays must be a non-empty dict of name -> numpy array")
    checked = {}
    for name, arr in arrays.items():
        check_array_name(name, reserved_ok=reserved_ok)
        checked[name] = _as_storable(name, arr)
    folder = tmp_root / f"{kind}-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    entries = {}
    for name, arr in sorted(checked.items()):
        file = f"{name}.npy"
        with open(folder / file, "wb") as fh:
            sink = _HashingWriter(fh)
            np.lib.format.write_array(sink, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        entries[name] = {"file": file, "dtype": arr.dtype.str, "shape": list(arr.shape),
                         "bytes": sink.size, "sha256": sink.sha.hexdigest()}
    manifest = json.dumps({"format": MANIFEST_FORMAT, "kind": kind, "arrays": entries},
                          indent=1, sort_keys=True).encode()
    with open(folder / MANIFEST, "wb") as fh:
        fh.write(manifest)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(folder)
    return folder, manifest


def publish_folder(tmp_folder: Path, final: Path) -> None:
    """Rename a finished temporary folder into place and make the rename durable."""
    if final.exists():  # left by a writer that crashed before its commit: never referenced
        shutil.rmtree(final)
    os.rename(tmp_folder, final)
    fsync_dir(final.parent)
    fsync_dir(tmp_folder.parent)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def read_manifest(folder: Path, expected_sha256: str) -> dict:
    """Read and check ``folder/manifest.json`` against the sha256 the catalog recorded."""
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptionError(path, f"cannot read: {exc}") from exc
    if sha256_bytes(data) != expected_sha256:
        raise CorruptionError(path, "sha256 differs from the one recorded in the catalog")
    try:
        manifest = json.loads(data)
        for name, entry in manifest["arrays"].items():
            _check_entry(name, entry)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CorruptionError(path, f"malformed manifest: {exc!r}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise CorruptionError(path, f"unknown manifest format {manifest.get('format')!r}")
    return manifest


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DTYPE = re.compile(r"^(\|[biu]1|[<>][iuf](2|4|8|16))$")


def _check_entry(name, entry) -> None:
    """ValueError/TypeError unless a manifest entry is what ``write_array_folder`` writes: the
    file is ``<name>.npy`` in the folder itself, a numeric dtype, a shape of non-negative ints
    and a byte size that fits it."""
    if not isinstance(name, str) or not _NAME.match(name) or entry["file"] != f"{name}.npy":
        raise ValueError(f"array {name!r}: file {entry.get('file')!r} is not <name>.npy")
    # matched before numpy parses it: np.dtype evaluates parts of a string ("01f4" raises
    # SyntaxError) and accepts far more than write_array_folder ever records
    if not isinstance(entry["dtype"], str) or not _DTYPE.match(entry["dtype"]):
        raise ValueError(f"array {name!r}: dtype {entry['dtype']!r} is not a numeric dtype")
    dtype = np.dtype(entry["dtype"])
    shape, n_bytes = entry["shape"], entry["bytes"]
    if (not isinstance(shape, list) or len(shape) > 32
            or not all(type(s) is int and 0 <= s < 1 << 62 for s in shape)
            or type(n_bytes) is not int or not 0 <= n_bytes < 1 << 62):
        raise ValueError(f"array {name!r}: shape {shape!r} / bytes {n_bytes!r}")
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > n_bytes:
        raise ValueError(f"array {name!r}: {n_bytes} bytes cannot hold shape {shape}")
    if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
        raise ValueError(f"array {name!r}: sha256 {entry['sha256']!r}")


# numpy parses .npy headers with ast.literal_eval, and CPython before 3.12 keeps the AST
# builder's recursion counter per interpreter, not per thread: two threads opening segments at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (CPython
# gh-106905). Header reads are microseconds, so they are serialized.
_NPY_HEADER_LOCK = threading.Lock()


def _read_header(path: Path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header; CorruptionError if it is not a plain
    C-order numeric array header."""
    with open(path, "rb") as fh, _NPY_HEADER_LOCK:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        offset = fh.tell()
    if fortran or dtype.hasobject or dtype.kind not in "biuf":
        raise ValueError(f"header describes {'Fortran-order ' if fortran else ''}{dtype}")
    return shape, dtype, offset


def load_array(folder: Path, entry: dict, *, mmap: bool = True) -> np.ndarray:
    """Open one array of a manifest read-only (memory-mapped unless it is empty), checking the
    file size, the .npy header and dtype/shape against the manifest before any data is mapped
    or read (a damaged header can never make it allocate or map what the manifest does not
    say). Reads no array data when mapping."""
    path = folder / entry["file"]
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptionError(path, f"cannot stat: {exc}") from exc
    if size != int(entry["bytes"]):
        raise CorruptionError(path, f"size is {size} bytes, manifest says {entry['bytes']}")
    shape = tuple(int(s) for s in entry["shape"])
    try:
        got_shape, dtype, offset = _read_header(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError/SyntaxError on bad headers
        raise CorruptionError(path, f"unreadable .npy header: {exc}") from exc
    if dtype.str != entry["dtype"] or got_shape != shape:
        raise CorruptionError(path, f"dtype/shape ({dtype.str}, {got_shape}) differ from "
                                    f"manifest ({entry['dtype']}, {shape})")
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + n_bytes != size:
        raise CorruptionError(path, f"header ends at byte {offset}: {n_bytes} data bytes do "
                                    f"not fill the {size}-byte file")
    if n_bytes == 0 or not mmap:
        with open(path, "rb") as fh:
            fh.seek(offset)
            arr = np.frombuffer(fh.read(n_bytes), dtype=dtype).reshape(shape)
    else:
        arr = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return arr


def checked_at_open(name: str, entry: dict) -> bool:
    """Whether a plain open checks this array's sha256: the store's own arrays (names starting
    with ``_``: the id maps) always, every other file when it is at most SMALL_FILE_BYTES."""
    return name.startswith("_") or int(entry["bytes"]) <= SMALL_FILE_BYTES


def check_sha256(folder: Path, entry: dict) -> None:
    """CorruptionError naming the file unless its sha256 is the manifest's."""
    path = folder / entry["file"]
    try:
        digest = sha256_file(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptionError(path, f"cannot read: {exc}") from exc
    if digest != entry["sha256"]:
        raise CorruptionError(path, "sha256 differs from manifest")


def check_folder(folder: Path, manifest: dict) -> None:
    """Full check of a published folder: every file's sha256 and header; no stray files."""
    names = {MANIFEST}
    for entry in manifest["arrays"].values():
        names.add(entry["file"])
        load_array(folder, entry)
        check_sha256(folder, entry)
    stray = sorted(set(os.listdir(folder)) - names)
    if stray:
        raise CorruptionError(folder / stray[0], "file not listed in the manifest")
