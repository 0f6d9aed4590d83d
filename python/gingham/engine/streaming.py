"""Building an index larger than memory: a codec-training sample drawn across the whole input,
and the input cut into batches that ``Index.add_batches`` adds one commit at a time.

A streamed build holds one batch (plus the sample) in memory at a time: train the codec on
``sample_tokens(...)`` (what ``Index.add(codec_sample=...)`` takes), then add the batches.
Given the same codec, a streamed build stores exactly what one ``add`` of everything would.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from .. import _core
from . import validate as _validate

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def sample_tokens(source: Any, n: int, *, seed: int = 0) -> np.ndarray:
    """A seeded uniform sample of ``n`` token rows (all of them if there are fewer) ->
    float32 (min(n, T), dim), rows in input order.

    source: a (T, dim) float array (an ``np.memmap`` is read only at the sampled rows), or an
    iterable of (n_i, dim) float arrays read once (for a generator: rows are kept by the n
    smallest keys of a hash of (seed, global row number), so the sample does not depend on how
    the rows are cut into arrays)."""
    n = _validate.positive_int(n, "n")
    seed = _validate.non_negative_int(seed, "seed")
    if isinstance(source, np.ndarray):
        if source.ndim != 2:
            raise ValueError(f"source must be 2-d (n_tokens, dim); got shape {source.shape}")
        count = min(n, source.shape[0])
        picks = np.sort(_core.sample_indices(source.shape[0], count, seed))
        return _validate.float_matrix(source[picks], "source")
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise TypeError("source must be a (T, dim) float array or an iterable of them; "
                        f"got {type(source).__name__}")
    return _bottom_n_rows(source, n, seed)


def _bottom_n_rows(blocks: Iterable[Any], n: int, seed: int) -> np.ndarray:
    kept_rows: np.ndarray | None = None
    kept_keys = np.zeros(0, np.uint64)
    kept_pos = np.zeros(0, np.int64)
    start = 0
    for i, block in enumerate(blocks):
        rows = _validate.float_matrix(block, f"source[{i}]",
                                      None if kept_rows is None else kept_rows.shape[1])
        pos = np.arange(start, start + rows.shape[0], dtype=np.int64)
        start += rows.shape[0]
        keys = row_keys(pos, seed)
        rows = rows if kept_rows is None else np.concatenate([kept_rows, rows])
        keys, pos = np.concatenate([kept_keys, keys]), np.concatenate([kept_pos, pos])
        if keys.size > n:
            keep = np.argpartition(keys, n - 1)[:n]
            rows, keys, pos = rows[keep], keys[keep], pos[keep]
        kept_rows, kept_keys, kept_pos = rows, keys, pos
    if kept_rows is None:
        raise ValueError("source must yield at least one token row")
    order = np.argsort(kept_pos, kind="stable")
    return np.ascontiguousarray(kept_rows[order])


def row_keys(positions: np.ndarray, seed: int) -> np.ndarray:
    """uint64 sampling keys of global row numbers (int64 (m,)): splitmix64 of seed-mixed
    positions, a fixed function so that any cut of the input gives the same sample."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(seed) * _MIX2 + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def csr_batches(tokens: Any, doc_offsets: Any, batch_docs: int, *,
                ids: Any = None) -> Iterator[tuple[list[str], list[np.ndarray]]]:
    """Cut a CSR corpus (tokens (T, dim), e.g. an ``np.memmap``; doc_offsets (n_docs + 1,)
    int64) into ``Index.add_batches`` input: (ids, one (n_i, dim) view per document) for
    ``batch_docs`` documents at a time. ids: one string per document (default "0", "1", ...)."""
    batch_docs = _validate.positive_int(batch_docs, "batch_docs")
    doc_offsets = _validate.offsets(doc_offsets, int(tokens.shape[0]))
    n_docs = len(doc_offsets) - 1
    if ids is not None and len(ids) != n_docs:
        raise ValueError(f"ids must hold one id per document ({n_docs}); got {len(ids)}")
    for a in range(0, n_docs, batch_docs):
        b = min(n_docs, a + batch_docs)
        batch_ids = ([str(i) for i in range(a, b)] if ids is None else list(ids[a:b]))
        yield batch_ids, [tokens[doc_offsets[i]:doc_offsets[i + 1]] for i in range(a, b)]
