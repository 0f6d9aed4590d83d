"""The text layer's saved files, checked when read back.

A saved JSON file carries the sha256 of its own content (``"sha256"``, over the canonical
dump of every other key) and the sha256 of the files saved beside it (``"files"``), so a
damaged byte anywhere in a saved encoder or BM25 folder is a ``CorruptionError`` naming the
file, never a different model or a wrong score. Files written before these digests existed
(no ``"sha256"`` key) are read as written, their fields still checked one by one.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..storage.errors import CorruptionError, FormatVersionError
from ..storage.files import sha256_bytes, sha256_file

DIGEST_KEY = "sha256"
FILES_KEY = "files"
VERSION_KEY = "format_version"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")

# A field check: (predicate on the parsed value, what was expected, for the error).
Field = tuple[Callable[[Any], bool], str]


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def write_json(path: str | os.PathLike, obj: Mapping[str, Any]) -> None:
    """Write ``obj`` (a JSON object without a ``"sha256"`` key) to ``path`` atomically, with
    the digest of its content added."""
    if DIGEST_KEY in obj:
        raise ValueError(f"obj must not hold a {DIGEST_KEY!r} key: it is the digest written here")
    body = dict(obj)
    body[DIGEST_KEY] = sha256_bytes(_canonical(obj))
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, ensure_ascii=False, indent=1, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: str | os.PathLike, fields: Mapping[str, Field],
              may_lack: Iterable[str] = (), lists_files: bool = True,
              newest_version: int | None = None) -> dict:
    """The JSON object in ``path``, every key of ``fields`` present (but those in ``may_lack``)
    and passing its check, no other key but the digests. With a ``"sha256"`` key, the content
    must match it and, when ``lists_files``, ``"files"`` ({relative name: sha256}) must be
    present; the digest key is dropped from the result. A ``"format_version"`` above
    ``newest_version`` (an intact file written by a newer gingham) raises FormatVersionError
    saying to upgrade. Raises CorruptionError(path, reason) for anything else (missing,
    unreadable, not UTF-8, not JSON, a damaged value)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise CorruptionError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptionError(path, f"not a JSON file ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CorruptionError(path, f"expected a JSON object; got {type(obj).__name__}")
    digest = obj.pop(DIGEST_KEY, None)
    allowed = set(fields)
    if digest is not None:
        if not isinstance(digest, str) or sha256_bytes(_canonical(obj)) != digest:
            raise CorruptionError(path, f"content does not match its {DIGEST_KEY!r}")
        if lists_files:
            allowed.add(FILES_KEY)
        if lists_files and not is_file_digests(obj.get(FILES_KEY)):
            raise CorruptionError(path, f"{FILES_KEY!r}: expected {{file name: sha256}}")
    _check_not_newer(path, obj.get(VERSION_KEY), newest_version)
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise CorruptionError(path, f"unexpected keys {unknown[:5]}")
    for key, (check, expected) in fields.items():
        if key not in obj:
            if key in may_lack:
                continue
            raise CorruptionError(path, f"missing key {key!r}")
        if not check(obj[key]):
            raise CorruptionError(path, f"{key!r}: expected {expected}; got {obj[key]!r:.80}")
    return obj


def _check_not_newer(path: str | os.PathLike, version: Any, newest: int | None) -> None:
    # before the key checks: a newer format may well add keys this code does not know
    if newest is not None and INT[0](version) and version > newest:
        raise FormatVersionError(
            f"{path} has format version {version}; this gingham reads versions up to {newest}. "
            "Upgrade gingham to read it (or, if no newer gingham wrote it, the file is damaged).",
            version)


def is_file_digests(files: Any) -> bool:
    """True for {relative file name: lowercase hex sha256}, names without '..'."""
    return isinstance(files, dict) and all(
        isinstance(n, str) and _FILE_NAME.match(n) and ".." not in n
        and isinstance(d, str) and _HEX64.match(d) for n, d in files.items())


def file_digests(folder: str | os.PathLike, names: Iterable[str]) -> dict[str, str]:
    """{name: sha256 of folder/name} for ``names`` (relative, '/'-separated)."""
    return {n: sha256_file(os.path.join(folder, n)) for n in names}


def check_files(folder: str | os.PathLike, saved: Mapping[str, Any], needed: Iterable[str],
                source: str | os.PathLike) -> None:
    """Before any of ``needed`` is read: each is listed in ``saved["files"]`` of the JSON file
    ``source`` and matches its sha256. A file read without a digest (``saved`` from a file
    written before digests existed) is not checked."""
    files = saved.get(FILES_KEY)
    if files is None:
        return
    for name in needed:
        path = os.path.join(folder, name)
        if name not in files:
            raise CorruptionError(source, f"{FILES_KEY!r} does not list {name}")
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise CorruptionError(path, f"cannot be read ({exc.strerror or exc})") from None
        if digest != files[name]:
            raise CorruptionError(path, f"sha256 does not match {os.path.basename(source)}")


def load_matrix(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """A finite float32 array of ``ndim`` dimensions from the .npy file ``path``
    (CorruptionError naming it otherwise)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptionError(path, f"not a readable .npy array ({exc})") from None
    if arr.ndim != ndim or arr.dtype != np.float32 or not np.isfinite(arr).all():
        raise CorruptionError(path, f"expected a finite float32 array of {ndim} dimensions; "
                              f"got {arr.dtype} {arr.shape}")
    return arr


# ---------------------------------------------------------------------- field checks

def _not_bool(x: Any) -> bool:
    return not isinstance(x, bool)


INT: Field = (lambda x: isinstance(x, int) and _not_bool(x), "an integer")
COUNT: Field = (lambda x: INT[0](x) and x >= 0, "an integer >= 0")
NUMBER: Field = (lambda x: isinstance(x, (int, float)) and _not_bool(x), "a number")
BOOL: Field = (lambda x: isinstance(x, bool), "true or false")
TEXT: Field = (lambda x: isinstance(x, str), "a string")
TEXTS: Field = (lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x),
                "a list of strings")


def optional(field: Field) -> Field:
    """``field`` or null."""
    check, expected = field
    return (lambda x: x is None or check(x), f"{expected} or null")


def one_of(*values: Any) -> Field:
    """Exactly one of ``values`` (JSON scalars; true / 1 told apart)."""
    return (lambda x: any(type(x) is type(v) and x == v for v in values),
            f"one of {list(values)}")

