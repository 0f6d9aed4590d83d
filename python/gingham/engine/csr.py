"""CSR helpers: documents as token rows plus offsets, shared by the engine and its callers.

A segment holds documents as CSR arrays: token rows ``[doc_offsets[i], doc_offsets[i+1])``
belong to document (row) i. These helpers gather the rows of surviving documents (compaction),
check the documents of a segment read from disk, and merge per-segment top-k lists.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..storage import CorruptionError


def token_index(doc_offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token rows of documents ``rows`` (int64, in that order) and their new offsets.

    -> (token row indices int64 (sum of lengths,), offsets int64 (len(rows) + 1,)).
    """
    offs = np.asarray(doc_offsets)
    starts = offs[rows]
    lens = offs[rows + 1] - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=new_offsets[1:])
    index = np.repeat(starts - new_offsets[:-1], lens) + np.arange(new_offsets[-1])
    return index.astype(np.int64, copy=False), new_offsets


def concat_offsets(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate CSR offsets arrays (each starting at 0) into one."""
    lens = [np.diff(p) for p in parts]
    out = np.zeros(sum(len(x) for x in lens) + 1, dtype=np.int64)
    if len(out) > 1:
        np.cumsum(np.concatenate(lens), out=out[1:])
    return out


def require_arrays(folder: Path, arrays, names: Sequence[str]) -> None:
    """CorruptionError naming the manifest unless every array of ``names`` is present."""
    for name in names:
        if name not in arrays:
            raise CorruptionError(folder / "manifest.json", f"array {name} missing")


def check_documents(folder: Path, doc_offsets: np.ndarray, n_docs: int) -> None:
    """Offsets (already checked in range and monotone by the native segment) of exactly n_docs
    documents, each with at least one token (the format's rule)."""
    if len(doc_offsets) != n_docs + 1 or (n_docs and np.diff(doc_offsets).min() < 1):
        raise CorruptionError(folder / "doc_offsets.npy",
                              f"offsets must describe {n_docs} non-empty documents")


def merge_topk(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], k: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge per-segment results of one query: parts of (scores, internal ids, segment index,
    row). -> the best k by (score desc, internal id asc) as (scores, internal ids, segment
    index, row)."""
    if not parts:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, np.float32), empty, empty, empty
    scores = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
    ids = np.concatenate([p[1] for p in parts])
    seg = np.concatenate([p[2] for p in parts])
    row = np.concatenate([p[3] for p in parts])
    order = np.lexsort((ids, -scores.astype(np.float64)))[:k]
    return scores[order], ids[order], seg[order], row[order]


def to_csr(embeddings: Sequence[np.ndarray], dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """List of (n_i, d) arrays -> (tokens (sum n_i, d), doc_offsets (n + 1,) int64)."""
    if len(embeddings) == 0:
        raise ValueError("embeddings must be a non-empty list")
    lengths = np.fromiter((e.shape[0] for e in embeddings), dtype=np.int64,
                          count=len(embeddings))
    offsets = np.zeros(len(embeddings) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.ascontiguousarray(np.concatenate(embeddings, axis=0), dtype=dtype), offsets


def from_csr(tokens: np.ndarray, doc_offsets: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`to_csr` (views into ``tokens``)."""
    return [tokens[doc_offsets[i]:doc_offsets[i + 1]] for i in range(len(doc_offsets) - 1)]
