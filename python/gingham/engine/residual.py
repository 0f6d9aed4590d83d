"""Residual (PLAID / ColBERTv2) segments of the Index: encode, check, search, decode, merge.

Codec arrays (one codec version, ``codec/`` folder): centroids float16 (C, dim) (float32 in
codecs written before float16, or when a value exceeds float16's range),
bucket_cutoffs float32 (dim, 2^nbits - 1), bucket_weights float32 (dim, 2^nbits).
Segment arrays: codes uint16/uint32 (T,) (uint16 when C <= 65,536), residuals uint8
(T, dim * nbits / 8), scales float16 (T,) (each token's norm over its quantized norm; absent
in segments written by format 1, which decode with scale 1),
doc_offsets int64 (n_docs + 1,), ivf_offsets int64 (C + 1,),
ivf_doc_ids uint16 when the segment holds at most 65,536 documents, else int32 (segment-local
document rows of each centroid's list; read as int32, so segments written with int32 open too).
Bit layout and search stages: csrc/gingham/codec.h and csrc/gingham/plaid.h.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import _core
from ..storage import CorruptionError, Merged, MergeInput, StorageError
from . import validate
from .csr import check_documents, concat_offsets, require_arrays, token_index
from .kinds import Arrays, SegmentKind, opened, register

_F16 = np.dtype(np.float16)


def default_n_centroids(n_tokens: int) -> int:
    """PLAID's default: 2^floor(log2(16 * sqrt(n_tokens))), at least 1."""
    return 1 << max(0, int(math.floor(math.log2(16.0 * math.sqrt(max(n_tokens, 1))))))


# After the first k-means pass, each sample row is compared only with the 256 centroids nearest
# to the one it was assigned to (``_core.kmeans_fit(neighbors=)``), from 2,048 centroids up:
# on the skewed synthetic corpus (8,192 centroids, 262,144 rows, 10 passes, 1 thread) k-means
# takes 22.1 s instead of 66.9 s for a mean squared error 0.3% above exact Lloyd's (128: 19.4 s,
# +0.8%): bench/kmeans.py, docs/compressed-index.md.
KMEANS_NEIGHBORS = 256


def train_codec(tokens: np.ndarray, settings: Mapping[str, Any], profile: dict
                ) -> dict[str, np.ndarray]:
    """Fit centroids (k-means on a seeded sample) and bucket cutoffs/weights on tokens (T, dim)
    float32. settings: nbits, n_centroids (None: PLAID default, capped by the sample), seed,
    kmeans_iters, sample_per_centroid."""
    nbits = int(settings["nbits"])
    n_tokens = tokens.shape[0]
    n_centroids = settings.get("n_centroids") or default_n_centroids(n_tokens)
    n_sample = min(n_tokens, max(n_centroids, 1) * int(settings["sample_per_centroid"]))
    n_centroids = min(n_centroids, n_sample)
    picks = np.sort(_core.sample_indices(n_tokens, n_sample, int(settings["seed"])))
    sample = np.ascontiguousarray(tokens[picks])
    clock = time.perf_counter()
    neighbors = KMEANS_NEIGHBORS if n_centroids >= 8 * KMEANS_NEIGHBORS else 0
    centroids = _stored_centroids(_core.kmeans_fit(sample, n_centroids,
                                                   int(settings["kmeans_iters"]),
                                                   int(settings["seed"]),
                                                   neighbors=neighbors))
    profile["kmeans_s"] = time.perf_counter() - clock
    profile["kmeans_sample"] = float(n_sample)
    profile["n_centroids"] = float(n_centroids)
    clock = time.perf_counter()
    exact = centroids_f32(centroids)
    sample_codes = _core.kmeans_assign(sample, exact)
    cutoffs, weights = _core.codec_fit_buckets(sample, sample_codes, exact, nbits)
    profile["buckets_s"] = time.perf_counter() - clock
    return {"centroids": centroids, "bucket_cutoffs": cutoffs, "bucket_weights": weights}


def _stored_centroids(centroids: np.ndarray) -> np.ndarray:
    """The centroids as stored: float16 (half the bytes, as colbert-ai stores them) when every
    value fits float16's range, else float32. Buckets and codes are fit against the stored
    values, so the rounding becomes part of each token's residual."""
    if np.abs(centroids).max(initial=0.0) <= np.finfo(np.float16).max:
        return centroids.astype(np.float16)
    return centroids


def centroids_f32(centroids: np.ndarray) -> np.ndarray:
    """Stored centroids (float16 or float32, (C, dim)) as the C-contiguous float32 the kernels
    take."""
    return np.ascontiguousarray(centroids, dtype=np.float32)


@register("residual")
class ResidualKind(SegmentKind):
    """Compressed segments sharing a codec; staged PLAID search or exact search from codes."""

    name = "residual"
    data_arrays = ("codes", "residuals", "scales")
    staged = True

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__(settings)
        self.nbits = int(settings["nbits"])

    @staticmethod
    def create_settings(dim: int, options: Mapping[str, Any]) -> dict[str, Any]:
        nbits = validate.positive_int(options["nbits"], "nbits")
        if nbits not in (1, 2, 4):
            raise ValueError(f"nbits must be 1, 2 or 4; got {nbits}")
        if dim * nbits % 8:
            raise ValueError(f"dim * nbits must be a multiple of 8; got dim {dim}, "
                             f"nbits {nbits}")
        n_centroids = options["n_centroids"]
        return {"nbits": nbits, "seed": validate.non_negative_int(options["seed"], "seed"),
                "n_centroids": None if n_centroids is None else
                validate.positive_int(n_centroids, "n_centroids"),
                "kmeans_iters": validate.non_negative_int(options["kmeans_iters"],
                                                          "kmeans_iters"),
                "sample_per_centroid": validate.positive_int(options["sample_per_centroid"],
                                                             "sample_per_centroid")}

    def encode(self, tokens, doc_offsets, codec, settings, profile):
        new_codec = None
        if codec is None:
            codec = new_codec = train_codec(tokens, settings, profile)
        return _encode(tokens, doc_offsets, codec, self.nbits, profile), new_codec

    def train_codec(self, sample, settings, profile):
        return train_codec(sample, settings, profile)

    def open_codec(self, folder: Path, arrays: Arrays) -> _core.Codec:
        require_arrays(folder, arrays, ("centroids", "bucket_cutoffs", "bucket_weights"))
        if arrays["centroids"].dtype not in (np.float16, np.float32):
            raise CorruptionError(folder / "centroids.npy", "centroids must be float16 or "
                                  f"float32; got {arrays['centroids'].dtype}")
        codec = opened(folder, arrays, _core.Codec, centroids_f32(arrays["centroids"]),
                       arrays["bucket_cutoffs"],
                       arrays["bucket_weights"], self.nbits)
        if codec.dim != self.dim:
            raise CorruptionError(folder / "centroids.npy", f"centroids have dim {codec.dim}; "
                                                            f"the index has dim {self.dim}")
        return codec

    def open_segment(self, folder: Path, arrays: Arrays, n_docs: int,
                     codec: _core.Codec | None) -> _core.ResidualSegment:
        if codec is None:
            raise CorruptionError(folder / "manifest.json", "residual segment without a codec")
        require_arrays(folder, arrays, ("codes", "residuals", "doc_offsets", "ivf_offsets",
                                        "ivf_doc_ids"))
        ivf_doc_ids = arrays["ivf_doc_ids"]
        if ivf_doc_ids.dtype == np.uint16:
            ivf_doc_ids = ivf_doc_ids.astype(np.int32)  # widened in memory: the kernels' type
        segment = opened(folder, arrays, _core.ResidualSegment, codec, arrays["codes"],
                         arrays["residuals"], arrays.get("scales"), arrays["doc_offsets"],
                         arrays["ivf_offsets"], ivf_doc_ids)
        check_documents(folder, segment.doc_offsets, n_docs)
        return segment

    def search(self, codec, segments, masks, queries, query_offsets, k, params, exact,
               also=None):
        listed = None if also is None else (also.offsets, also.positions, also.rows)
        out = _core.plaid_search(queries, query_offsets, segments, masks, k, params["ncells"],
                                 params["centroid_score_threshold"], params["ndocs"], exact,
                                 listed)
        return out if also is not None else (*out, None)

    def score_rows(self, codec, segment, query, rows):
        return _core.plaid_score_docs(query, segment, rows)

    def decode_rows(self, codec, segment, rows):
        return _decode(codec.centroids, codec.bucket_weights, self.nbits, {
            "codes": segment.codes, "residuals": segment.residuals,
            "doc_offsets": segment.doc_offsets, "scales": segment.scales}, rows)

    def merge(self, inp: MergeInput, retrain: bool) -> Arrays | Merged:
        """Without retrain: codes, residuals and scales are copied unchanged, so every document
        keeps exactly its scores; the IVF is rebuilt. With retrain: the codec is refit on the
        decoded tokens of the live documents, which are re-encoded."""
        arrays = [s.arrays for s in inp.segments]
        if any(s.codec_version != inp.codec_version for s in inp.segments):
            raise StorageError("segments use different codec versions; compact(retrain=True)")
        if not retrain:
            return _merge_codes(inp.codec, arrays, inp.rows)
        decoded = [_decode(inp.codec["centroids"], inp.codec["bucket_weights"], self.nbits, a, r)
                   for a, r in zip(arrays, inp.rows)]
        tokens = np.ascontiguousarray(np.concatenate([d[0] for d in decoded]))
        offsets = concat_offsets([d[1] for d in decoded])
        profile: dict[str, float] = {}
        new_codec = train_codec(tokens, inp.settings, profile)
        return Merged(_encode(tokens, offsets, new_codec, self.nbits, profile), new_codec)


def _encode(tokens: np.ndarray, doc_offsets: np.ndarray, codec: Arrays, nbits: int,
            profile: dict) -> dict[str, np.ndarray]:
    """Segment arrays of documents tokens (T, dim) float32 / doc_offsets int64 (n + 1,)."""
    clock = time.perf_counter()
    codes, residuals, scales = _core.codec_encode(
        tokens, centroids_f32(codec["centroids"]),
        np.ascontiguousarray(codec["bucket_cutoffs"]),
        np.ascontiguousarray(codec["bucket_weights"]), nbits)
    profile["encode_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    ivf_offsets, ivf_doc_ids = _core.ivf_build(codes, doc_offsets, len(codec["centroids"]))
    ivf_doc_ids = _stored_ivf_ids(ivf_doc_ids, len(doc_offsets) - 1)
    profile["ivf_s"] = time.perf_counter() - clock
    return {"codes": codes, "residuals": residuals, "scales": scales, "doc_offsets": doc_offsets,
            "ivf_offsets": ivf_offsets, "ivf_doc_ids": ivf_doc_ids}


def _stored_ivf_ids(ivf_doc_ids: np.ndarray, n_docs: int) -> np.ndarray:
    """The inverted lists' document rows as stored: uint16 (half the bytes) when every row of
    a segment of n_docs documents fits, else the int32 of ivf_build."""
    return ivf_doc_ids.astype(np.uint16) if n_docs <= 1 << 16 else ivf_doc_ids


def _decode(centroids: np.ndarray, weights: np.ndarray, nbits: int, arrays: Arrays,
            rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoded tokens float32 (T', dim) of documents rows, with their offsets (len(rows)+1,)."""
    index, offsets = token_index(arrays["doc_offsets"], rows)
    codes = np.ascontiguousarray(arrays["codes"][index])
    residuals = np.ascontiguousarray(arrays["residuals"][index])
    scales = arrays.get("scales")
    scales = None if scales is None else np.ascontiguousarray(scales[index])
    tokens = _core.codec_decode(codes, residuals, scales, centroids_f32(centroids),
                                np.ascontiguousarray(weights), nbits)
    return tokens, offsets


def _merge_codes(codec: Arrays, segments: list, rows: list) -> dict[str, np.ndarray]:
    """One segment holding rows[i] of segments[i] (same codec): codes, residuals and scales are
    copied unchanged, so every document keeps exactly its scores; the IVF is rebuilt."""
    codes, residuals, scales, offsets = [], [], [], []
    for arrays, r in zip(segments, rows):
        index, offs = token_index(arrays["doc_offsets"], r)
        codes.append(np.asarray(arrays["codes"])[index])
        residuals.append(np.asarray(arrays["residuals"])[index])
        scales.append(np.asarray(arrays["scales"])[index] if "scales" in arrays
                      else np.ones(len(index), _F16))
        offsets.append(offs)
    codes_all = np.ascontiguousarray(np.concatenate(codes))
    doc_offsets = concat_offsets(offsets)
    ivf_offsets, ivf_doc_ids = _core.ivf_build(codes_all, doc_offsets, len(codec["centroids"]))
    ivf_doc_ids = _stored_ivf_ids(ivf_doc_ids, len(doc_offsets) - 1)
    return {"codes": codes_all, "residuals": np.ascontiguousarray(np.concatenate(residuals)),
            "scales": np.ascontiguousarray(np.concatenate(scales)), "doc_offsets": doc_offsets,
            "ivf_offsets": ivf_offsets, "ivf_doc_ids": ivf_doc_ids}
