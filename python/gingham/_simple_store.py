"""The simple on-disk store of a compressed index: a folder of .npy files plus a manifest.

This is the only module that touches index files; the durable segment store with a SQLite
catalog (python/gingham/storage/) replaces it behind the same small interface:

    store = SimpleStore.create(path, settings)      # settings: JSON-serializable dict
    store = SimpleStore.open(path)
    store.settings, store.codec (dict of arrays or None), store.segments (list of StoredSegment)
    store.commit(codec=..., segment=...)             # writes new files, then the manifest
    store.bytes_on_disk()

Layout::

    <path>/manifest.json            {"format": "gingham-simple", "version": 1, "settings": {...},
                                     "codec": [file names] | null, "segments": [names]}
    <path>/codec/<name>.npy         centroids, bucket_cutoffs, bucket_weights
    <path>/segments/<id>/<name>.npy codes, residuals, doc_offsets, ivf_offsets, ivf_doc_ids,
                                    ids_utf8, ids_offsets; metadata.json (list or null)

New files go to a temporary folder that is renamed into place; the manifest is replaced
atomically last, so an interrupted commit leaves the previous index readable. Arrays are opened
with ``np.load(mmap_mode="r", allow_pickle=False)``: opening does not read vectors into RAM.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "gingham-simple"
VERSION = 1
MANIFEST = "manifest.json"
SEGMENT_ARRAYS = ("codes", "residuals", "doc_offsets", "ivf_offsets", "ivf_doc_ids")
CODEC_ARRAYS = ("centroids", "bucket_cutoffs", "bucket_weights")


@dataclass
class StoredSegment:
    """One immutable segment: flat arrays (memory-mapped), string ids, optional metadata."""

    name: str
    arrays: dict[str, np.ndarray]
    ids: list[str]
    metadata: list[Any] | None

    @property
    def n_docs(self) -> int:
        return len(self.ids)

    @property
    def n_tokens(self) -> int:
        return int(self.arrays["doc_offsets"][-1])


def encode_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """String ids -> (uint8 UTF-8 bytes, int64 offsets (n + 1,))."""
    blobs = [s.encode("utf-8") for s in ids]
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=offsets[1:])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).copy(), offsets


def decode_ids(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    raw = np.asarray(data).tobytes()
    off = np.asarray(offsets).tolist()
    return [raw[off[i]:off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        with open(folder / f"{name}.npy", "wb") as f:
            np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())


def _load_arrays(folder: Path, names: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        file = folder / f"{name}.npy"
        if not file.is_file():
            raise FileNotFoundError(f"index file missing: {file}")
        try:
            out[name] = np.load(file, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"index file {file} is not a valid .npy array: {exc}") from exc
    return out


class SimpleStore:
    """A compressed index folder (see the module docstring)."""

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self._manifest = manifest
        self.codec: dict[str, np.ndarray] | None = None
        self.segments: list[StoredSegment] = []

    @property
    def settings(self) -> dict[str, Any]:
        return self._manifest["settings"]

    @classmethod
    def create(cls, path: str | os.PathLike, settings: dict[str, Any]) -> "SimpleStore":
        """Make an empty index folder; ``path`` must not exist or be an empty folder."""
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise FileExistsError(f"path {str(root)!r} already exists and is not an empty folder")
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root, {"format": FORMAT, "version": VERSION, "settings": dict(settings),
                           "codec": None, "segments": []})
        store._write_manifest()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SimpleStore":
        root = Path(path)
        file = root / MANIFEST
        if not file.is_file():
            raise FileNotFoundError(f"no gingham index at {str(root)!r} (missing {MANIFEST})")
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"index file {file} is not valid JSON: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{file} is not a {FORMAT} manifest")
        if manifest.get("version") != VERSION:
            raise ValueError(f"{file} has format version {manifest.get('version')}; this gingham "
                             f"reads version {VERSION}")
        store = cls(root, manifest)
        if manifest["codec"] is not None:
            store.codec = _load_arrays(root / "codec", CODEC_ARRAYS)
        for name in manifest["segments"]:
            store.segments.append(store._load_segment(name))
        return store

    def _load_segment(self, name: str) -> StoredSegment:
        folder = self.path / "segments" / name
        arrays = _load_arrays(folder, SEGMENT_ARRAYS + ("ids_utf8", "ids_offsets"))
        ids = decode_ids(arrays.pop("ids_utf8"), arrays.pop("ids_offsets"))
        meta_file = folder / "metadata.json"
        metadata = (json.loads(meta_file.read_text(encoding="utf-8"))
                    if meta_file.is_file() else None)
        return StoredSegment(name, arrays, ids, metadata)

    def _write_manifest(self) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self._manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)

    def _stage(self, final: Path, arrays: dict[str, np.ndarray], extra: dict[str, str]) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            _write_arrays(tmp, arrays)
            for fname, text in extra.items():
                (tmp / fname).write_text(text, encoding="utf-8")
            if final.exists():  # left over by an interrupted commit, never referenced
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def commit(self, *, codec: dict[str, np.ndarray] | None = None,
               segment: tuple[dict[str, np.ndarray], list[str], list[Any] | None] | None = None
               ) -> None:
        """Write a new codec (first add only) and/or a new segment, then the manifest."""
        if codec is not None:
            if self.codec is not None:
                raise ValueError("the codec of an index is written once")
            self._stage(self.path / "codec", {n: codec[n] for n in CODEC_ARRAYS}, {})
        new_name = None
        if segment is not None:
            arrays, ids, metadata = segment
            new_name = f"{len(self._manifest['segments']):06d}"
            data, offsets = encode_ids(ids)
            files = {n: arrays[n] for n in SEGMENT_ARRAYS}
            files.update(ids_utf8=data, ids_offsets=offsets)
            extra = {"metadata.json": json.dumps(metadata)} if metadata is not None else {}
            self._stage(self.path / "segments" / new_name, files, extra)
        if codec is not None:
            self._manifest["codec"] = list(CODEC_ARRAYS)
        if new_name is not None:
            self._manifest["segments"].append(new_name)
        self._write_manifest()
        if codec is not None:
            self.codec = _load_arrays(self.path / "codec", CODEC_ARRAYS)
        if new_name is not None:
            self.segments.append(self._load_segment(new_name))

    def bytes_on_disk(self) -> int:
        """Size of every file the manifest references, the manifest included."""
        total = (self.path / MANIFEST).stat().st_size
        folders = ([self.path / "codec"] if self._manifest["codec"] is not None else []) + \
            [self.path / "segments" / n for n in self._manifest["segments"]]
        for folder in folders:
            total += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        return total
