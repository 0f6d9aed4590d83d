"""Flat segments of the Index (storage "fp32" | "fp16" | "int8"): every token kept, no codec.

Segment arrays: tokens (T, dim) float32 / float16 / int8, token_scales float32 (T,) for int8
(token j = token_scales[j] * tokens[j], symmetric per-token scale, see gingham.quantize_int8),
doc_offsets int64 (n_docs + 1,). Search is always exhaustive (csrc/gingham/maxsim.h).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import _core
from ..storage import CorruptionError, MergeInput
from .csr import check_documents, concat_offsets, require_arrays, token_index
from .kinds import Arrays, SegmentKind, empty_stats, opened, register

_DTYPES = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16),
           "int8": np.dtype(np.int8)}
#: The largest int8 token scale quantize_int8 writes (max |x| / 127 of finite float32 tokens):
#: a larger one is damage, and would decode to inf.
MAX_INT8_SCALE = float(np.finfo(np.float32).max) / 127


@register(*_DTYPES)
class FlatKind(SegmentKind):
    """Uncompressed tokens; exhaustive MaxSim search."""

    data_arrays = ("tokens", "token_scales")

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__(settings)
        self.name = str(settings["storage"])
        self.dtype = _DTYPES[self.name]

    def encode(self, tokens, doc_offsets, codec, settings, profile):
        clock = time.perf_counter()
        if self.name == "int8":
            values, scales = _core.quantize_int8(tokens)
            arrays = {"tokens": values, "token_scales": scales, "doc_offsets": doc_offsets}
        else:
            arrays = {"tokens": np.ascontiguousarray(tokens, dtype=self.dtype),
                      "doc_offsets": doc_offsets}
        profile["encode_s"] = time.perf_counter() - clock
        return arrays, None

    def open_segment(self, folder: Path, arrays: Arrays, n_docs: int, codec: Any
                     ) -> _core.FlatSegment:
        names = ("tokens", "doc_offsets") + (("token_scales",) if self.name == "int8" else ())
        require_arrays(folder, arrays, names)
        tokens = arrays["tokens"]
        if tokens.dtype != self.dtype or tokens.ndim != 2 or tokens.shape[1] != self.dim:
            raise CorruptionError(folder / "tokens.npy",
                                  f"expected {self.dtype} of shape (None, {self.dim}); got "
                                  f"{tokens.dtype} {tokens.shape}")
        segment = opened(folder, arrays, _core.FlatSegment, tokens, arrays["doc_offsets"],
                         arrays.get("token_scales"))
        check_documents(folder, segment.doc_offsets, n_docs)
        scales = arrays.get("token_scales")
        if scales is not None and scales.size and not (
                float(scales.min()) >= 0 and float(scales.max()) <= MAX_INT8_SCALE):
            raise CorruptionError(folder / "token_scales.npy",
                                  f"scales must lie in [0, {MAX_INT8_SCALE:.4g}] (what "
                                  "quantize_int8 writes)")
        return segment

    def search(self, codec, segments, masks, queries, query_offsets, k, params, exact,
               also=None):
        scores, seg, rows = [], [], []
        for i, (segment, mask) in enumerate(zip(segments, masks)):
            subset = None if mask is None else np.flatnonzero(mask).astype(np.int64)
            s, r = _core.flat_search(segment, queries, query_offsets, k, subset)
            scores.append(s)
            rows.append(r)
            seg.append(np.full(r.shape, i, np.int64))
        stats = empty_stats(len(query_offsets) - 1)
        stats["n_full"] = sum(s.shape[1] for s in scores)
        return (np.concatenate(scores, axis=1), np.concatenate(seg, axis=1),
                np.concatenate(rows, axis=1), stats, None)  # nothing to share with score_rows

    def score_rows(self, codec, segment, query, rows):
        return _core.flat_score_docs(segment, query, rows)

    def decode_rows(self, codec, segment, rows):
        index, offsets = token_index(segment.doc_offsets, rows)
        tokens = np.asarray(segment.tokens)[index].astype(np.float32)
        if segment.token_scales is not None:
            tokens *= np.asarray(segment.token_scales)[index][:, None]
        return tokens, offsets

    def merge(self, inp: MergeInput, retrain: bool) -> Arrays:
        """Stored values are copied unchanged (retrain has nothing to refit)."""
        segments = [s.arrays for s in inp.segments]
        names = [n for n in ("tokens", "token_scales") if n in segments[0]]
        parts: dict[str, list] = {n: [] for n in names}
        offsets = []
        for arrays, r in zip(segments, inp.rows):
            index, offs = token_index(arrays["doc_offsets"], r)
            for n in names:
                parts[n].append(np.asarray(arrays[n])[index])
            offsets.append(offs)
        out = {n: np.ascontiguousarray(np.concatenate(p)) for n, p in parts.items()}
        out["doc_offsets"] = concat_offsets(offsets)
        return out

