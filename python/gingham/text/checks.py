"""Argument checks of the Retriever: texts, ids, and the folder an index is built in.

Each raises, naming the argument, before any text is encoded or anything is written.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence


def texts_list(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` as a list of non-empty strings (TypeError / ValueError naming ``name``)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of strings; got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a string; got {type(t).__name__}")
        if not t.strip():
            raise ValueError(f"{name}[{i}] is empty")
    return out


def ids_for(texts: list[str], ids: Sequence[str] | None, start: int = 0) -> list[str]:
    """One string id per text: ``ids`` checked, or "<start>", "<start+1>", ... when None."""
    if ids is None:
        return [str(start + i) for i in range(len(texts))]
    ids = list(ids)
    if len(ids) != len(texts):
        raise ValueError(f"ids must hold one id per text: {len(ids)} ids, {len(texts)} texts")
    for i, x in enumerate(ids):
        if not isinstance(x, str):
            raise TypeError(f"ids[{i}] must be a string; got {type(x).__name__}")
    return ids


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 hex digest of the sorted ids, each followed by a NUL byte."""
    h = hashlib.sha256()
    for x in sorted(ids):
        h.update(x.encode("utf-8") + b"\x00")
    return h.hexdigest()


def check_target(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise what ``Index.create`` would raise for ``path`` (FileExistsError,
    NotADirectoryError, PermissionError), so a bad folder fails before any text is encoded."""
    root = os.fspath(path)
    if os.path.exists(root):
        if not os.path.isdir(root):
            raise FileExistsError(f"path {root!r} exists and is not a folder")
        if os.listdir(root):
            if not overwrite:
                raise FileExistsError(f"path {root!r} exists and is not empty; pass "
                                      "overwrite=True to replace an index there")
            if not os.path.isfile(os.path.join(root, "catalog.sqlite")):
                raise FileExistsError(f"path {root!r} is not a gingham index; overwrite=True "
                                      "only replaces an existing index")
    parent = os.path.abspath(root)
    while not os.path.exists(parent):  # the folder is created under its nearest ancestor
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"path {root!r}: {parent!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"path {root!r}: folder {parent!r} is not writable")
