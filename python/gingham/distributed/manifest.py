"""The sharded folder: its manifest, the shared codec, the writer lock and id routing.

A sharded index is a folder holding ``sharded.json`` (the manifest), ``codec.npz`` (the one
codec every shard shares, residual storage only) and N shard folders ``shard-0000`` ... each an
ordinary gingham Index. The manifest and the codec are written to a temporary file, fsynced,
renamed over the old one and the folder fsynced, so a kill at any moment leaves either the old
or the new file, never a torn one.

Routing: a document goes to shard ``blake2b(id, 8 bytes) mod n_shards`` (little endian), which
does not depend on the process, the Python version or the order of insertion.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine import kinds
from ..storage.lock import WriterLock

MANIFEST = "sharded.json"
CODEC_FILE = "codec.npz"
FORMAT = 1
ROUTING = "blake2b-64-mod"
#: Metadata key holding a document's global insertion sequence number inside its shard.
SEQ_KEY = "gingham_seq"


def shard_name(shard: int) -> str:
    """Folder name of shard number ``shard``."""
    return f"shard-{shard:04d}"


def route(ids: Sequence[str], n_shards: int) -> np.ndarray:
    """Shard number int64 (len(ids),) of each id: blake2b-64 of its UTF-8 bytes mod n_shards."""
    out = np.empty(len(ids), dtype=np.int64)
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") % n_shards
    return out


def is_sharded(path: str | os.PathLike) -> bool:
    """True if ``path`` is a sharded gingham index folder (holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    """Replace the manifest atomically (temp file + fsync + rename + fsync of the folder)."""
    _write_atomic(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a sharded folder, every field checked; FileNotFoundError / ValueError
    naming the folder or the file."""
    path = root / MANIFEST
    if not root.exists():
        raise FileNotFoundError(f"no sharded gingham index at {str(root)!r}")
    if not path.is_file():
        raise ValueError(f"{str(root)!r} is not a sharded gingham index (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable sharded manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: a sharded manifest is a JSON object, not "
                         f"{type(manifest).__name__}")
    if manifest.get("gingham_sharded") != FORMAT or manifest.get("routing") != ROUTING:
        raise ValueError(f"{path}: unknown sharded format {manifest.get('gingham_sharded')!r} "
                         f"/ routing {manifest.get('routing')!r}")
    problem = _manifest_problem(manifest)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return manifest


def _is_count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with a parsed manifest's fields, or None."""
    n_shards = manifest.get("n_shards")
    if not _is_count(n_shards, 1):
        return f"n_shards must be a positive int, got {n_shards!r}"
    shards = manifest.get("shards")
    if (not isinstance(shards, list) or len(shards) != n_shards
            or shards != [shard_name(s) for s in range(n_shards)]):
        return f"shards must list the {n_shards} folders shard-0000 ..., got {shards!r}"
    if not _is_count(manifest.get("dim"), 1):
        return f"dim must be a positive int, got {manifest.get('dim')!r}"
    if manifest.get("storage") not in kinds.names():
        return f"storage must be one of {kinds.names()}, got {manifest.get('storage')!r}"
    if not isinstance(manifest.get("kind_settings"), dict):
        return f"kind_settings must be an object, got {manifest.get('kind_settings')!r}"
    sha = manifest.get("codec_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64
                                and all(c in "0123456789abcdef" for c in sha)):
        return f"codec_sha256 must be null or 64 hex digits, got {sha!r}"
    if not _is_count(manifest.get("next_seq"), 0):
        return f"next_seq must be an int >= 0, got {manifest.get('next_seq')!r}"
    return None


def write_codec(root: Path, codec: Mapping[str, np.ndarray]) -> str:
    """Write the shared codec arrays atomically -> sha256 of the file (kept in the manifest)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in codec.items()})
    data = buf.getvalue()
    _write_atomic(root / CODEC_FILE, data)
    return hashlib.sha256(data).hexdigest()


def read_codec(root: Path, sha256: str) -> dict[str, np.ndarray]:
    """The shared codec arrays; ValueError if the file does not match the manifest's sha256."""
    data = (root / CODEC_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{root / CODEC_FILE} does not match the manifest's sha256")
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


class RootLock:
    """Exclusive ``flock`` on the sharded folder's writer.lock (the storage layer's WriterLock):
    one sharded writer at a time; the kernel drops it when the holder dies."""

    def __init__(self, root: Path, timeout: float):
        self._lock = WriterLock(root)
        self._timeout = timeout

    def __enter__(self) -> "RootLock":
        self._lock.acquire(self._timeout)
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
