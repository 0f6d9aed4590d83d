"""The resumable state of a parallel build: ``<index>/build/``.

``state.json`` fixes what is being built (number of documents, batch size, a fingerprint of
the ids, the first sequence number); ``batches/b000000/`` holds one encoded batch (tokens.npy
float32 (T, dim), offsets.npy int64 (n + 1,), docs.json with ids, metadata, texts), written in
a temporary folder and renamed into place, so a batch is either whole or absent; ``done/``
holds an empty marker per (batch, shard) part committed to its shard. A killed build resumes
from these: finished batches are not encoded again and committed parts are not added again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..storage.files import fsync_dir


def fingerprint(ids: list[str]) -> str:
    """sha256 of the ids in order (a resumed build must be given the same corpus)."""
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class Spool:
    """The build folder of one sharded index."""

    def __init__(self, root: Path):
        self.root = Path(root) / "build"
        self.batches = self.root / "batches"
        self.done = self.root / "done"

    def start(self, state: dict[str, Any]) -> dict[str, Any]:
        """Create the state, or check that an existing one builds the same corpus -> state."""
        path = self.root / "state.json"
        if path.is_file():
            old = json.loads(path.read_text())
            for key in ("n_docs", "batch_size", "fingerprint", "dim"):
                if old[key] != state[key]:
                    raise ValueError(f"{self.root} holds a build of another corpus ({key} "
                                     f"{old[key]!r}, now {state[key]!r}); remove it to start "
                                     "over")
            return old
        for folder in (self.batches, self.done):
            folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(self.root)
        return state

    def batch_folder(self, b: int) -> Path:
        return self.batches / f"b{b:06d}"

    def has_batch(self, b: int) -> bool:
        return (self.batch_folder(b) / "docs.json").is_file()

    def write_batch(self, b: int, tokens: np.ndarray, offsets: np.ndarray, docs: dict) -> None:
        """Write batch b whole (temporary folder, fsync, rename)."""
        final = self.batch_folder(b)
        tmp = self.batches / f".tmp-b{b:06d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, arr in (("tokens.npy", tokens), ("offsets.npy", offsets)):
            with open(tmp / name, "wb") as fh:
                np.save(fh, arr)
                fh.flush()
                os.fsync(fh.fileno())
        with open(tmp / "docs.json", "w") as fh:
            json.dump(docs, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        if final.exists():  # another encoder finished it first: the same content
            shutil.rmtree(tmp)
            return
        os.rename(tmp, final)
        fsync_dir(self.batches)

    def read_batch(self, b: int) -> tuple[np.ndarray, np.ndarray, dict]:
        folder = self.batch_folder(b)
        return (np.load(folder / "tokens.npy", mmap_mode="r"), np.load(folder / "offsets.npy"),
                json.loads((folder / "docs.json").read_text()))

    def is_done(self, b: int, shard: int) -> bool:
        return (self.done / f"b{b:06d}-s{shard:04d}").exists()

    def mark_done(self, b: int, shard: int) -> None:
        (self.done / f"b{b:06d}-s{shard:04d}").touch()
        fsync_dir(self.done)

    def n_done(self) -> int:
        return sum(1 for _ in self.done.iterdir())

    def remove(self) -> None:
        shutil.rmtree(self.root)
