"""The text layer's readers of saved files, each wrapped as one function of fuzzer edits.

Shared by tests/test_fuzz_files.py (hypothesis) and tests/fuzz/atheris_fuzz.py. Each reader
keeps a pristine saved folder; a call rewrites one of its files (byte edits at fuzzer-chosen
positions, possibly cut or grown), runs the real loader, and restores the file.

Contract: the loader returns what it returns on the pristine folder (the same settings, arrays
and scores), or raises CorruptionError naming a file of the folder. A JSON file whose digest
key is gone reads as a file written before digests existed: its fields are checked one by
one and any well-typed value is taken as written.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from gingham.storage import CorruptionError, FormatVersionError

TEXTS = ["the eiffel tower is in paris", "bees make honey", "chess is a board game",
         "python is a language", "paris is the capital of france", "ice and snow"]


def edited(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with bytes replaced (positions taken modulo its length) and, for ``cut``
    (0-64), its length set to cut/32 of the original (cut, or grown with zero bytes)."""
    out = bytearray(data)
    if cut is not None:
        size = len(data) * cut // 32
        out = out[:size] + bytearray(max(0, size - len(out)))
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


def _is_legacy(data: bytes) -> bool:
    """A JSON object without the digest key (read as written, by design)."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and "sha256" not in obj


class _SavedFolderReader:
    """One saved folder whose ``targets`` (relative file names) the fuzzer damages."""

    config_file: str
    targets: list[str]

    def __init__(self, folder: Path):
        self.folder = folder
        self.pristine = {name: (folder / name).read_bytes() for name in self.targets}
        self.want = self.summary(self.load())

    def __call__(self, target: int, edits: list[tuple[int, int]], cut: int | None = None
                 ) -> None:
        name = self.targets[target % len(self.targets)]
        path = self.folder / name
        data = edited(self.pristine[name], edits, cut)
        path.write_bytes(data)
        try:
            self._check(name, data)
        finally:
            path.write_bytes(self.pristine[name])

    def _check(self, name: str, data: bytes) -> None:
        try:
            got = self.summary(self.load())
        except CorruptionError as exc:
            assert exc.path.startswith(str(self.folder)), exc
            return
        except FormatVersionError as exc:
            # only a digest-free config can carry a raised version past the digest check
            assert name == self.config_file and _is_legacy(data), exc
            assert str(self.folder / name) in str(exc), exc
            return
        if name == self.config_file and _is_legacy(data):
            return
        assert _same(got, self.want), (name, data[:200])

    def load(self):
        raise NotImplementedError

    def summary(self, loaded) -> dict:
        raise NotImplementedError


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    return type(a) is type(b) and a == b


class EncoderFilesReader(_SavedFolderReader):
    """``Encoder.load`` of a saved encoder (a tiny PyLate checkpoint with its Dense projection
    and a fitted PCA): ``encoder.json``, the projection weight and the two PCA arrays."""

    config_file = "encoder.json"
    targets = ["encoder.json", "projection_0_weight.npy", "pca_mean.npy", "pca_components.npy"]

    def __init__(self, root: Path):
        import _tiny_checkpoints
        from gingham.text.encoder import Encoder
        self.Encoder = Encoder
        checkpoint = root / "encoder-checkpoint"
        if not checkpoint.exists():
            checkpoint.mkdir(parents=True)
            _tiny_checkpoints.pylate(checkpoint)
        folder = root / "encoder-saved"
        shutil.rmtree(folder, ignore_errors=True)
        enc = Encoder(str(checkpoint), pca_dim=4, show_progress=False)
        enc.fit_documents(TEXTS)
        enc.save(folder)
        super().__init__(folder)

    def load(self):
        return self.Encoder.load(self.folder, show_progress=False)

    def summary(self, enc) -> dict:
        return {"config": enc.config(), "dim": enc.dim,
                "projection": [(w, b) for w, b in enc._stored_projection],
                "pca": (enc.reducer.mean, enc.reducer.components)}


class BM25FilesReader(_SavedFolderReader):
    """``BM25Index.load`` of a saved BM25 index: ``bm25.json``, the terms file and every file of
    bm25s's score matrix; the loaded index must also score a few queries as the pristine one."""

    config_file = "bm25.json"
    QUERIES = ["paris tower", "honey bees", "board game chess", "snow"]

    def __init__(self, root: Path):
        from gingham.text.bm25 import BM25S_DIR, STATE_FILE, TERMS_FILE, BM25Index
        self.BM25Index = BM25Index
        folder = root / "bm25-saved"
        shutil.rmtree(folder, ignore_errors=True)
        bm = BM25Index("english")
        bm.add([f"d{i}" for i in range(len(TEXTS))], TEXTS)
        bm.save(folder)
        self.targets = [STATE_FILE, TERMS_FILE] + sorted(
            f"{BM25S_DIR}/{p.name}" for p in (folder / BM25S_DIR).iterdir())
        super().__init__(folder)

    def load(self):
        return self.BM25Index.load(self.folder)

    def summary(self, bm) -> dict:
        return {"settings": (bm.language, bm.k1, bm.b, bm.method), "ids": bm.ids,
                "terms": bm._terms, "hits": [bm.search(q, k=3) for q in self.QUERIES],
                "stats": [bm.score_stats(q) for q in self.QUERIES]}


class BM25SourceReader:
    """The Retriever's reader of ``bm25/source.json`` (what the saved BM25 was built from).

    Contract: the pristine values, or None with a UserWarning naming the file (the BM25 is
    then rebuilt from the stored texts); a file without its digest is read as written."""

    def __init__(self, root: Path):
        from gingham.text import saved
        from gingham.text.retriever import _read_source
        self.read = _read_source
        self.path = root / "bm25-source" / "source.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.values = {"n_docs": 6, "ids_sha256": "ab" * 32, "commit": 3}
        saved.write_json(self.path, self.values)
        self.pristine = self.path.read_bytes()

    def __call__(self, edits: list[tuple[int, int]], cut: int | None = None) -> None:
        data = edited(self.pristine, edits, cut)
        self.path.write_bytes(data)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = self.read(str(self.path))
        finally:
            self.path.write_bytes(self.pristine)
        if got is None:
            assert len(caught) == 1 and str(self.path) in str(caught[0].message), caught
            return
        assert not caught, [str(w.message) for w in caught]
        assert _is_legacy(data) or _same(got, self.values), (data, got)
