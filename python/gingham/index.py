"""``gingham.Index``: a compressed (PLAID / ColBERTv2 residual) late-interaction index.

Scores are raw MaxSim sums: for each query token the best dot product with any of the
document's tokens, summed over query tokens. In the compressed index the document tokens are
their decoded approximations (centroid + quantized residual, csrc/gingham/codec.h); ``rerank``
and ``mode="exact"`` score every listed/searchable document from those codes, ``mode="plaid"``
finds the best documents while touching a small part of the index (csrc/gingham/plaid.h).
Results are ordered by score, ties by insertion order.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import time
from typing import Any, NamedTuple, Sequence

import numpy as np

from . import _core, _validate
from ._simple_store import SimpleStore, StoredSegment

MODES = ("plaid", "exact")
_STAT_FIELDS = ("centroid_ms", "candidate_ms", "approx_ms", "full_ms", "topk_ms", "n_cells",
                "n_candidates", "n_after_pruning", "n_full")


class Hit(NamedTuple):
    """One search result: the caller's document id, its MaxSim score and its 0-based rank."""

    id: str
    score: float
    rank: int


def default_n_centroids(n_tokens: int) -> int:
    """PLAID's default: 2^floor(log2(16 * sqrt(n_tokens))), at least 1."""
    return 1 << max(0, int(math.floor(math.log2(16.0 * math.sqrt(max(n_tokens, 1))))))


def default_search_params(k: int) -> dict[str, Any]:
    """PLAID's per-k defaults: k <= 10: 1/0.5/256; k <= 100: 2/0.45/1024; else 4/0.4/4096."""
    ncells, threshold, ndocs = _core.plaid_default_params(k)
    return {"ncells": int(ncells), "centroid_score_threshold": float(threshold),
            "ndocs": int(ndocs)}


def _optional_positive_int(x: Any, name: str) -> int | None:
    return None if x is None else _validate.positive_int(x, name)


def _ids_list(ids: Any, name: str = "ids") -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"{name} must be a list of strings; got {type(ids).__name__}")
    out = list(ids)
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{name}[{i}] must be a string; got {type(x).__name__}")
    seen: set[str] = set()
    for x in out:
        if x in seen:
            raise ValueError(f"{name} holds {x!r} more than once")
        seen.add(x)
    return out


class Index:
    """A compressed multi-vector index stored in a folder (see ``_simple_store``)."""

    def __init__(self, store: SimpleStore):
        self._store = store
        s = store.settings
        self.dim: int = int(s["dim"])
        self.nbits: int = int(s["nbits"])
        self._id_to_global: dict[str, int] = {}
        self._ids: list[str] = []
        self._bases: list[int] = []
        self.last_add_profile: dict[str, float] = {}
        for seg in store.segments:
            self._register(seg, check=True)

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, dim: int, nbits: int = 2,
               n_centroids: int | None = None, seed: int = 0, kmeans_iters: int = 10,
               sample_per_centroid: int = 32) -> "Index":
        """Create an empty index folder at ``path`` (which must not exist or be empty).

        dim: token dimension; nbits: residual bits per dimension (1, 2 or 4; dim * nbits must
        be a multiple of 8); n_centroids: k-means centroids (default
        2^floor(log2(16 sqrt(n_tokens))) of the first ``add``, capped by the training sample);
        seed: k-means / sampling seed; kmeans_iters: Lloyd iterations; sample_per_centroid:
        training tokens per centroid (the sample is at most all tokens of the first add).
        """
        dim = _validate.positive_int(dim, "dim")
        nbits = _validate.positive_int(nbits, "nbits")
        if nbits not in (1, 2, 4):
            raise ValueError(f"nbits must be 1, 2 or 4; got {nbits}")
        if dim * nbits % 8:
            raise ValueError(f"dim * nbits must be a multiple of 8; got dim {dim}, nbits {nbits}")
        n_centroids = _optional_positive_int(n_centroids, "n_centroids")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise TypeError(f"seed must be a non-negative integer; got {seed!r}")
        if isinstance(kmeans_iters, bool) or not isinstance(kmeans_iters, numbers.Integral) \
                or kmeans_iters < 0:
            raise ValueError(f"kmeans_iters must be a non-negative integer; got {kmeans_iters!r}")
        sample_per_centroid = _validate.positive_int(sample_per_centroid, "sample_per_centroid")
        settings = {"kind": "residual", "dim": dim, "nbits": nbits, "n_centroids": n_centroids,
                    "seed": int(seed), "kmeans_iters": int(kmeans_iters),
                    "sample_per_centroid": sample_per_centroid}
        return cls(SimpleStore.create(path, settings))

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Index":
        """Open an existing index folder (arrays are memory-mapped)."""
        return cls(SimpleStore.open(path))

    def _register(self, seg: StoredSegment, check: bool) -> None:
        if check:
            codec = self._store.codec
            if codec is None:
                raise ValueError(f"index {self._store.path} has segments but no codec")
            _core.check_segment(self._segment_tuple(seg, None), len(codec["centroids"]),
                                self.dim, self.nbits)
        base = len(self._ids)
        self._bases.append(base)
        for i, x in enumerate(seg.ids):
            if x in self._id_to_global:
                raise ValueError(f"segment {seg.name} repeats id {x!r}")
            self._id_to_global[x] = base + i
        self._ids.extend(seg.ids)

    # ---- adding --------------------------------------------------------------------------

    def add(self, ids: Sequence[str], embeddings: Sequence[Any],
            metadata: Sequence[Any] | None = None) -> None:
        """Add documents: ids (unique strings, new to the index), embeddings (one (n_i, dim)
        float array per document, n_i >= 1, finite), metadata (optional JSON-serializable value
        per document). Everything is validated before anything is written. The first add trains
        the codec on a sample of its tokens; later adds encode with that codec."""
        ids = _ids_list(ids)
        if isinstance(embeddings, np.ndarray) and embeddings.ndim == 3:
            embeddings = list(embeddings)
        if not isinstance(embeddings, Sequence) or isinstance(embeddings, (str, bytes)):
            raise TypeError("embeddings must be a list of (n_tokens, dim) float arrays")
        if len(embeddings) != len(ids):
            raise ValueError(f"embeddings must hold one array per id: {len(ids)} ids, "
                             f"{len(embeddings)} embeddings")
        if not ids:
            raise ValueError("ids must hold at least one document")
        for x in ids:
            if x in self._id_to_global:
                raise ValueError(f"id {x!r} is already in the index")
        if metadata is not None:
            if not isinstance(metadata, Sequence) or isinstance(metadata, (str, bytes)) \
                    or len(metadata) != len(ids):
                raise ValueError("metadata must be a list with one entry per id")
            try:
                metadata = json.loads(json.dumps(list(metadata)))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"metadata must be JSON-serializable: {exc}") from exc
        mats = [_validate.float_matrix(e, f"embeddings[{i}]", self.dim)
                for i, e in enumerate(embeddings)]
        lengths = np.fromiter((m.shape[0] for m in mats), dtype=np.int64, count=len(mats))
        doc_offsets = np.zeros(len(mats) + 1, dtype=np.int64)
        np.cumsum(lengths, out=doc_offsets[1:])
        tokens = np.concatenate(mats, axis=0) if len(mats) > 1 else mats[0]
        del mats
        profile: dict[str, float] = {"n_tokens": float(tokens.shape[0])}
        clock = time.perf_counter()
        new_codec = None
        if self._store.codec is None:
            new_codec = self._train_codec(tokens, profile)
        codec = new_codec if new_codec is not None else self._store.codec
        clock = time.perf_counter()
        codes, residuals = _core.codec_encode(tokens, np.ascontiguousarray(codec["centroids"]),
                                              np.ascontiguousarray(codec["bucket_cutoffs"]),
                                              self.nbits)
        profile["encode_s"] = time.perf_counter() - clock
        del tokens
        clock = time.perf_counter()
        ivf_offsets, ivf_doc_ids = _core.ivf_build(codes, doc_offsets, len(codec["centroids"]))
        profile["ivf_s"] = time.perf_counter() - clock
        arrays = {"codes": codes, "residuals": residuals, "doc_offsets": doc_offsets,
                  "ivf_offsets": ivf_offsets, "ivf_doc_ids": ivf_doc_ids}
        clock = time.perf_counter()
        self._store.commit(codec=new_codec, segment=(arrays, ids,
                                                     list(metadata) if metadata else None))
        self._register(self._store.segments[-1], check=False)
        profile["write_s"] = time.perf_counter() - clock
        #: Wall times (s) of the last add's phases, for profiling (bench/plaid.py).
        self.last_add_profile = profile

    def _train_codec(self, tokens: np.ndarray, profile: dict[str, float]
                     ) -> dict[str, np.ndarray]:
        s = self._store.settings
        n_tokens = tokens.shape[0]
        n_centroids = s["n_centroids"] or default_n_centroids(n_tokens)
        n_sample = min(n_tokens, max(n_centroids, 1) * int(s["sample_per_centroid"]))
        n_centroids = min(n_centroids, n_sample)
        picks = np.sort(_core.sample_indices(n_tokens, n_sample, int(s["seed"])))
        sample = np.ascontiguousarray(tokens[picks])
        clock = time.perf_counter()
        centroids = _core.kmeans_fit(sample, n_centroids, int(s["kmeans_iters"]), int(s["seed"]))
        profile["kmeans_s"] = time.perf_counter() - clock
        profile["kmeans_sample"] = float(n_sample)
        profile["n_centroids"] = float(n_centroids)
        clock = time.perf_counter()
        sample_codes = _core.kmeans_assign(sample, centroids)
        cutoffs, weights = _core.codec_fit_buckets(sample, sample_codes, centroids, self.nbits)
        profile["buckets_s"] = time.perf_counter() - clock
        return {"centroids": centroids, "bucket_cutoffs": cutoffs, "bucket_weights": weights}

    # ---- searching -----------------------------------------------------------------------

    @staticmethod
    def _segment_tuple(seg: StoredSegment, mask: np.ndarray | None) -> tuple:
        a = seg.arrays
        return (a["codes"], a["residuals"], a["doc_offsets"], a["ivf_offsets"], a["ivf_doc_ids"],
                mask)

    def _resolve_params(self, k: int, mode: str, ncells: Any, centroid_score_threshold: Any,
                        ndocs: Any) -> dict[str, Any]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        params = default_search_params(k)
        if ncells is not None:
            params["ncells"] = _validate.positive_int(ncells, "ncells")
        if ndocs is not None:
            params["ndocs"] = _validate.positive_int(ndocs, "ndocs")
        if centroid_score_threshold is not None:
            if isinstance(centroid_score_threshold, bool) or \
                    not isinstance(centroid_score_threshold, numbers.Real):
                raise TypeError("centroid_score_threshold must be a number (or -inf to disable "
                                f"pruning); got {type(centroid_score_threshold).__name__}")
            if math.isnan(centroid_score_threshold):
                raise ValueError("centroid_score_threshold must not be NaN")
            params["centroid_score_threshold"] = float(centroid_score_threshold)
        return params

    def search(self, queries: Any, k: int = 10, mode: str = "plaid", ncells: int | None = None,
               centroid_score_threshold: float | None = None, ndocs: int | None = None,
               return_stats: bool = False) -> Any:
        """Top-k documents for one query ((Lq, dim) float array) -> list[Hit], or for a list of
        queries -> list[list[Hit]]. Each list holds min(k, number of documents) hits, best
        first (ties: earlier-added document first).

        mode: "plaid" (staged search) or "exact" (every document scored from its codes).
        ncells / centroid_score_threshold / ndocs override PLAID's per-k defaults
        (``default_search_params``); a threshold of -inf disables centroid pruning.
        return_stats=True returns (hits, stats) with per-stage wall times (ms) and counts.
        """
        k = _validate.positive_int(k, "k")
        params = self._resolve_params(k, mode, ncells, centroid_score_threshold, ndocs)
        stacked, query_offsets, single = _validate.query_batch(queries, self.dim)
        n_queries = len(query_offsets) - 1
        t0 = time.perf_counter()
        if not self._store.segments:
            scores = np.zeros((n_queries, 0), np.float32)
            gids = np.zeros((n_queries, 0), np.int64)
            raw_stats = np.zeros((n_queries, len(_STAT_FIELDS)))
        else:
            codec = self._store.codec
            segments = [self._segment_tuple(seg, None) for seg in self._store.segments]
            scores, gids, raw_stats = _core.plaid_search(
                stacked, query_offsets, np.ascontiguousarray(codec["centroids"]),
                np.ascontiguousarray(codec["bucket_weights"]), self.nbits, segments, k,
                params["ncells"], params["centroid_score_threshold"], params["ndocs"],
                mode == "exact")
        wall_ms = 1000.0 * (time.perf_counter() - t0)
        hits = [[Hit(self._ids[g], float(s), r) for r, (g, s) in
                 enumerate(zip(gids[q].tolist(), scores[q].tolist()))] for q in range(n_queries)]
        result: Any = hits[0] if single else hits
        if not return_stats:
            return result
        per_query = [{f: (float(v) if f.endswith("_ms") else int(v))
                      for f, v in zip(_STAT_FIELDS, row)} for row in raw_stats.tolist()]
        stats = {"mode": mode, "k": k, **params, "n_queries": n_queries, "wall_ms": wall_ms,
                 "stages_ms": {f[:-3]: float(raw_stats[:, i].sum())
                               for i, f in enumerate(_STAT_FIELDS) if f.endswith("_ms")},
                 "counts_mean": {f[2:]: float(raw_stats[:, i].mean()) if n_queries else 0.0
                                 for i, f in enumerate(_STAT_FIELDS) if f.startswith("n_")},
                 "per_query": per_query}
        return result, stats

    def rerank(self, query: Any, ids: Sequence[str]) -> list[Hit]:
        """Exact MaxSim (from the stored codes) of one query against the documents ``ids``
        -> list[Hit] over all of them, best first (ties: earlier-added document first)."""
        q = _validate.float_matrix(query, "query", self.dim)
        ids = _ids_list(ids)
        gids = []
        for x in ids:
            g = self._id_to_global.get(x)
            if g is None:
                raise ValueError(f"unknown id {x!r}")
            gids.append(g)
        if not gids:
            return []
        gids_arr = np.asarray(gids, dtype=np.int64)
        scores = np.empty(len(gids), dtype=np.float32)
        codec = self._store.codec
        bases = np.asarray(self._bases, dtype=np.int64)
        seg_of = np.searchsorted(bases, gids_arr, side="right") - 1
        for s in np.unique(seg_of).tolist():
            sel = np.flatnonzero(seg_of == s)
            seg = self._store.segments[s]
            scores[sel] = _core.plaid_score_docs(
                q, np.ascontiguousarray(codec["centroids"]),
                np.ascontiguousarray(codec["bucket_weights"]), self.nbits,
                self._segment_tuple(seg, None), gids_arr[sel] - self._bases[s])
        order = np.lexsort((gids_arr, -scores.astype(np.float64)))
        return [Hit(ids[i], float(scores[i]), r) for r, i in enumerate(order.tolist())]

    # ---- information ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def stats(self) -> dict[str, Any]:
        """n_docs, n_tokens, n_centroids, nbits, dim, n_segments, bytes_on_disk,
        bytes_per_token (whole folder / tokens), code_bytes_per_token (codes + residuals)."""
        segs = self._store.segments
        n_tokens = sum(s.n_tokens for s in segs)
        code_bytes = sum(s.arrays["codes"].nbytes + s.arrays["residuals"].nbytes for s in segs)
        on_disk = self._store.bytes_on_disk()
        codec = self._store.codec
        return {"n_docs": len(self._ids), "n_tokens": n_tokens,
                "n_centroids": 0 if codec is None else int(codec["centroids"].shape[0]),
                "nbits": self.nbits, "dim": self.dim, "n_segments": len(segs),
                "bytes_on_disk": on_disk,
                "bytes_per_token": on_disk / n_tokens if n_tokens else 0.0,
                "code_bytes_per_token": code_bytes / n_tokens if n_tokens else 0.0}

    @property
    def path(self) -> str:
        return str(self._store.path)
