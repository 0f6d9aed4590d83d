"""Flat segments of the Index (storage "fp32" | "fp16" | "int8"): every token kept, no codec.

Segment arrays: tokens (T, dim) float32 / float16 / int8, token_scales float32 (T,) for int8
(token j = token_scales[j] * tokens[j], symmetric per-token scale, see gingham.quantize_int8),
doc_offsets int64 (n_docs + 1,). Search is always exhaustive (csrc/gingham/maxsim.h).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .. import _core
from .csr import check_array, check_offsets, concat_offsets, token_index

KINDS = ("fp32", "fp16", "int8")
_DTYPES = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16),
           "int8": np.dtype(np.int8)}


def encode(tokens: np.ndarray, doc_offsets: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Segment arrays of documents tokens (T, dim) float32 / doc_offsets int64 (n + 1,)."""
    if kind == "int8":
        values, scales = _core.quantize_int8(tokens)
        return {"tokens": values, "token_scales": scales, "doc_offsets": doc_offsets}
    return {"tokens": np.ascontiguousarray(tokens, dtype=_DTYPES[kind]),
            "doc_offsets": doc_offsets}


def check_segment(folder: Path, arrays: Mapping[str, np.ndarray], n_docs: int, kind: str,
                  dim: int) -> None:
    """Shapes, dtypes and offsets (monotone, in range) of a segment read from disk."""
    tokens = check_array(folder, arrays, "tokens", (_DTYPES[kind],), (None, dim))
    if kind == "int8":
        check_array(folder, arrays, "token_scales", (np.dtype(np.float32),), (tokens.shape[0],))
    check_offsets(folder, arrays, "doc_offsets", n_docs, tokens.shape[0], strictly=True)


def _scales(arrays: Mapping[str, np.ndarray]):
    return arrays.get("token_scales")


def search(arrays: Mapping[str, np.ndarray], mask: np.ndarray | None, queries: np.ndarray,
           query_offsets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one segment over the rows where mask != 0 (every row if None).
    -> (scores float32 (nq, k'), rows int64 (nq, k'))."""
    if mask is None:
        return _core.exact_search(queries, query_offsets, arrays["tokens"],
                                  arrays["doc_offsets"], k, token_scales=_scales(arrays))
    rows = np.flatnonzero(mask).astype(np.int64)
    return _core.exact_search_subset(queries, query_offsets, arrays["tokens"],
                                     arrays["doc_offsets"], rows, k,
                                     token_scales=_scales(arrays))


def score_rows(arrays: Mapping[str, np.ndarray], query: np.ndarray, rows: np.ndarray
               ) -> np.ndarray:
    """Exact MaxSim of query (Lq, dim) float32 against documents rows int64 -> float32."""
    return _core.maxsim_scores_subset(query, arrays["tokens"], arrays["doc_offsets"], rows,
                                      token_scales=_scales(arrays))


def decode_rows(arrays: Mapping[str, np.ndarray], rows: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Stored tokens as float32 (T', dim) of documents rows, with offsets (len(rows)+1,)."""
    index, offsets = token_index(arrays["doc_offsets"], rows)
    tokens = np.asarray(arrays["tokens"])[index].astype(np.float32)
    if "token_scales" in arrays:
        tokens *= np.asarray(arrays["token_scales"])[index][:, None]
    return tokens, offsets


def merge(segments: list, rows: list) -> dict[str, np.ndarray]:
    """One segment holding rows[i] of segments[i]; stored values are copied unchanged."""
    names = [n for n in ("tokens", "token_scales") if n in segments[0]]
    parts: dict[str, list] = {n: [] for n in names}
    offsets = []
    for arrays, r in zip(segments, rows):
        index, offs = token_index(arrays["doc_offsets"], r)
        for n in names:
            parts[n].append(np.asarray(arrays[n])[index])
        offsets.append(offs)
    out = {n: np.ascontiguousarray(np.concatenate(p)) for n, p in parts.items()}
    out["doc_offsets"] = concat_offsets(offsets)
    return out
