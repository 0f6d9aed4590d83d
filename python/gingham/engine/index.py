"""``gingham.Index``: a durable, mutable late-interaction index (contract: INDEX_API.md).

Storage kinds: ``"residual"`` (compressed PLAID / ColBERTv2 codes, ``_segment_residual``) and
the flat exact kinds ``"fp32" | "fp16" | "int8"`` (``_segment_flat``). Both sit on
``gingham.storage`` (immutable segment folders + one SQLite catalog, docs/format.md): every
``add`` appends a segment in one commit, ``delete`` tombstones, ``compact`` merges.

Scores are raw MaxSim sums: for each query token the best dot product with any of the
document's stored tokens (decoded, for residual), summed over query tokens. Results are
ordered by score, ties by internal id (= insertion order; upserted documents count as new).

Threads: any number of threads may search one Index while one thread writes. A search runs on
the view (snapshot + checked segment arrays) it took when it started; writes are serialized and
publish a new view when they commit; ``refresh()`` picks up other writers' commits.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from .. import _core
from ..storage import CorruptionError, DuplicateIdError, Merged, Snapshot, StorageError, Store
from . import flat, residual
from . import validate as _validate
from .csr import merge_topk
from .residual import default_n_centroids  # noqa: F401  (public helper)

MODES = ("plaid", "exact")
STORAGE_KINDS = ("residual",) + flat.KINDS
_INDEX_KEYS = ("gingham_index", "storage", "dim", "nbits", "n_centroids", "seed",
               "kmeans_iters", "sample_per_centroid", "model", "user_settings")


class Hit(NamedTuple):
    """One search result: the caller's document id, its MaxSim score and its 0-based rank."""

    id: str
    score: float
    rank: int


def default_search_params(k: int) -> dict[str, Any]:
    """PLAID's per-k defaults: k <= 10: 1/0.5/256; k <= 100: 2/0.45/1024; else 4/0.4/4096."""
    ncells, threshold, ndocs = _core.plaid_default_params(k)
    return {"ncells": int(ncells), "centroid_score_threshold": float(threshold),
            "ndocs": int(ndocs)}


def _ids_list(ids: Any, name: str = "ids") -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"{name} must be a list of strings; got {type(ids).__name__}")
    out = list(ids)
    seen: set[str] = set()
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{name}[{i}] must be a string; got {type(x).__name__}")
        if not x:
            raise ValueError(f"{name}[{i}] must be a non-empty string")
        if x in seen:
            raise ValueError(f"{name} holds {x!r} more than once")
        seen.add(x)
    return out


def _non_negative_int(x: Any, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0:
        raise TypeError(f"{name} must be a non-negative integer; got {x!r}")
    return int(x)


def _folder_of(arrays: dict, fallback: Path) -> Path:
    """Folder of memory-mapped arrays (to name it in errors)."""
    for arr in arrays.values():
        name = getattr(arr, "filename", None)
        if name:
            return Path(name).parent
    return fallback


class _View:
    """What one search needs, fixed at one commit: the snapshot and its checked segments."""

    def __init__(self, snap: Snapshot, segments: list, codecs: dict):
        self.snap = snap
        self.segments = segments            # storage.SegmentView, segment-id order
        self.codecs = codecs                # codec version -> arrays (residual only)
        self.position = {s.id: i for i, s in enumerate(segments)}
        self.all_live = [not s.n_docs or bool(s.live.all()) for s in segments]

    def masks(self, selected: np.ndarray | None) -> list:
        """Per-segment uint8 masks (None = every row searchable) for a selection of internal
        ids (None = every live document)."""
        if selected is None:
            return [None if full else np.ascontiguousarray(s.live)
                    for s, full in zip(self.segments, self.all_live)]
        return self.snap.masks(selected)


class Index:
    """A multi-vector index in a folder; create with ``Index.create``, open with ``Index.open``."""

    def __init__(self, store: Store):
        self._store = store
        s = store.settings
        if s.get("gingham_index") != 1 or s.get("storage") not in STORAGE_KINDS:
            store.close()
            raise ValueError(f"{store.path} is a gingham store but not a gingham Index "
                             f"(settings {sorted(s)})")
        self.dim: int = int(s["dim"])
        self.storage: str = s["storage"]
        self.nbits: int | None = int(s["nbits"]) if self.storage == "residual" else None
        self._write_mutex = threading.Lock()
        self._checked: dict[tuple[str, str], bool] = {}
        #: Wall times (s) of the last add's phases, for profiling (bench/plaid.py).
        self.last_add_profile: dict[str, float] = {}
        self._view = self._make_view(store.snapshot())

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, dim: int, *, storage: str = "residual",
               nbits: int = 2, n_centroids: int | None = None, seed: int = 0,
               model: str | None = None, settings: dict | None = None, overwrite: bool = False,
               kmeans_iters: int = 10, sample_per_centroid: int = 32,
               lock_timeout: float = 10.0) -> "Index":
        """Create an empty index folder at ``path`` (absent or empty, or an existing gingham
        index when ``overwrite=True``).

        dim: token dimension; storage: "residual" (compressed, PLAID search) or "fp32" /
        "fp16" / "int8" (flat, exhaustive); nbits: residual bits per dimension (1, 2, 4; dim *
        nbits a multiple of 8); n_centroids: k-means centroids (default 2^floor(log2(16
        sqrt(n_tokens))) of the first add, capped by the sample); seed, kmeans_iters,
        sample_per_centroid: codec training; model: encoder name (recorded only); settings:
        extra JSON dict stored in the catalog and merged into ``idx.settings``.
        """
        dim = _validate.positive_int(dim, "dim")
        if storage not in STORAGE_KINDS:
            raise ValueError(f"storage must be one of {', '.join(STORAGE_KINDS)}; "
                             f"got {storage!r}")
        own: dict[str, Any] = {"gingham_index": 1, "storage": storage, "dim": dim,
                               "model": model}
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a string or None; got {type(model).__name__}")
        if storage == "residual":
            nbits = _validate.positive_int(nbits, "nbits")
            if nbits not in (1, 2, 4):
                raise ValueError(f"nbits must be 1, 2 or 4; got {nbits}")
            if dim * nbits % 8:
                raise ValueError(f"dim * nbits must be a multiple of 8; got dim {dim}, "
                                 f"nbits {nbits}")
            own.update(nbits=nbits, seed=_non_negative_int(seed, "seed"),
                       n_centroids=None if n_centroids is None else
                       _validate.positive_int(n_centroids, "n_centroids"),
                       kmeans_iters=_non_negative_int(kmeans_iters, "kmeans_iters"),
                       sample_per_centroid=_validate.positive_int(sample_per_centroid,
                                                                  "sample_per_centroid"))
        user = {} if settings is None else settings
        if not isinstance(user, dict) or not all(isinstance(k, str) for k in user):
            raise TypeError("settings must be a dict with string keys")
        clash = sorted(set(user) & set(_INDEX_KEYS))
        if clash:
            raise ValueError(f"settings keys {clash} are reserved by the index")
        try:
            json.dumps(user, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"settings must be JSON-serializable: {exc}") from None
        own["user_settings"] = user
        root = Path(path)
        if overwrite and root.exists() and any(root.iterdir()):
            if not (root / "catalog.sqlite").is_file():
                raise FileExistsError(f"{root} is not a gingham index; overwrite=True only "
                                      "replaces an existing index")
            shutil.rmtree(root)
        return cls(Store.create(root, own, lock_timeout=lock_timeout))

    @classmethod
    def open(cls, path: str | os.PathLike, *, lock_timeout: float = 10.0) -> "Index":
        """Open an existing index (segments memory-mapped; structural checks per segment)."""
        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"no gingham index at {str(root)!r}")
        if not (root / "catalog.sqlite").is_file():
            raise ValueError(f"{str(root)!r} is not a gingham index (no catalog.sqlite)")
        return cls(Store.open(root, lock_timeout=lock_timeout))

    def close(self) -> None:
        """Release the catalog connections (searches already running finish)."""
        self._store.close()
        self._view.snap.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- views ---------------------------------------------------------------------------

    def _make_view(self, snap: Snapshot) -> _View:
        try:
            codecs = {}
            if self.storage == "residual":
                for version, arrays in snap.codecs.items():
                    folder = _folder_of(arrays, self._store.path / "codec")
                    if (str(folder), "codec") not in self._checked:
                        residual.check_codec(folder, arrays, self.dim, self.nbits)
                        self._checked[(str(folder), "codec")] = True
                    codecs[version] = arrays
            for seg in snap.segments:
                self._check_segment(seg, codecs)
        except BaseException:
            snap.close()
            raise
        return _View(snap, list(snap.segments), codecs)

    def _check_segment(self, seg, codecs: dict, force: bool = False) -> None:
        key = (str(seg.folder), seg.files.manifest_sha256)
        if key in self._checked and not force:
            return
        if self.storage == "residual":
            codec = codecs.get(seg.codec_version)
            if codec is None:
                raise CorruptionError(seg.folder / "manifest.json", "residual segment without "
                                                                     "a codec")
            residual.check_segment(seg.folder, seg.arrays, seg.n_docs, len(codec["centroids"]),
                                   self.dim, self.nbits)
        else:
            flat.check_segment(seg.folder, seg.arrays, seg.n_docs, self.storage, self.dim)
        self._checked[key] = True

    def _publish(self, deleted=None) -> None:
        """Install a view of the latest commit; ``deleted`` (this Index's delete result, just
        committed) lets the store derive it from the current view in O(deleted ids)."""
        self._view = self._make_view(self._store.snapshot(base=self._view.snap,
                                                          deleted=deleted))
        # The old view's snapshot closes when the last search holding it lets it go.

    def refresh(self) -> None:
        """See the commits made since by other Index objects or processes."""
        with self._write_mutex:
            self._publish()

    # ---- writes --------------------------------------------------------------------------

    def add(self, ids: Sequence[str], embeddings: Sequence[Any],
            metadata: Sequence[Any] | None = None, texts: Sequence[Any] | None = None, *,
            upsert: bool = False) -> None:
        """Add documents in one commit.

        ids: unique non-empty strings; embeddings: one (n_i, dim) finite float array per id,
        n_i >= 1; metadata: one JSON dict (or None) per id; texts: one str (or None) per id.
        An id already in the index raises ValueError (before anything is written) unless
        upsert=True, which replaces it. The first add of a residual index trains the codec on
        a sample of its tokens and commits codec and segment together.
        """
        ids = _ids_list(ids)
        if not ids:
            raise ValueError("ids must hold at least one document")
        if isinstance(embeddings, np.ndarray) and embeddings.ndim == 3:
            embeddings = list(embeddings)
        if not isinstance(embeddings, Sequence) or isinstance(embeddings, (str, bytes)):
            raise TypeError("embeddings must be a list of (n_tokens, dim) float arrays")
        if len(embeddings) != len(ids):
            raise ValueError(f"embeddings must hold one array per id: {len(ids)} ids, "
                             f"{len(embeddings)} embeddings")
        metadata = self._check_per_doc(metadata, len(ids), "metadata", dict)
        texts = self._check_per_doc(texts, len(ids), "texts", str)
        mats = [_validate.float_matrix(e, f"embeddings[{i}]", self.dim)
                for i, e in enumerate(embeddings)]
        doc_offsets = np.zeros(len(mats) + 1, dtype=np.int64)
        np.cumsum([m.shape[0] for m in mats], out=doc_offsets[1:])
        tokens = np.concatenate(mats, axis=0) if len(mats) > 1 else mats[0]
        del mats
        profile: dict[str, float] = {"n_tokens": float(tokens.shape[0])}
        with self._write_mutex, self._store.write_lock():
            with self._store.snapshot() as snap:
                if not upsert:
                    found = snap.resolve(ids, missing="ignore")
                    if found.size:
                        dup = snap.external_ids(found[:5])
                        raise DuplicateIdError(f"{found.size} id(s) already in the index, "
                                               f"e.g. {dup!r}; pass upsert=True to replace")
                codec, new_codec = snap.codec, None
            if self.storage == "residual":
                if codec is None:
                    codec = new_codec = residual.train_codec(tokens, self._store.settings,
                                                             profile)
                arrays = residual.encode(tokens, doc_offsets, codec, self.nbits, profile)
            else:
                clock = time.perf_counter()
                arrays = flat.encode(tokens, doc_offsets, self.storage)
                profile["encode_s"] = time.perf_counter() - clock
            del tokens
            clock = time.perf_counter()
            self._store.add(ids, arrays, metadata=metadata, texts=texts, upsert=upsert,
                            codec=new_codec)
            profile["write_s"] = time.perf_counter() - clock
            self._publish()
        self.last_add_profile = profile

    @staticmethod
    def _check_per_doc(values: Any, n: int, name: str, kind: type) -> list | None:
        if values is None:
            return None
        if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence) \
                or len(values) != n:
            raise ValueError(f"{name} must be a list with one entry per id ({n})")
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, kind):
                raise TypeError(f"{name}[{i}] must be a {kind.__name__} or None; "
                                f"got {type(v).__name__}")
            if kind is dict:
                try:
                    json.dumps(v, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"{name}[{i}] must be JSON-serializable: {exc}") from None
        return list(values)

    def delete(self, ids: Sequence[str], *, missing: str = "raise") -> int:
        """Tombstone documents in one commit (O(len(ids))) -> number deleted.

        missing: "raise" (KeyError naming unknown ids, nothing deleted) or "ignore"."""
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(f"ids must be a list of strings; got {type(ids).__name__}")
        with self._write_mutex:
            result = self._store.delete(list(ids), missing=missing)
            self._publish(result)
        return int(result.n_docs)

    def compact(self, *, retrain: bool = False) -> None:
        """Merge every segment into one and drop deleted documents, in one commit.

        Stored codes / tokens are copied unchanged, so scores do not change. retrain=True
        (residual only) refits the codec on the decoded tokens of the live documents (the
        original vectors are not kept) and re-encodes them."""
        if not isinstance(retrain, bool):
            raise TypeError("retrain must be True or False")
        with self._write_mutex:
            view = self._view
            if not retrain and len(view.segments) <= 1 and all(view.all_live):
                self._publish()  # already compact; still pick up other writers' commits
                return
            self._store.compact(lambda inp: self._merge(inp, retrain))
            self._publish()

    def _merge(self, inp, retrain: bool):
        arrays = [s.arrays for s in inp.segments]
        if self.storage != "residual":
            return flat.merge(arrays, inp.rows)
        codec = inp.codec
        if any(s.codec_version != inp.codec_version for s in inp.segments):
            raise StorageError("segments use different codec versions; compact(retrain=True)")
        if not retrain:
            return residual.merge(codec, arrays, inp.rows)
        decoded = [residual.decode_rows(codec, self.nbits, a, r)
                   for a, r in zip(arrays, inp.rows)]
        tokens = np.ascontiguousarray(np.concatenate([d[0] for d in decoded]))
        offsets = np.zeros(sum(len(d[1]) - 1 for d in decoded) + 1, dtype=np.int64)
        np.cumsum(np.concatenate([np.diff(d[1]) for d in decoded]), out=offsets[1:])
        profile: dict[str, float] = {}
        new_codec = residual.train_codec(tokens, inp.settings, profile)
        return Merged(residual.encode(tokens, offsets, new_codec, self.nbits, profile),
                      new_codec)

    # ---- searching -----------------------------------------------------------------------

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

    @staticmethod
    def _selection(view: _View, subset: Any, where: Any, params: Any) -> np.ndarray | None:
        """Internal ids allowed by subset / where (None: no filter). Unknown or deleted ids
        in subset match nothing."""
        if params is not None and where is None:
            raise ValueError("params is given without where")
        selected = None
        if subset is not None:
            if isinstance(subset, (str, bytes)) or not isinstance(subset, Sequence):
                raise TypeError("subset must be a list of ids")
            selected = np.unique(view.snap.resolve(list(subset), missing="ignore"))
        if where is not None:
            chosen = view.snap.where(where, () if params is None else params)
            selected = chosen if selected is None else np.intersect1d(selected, chosen)
        return selected

    def search(self, queries: Any, k: int = 10, *, mode: str = "plaid", subset: Any = None,
               where: str | None = None, params: Any = None, ncells: int | None = None,
               centroid_score_threshold: float | None = None, ndocs: int | None = None,
               return_stats: bool = False, with_documents: bool = False) -> Any:
        """Top-k documents for one query ((Lq, dim) float array) -> list[Hit], or for a list of
        queries -> list[list[Hit]]. Each list holds exactly min(k, matching live documents)
        hits, best first (ties: lower internal id, i.e. earlier added).

        mode: "plaid" (staged search; residual only, flat kinds are always exact) or "exact".
        subset: ids to search within (unknown / deleted ids match nothing); where: SQL
        expression over the documents' metadata JSON (column ``metadata``; also
        ``external_id``, ``text``), e.g. "json_extract(metadata, '$.lang') = ?", with values in
        params (bound, never formatted in). ncells / centroid_score_threshold / ndocs override
        PLAID's per-k defaults. return_stats=True returns (hits, stats dict).
        with_documents=True returns each hit as {"id", "score", "rank", "metadata", "text"},
        read for all queries in one batched catalog query.
        """
        k = _validate.positive_int(k, "k")
        search_params = self._resolve_params(k, mode, ncells, centroid_score_threshold, ndocs)
        stacked, query_offsets, single = _validate.query_batch(queries, self.dim)
        view = self._view  # one commit for the whole call, whatever writers do meanwhile
        t0 = time.perf_counter()
        masks = view.masks(self._selection(view, subset, where, params))
        n_queries = len(query_offsets) - 1
        parts: list[list] = [[] for _ in range(n_queries)]
        raw_stats = np.zeros((n_queries, len(residual.STAT_FIELDS)))
        keep = [i for i, m in enumerate(masks) if m is None or m.any()]
        if self.storage == "residual":
            groups: dict[int, list[int]] = {}
            for i in keep:
                groups.setdefault(view.segments[i].codec_version, []).append(i)
            for version, members in groups.items():
                scores, seg, rows, st = residual.search(
                    view.codecs[version], self.nbits, [view.segments[i].arrays for i in members],
                    [masks[i] for i in members], stacked, query_offsets, k, search_params,
                    mode == "exact")
                raw_stats += st
                seg = np.asarray(members, dtype=np.int64)[seg]
                self._collect(view, parts, scores, seg, rows)
        else:
            for i in keep:
                scores, rows = flat.search(view.segments[i].arrays, masks[i], stacked,
                                           query_offsets, k)
                raw_stats[:, 8] += scores.shape[1]
                self._collect(view, parts, scores, np.full(rows.shape, i, np.int64), rows)
        merged = [merge_topk(parts[q], k) for q in range(n_queries)]
        hits = (self._document_hits(view, merged) if with_documents else
                [[Hit(view.segments[s].external_id(r), float(sc), rank) for rank, (sc, s, r)
                  in enumerate(zip(scores.tolist(), seg.tolist(), rows.tolist()))]
                 for scores, _, seg, rows in merged])
        wall_ms = 1000.0 * (time.perf_counter() - t0)
        result: Any = hits[0] if single else hits
        if not return_stats:
            return result
        return result, self._stats_dict(mode, k, search_params, raw_stats, wall_ms)

    @staticmethod
    def _document_hits(view: _View, merged: list) -> list[list[dict[str, Any]]]:
        internal = np.concatenate([m[1] for m in merged]) if merged else np.zeros(0, np.int64)
        docs = dict(zip(internal.tolist(), view.snap.documents(internal)))
        return [[{**docs[i], "score": float(sc), "rank": rank}
                 for rank, (sc, i) in enumerate(zip(scores.tolist(), ids.tolist()))]
                for scores, ids, _, _ in merged]

    @staticmethod
    def _collect(view: _View, parts: list, scores, seg, rows) -> None:
        if not scores.shape[1]:
            return
        internal = np.empty(rows.shape, dtype=np.int64)
        for s in np.unique(seg).tolist():
            sel = seg == s
            internal[sel] = view.segments[s].internal_ids[rows[sel]]
        for q in range(scores.shape[0]):
            parts[q].append((scores[q], internal[q], seg[q], rows[q]))

    def _stats_dict(self, mode: str, k: int, params: dict, raw: np.ndarray, wall_ms: float
                    ) -> dict:
        fields = residual.STAT_FIELDS
        n_queries = raw.shape[0]
        per_query = [{f: (float(v) if f.endswith("_ms") else int(v))
                      for f, v in zip(fields, row)} for row in raw.tolist()]
        effective = mode if self.storage == "residual" else "exact"
        return {"mode": effective, "storage": self.storage, "k": k, **params,
                "n_queries": n_queries, "wall_ms": wall_ms,
                "stages_ms": {f[:-3]: float(raw[:, i].sum())
                              for i, f in enumerate(fields) if f.endswith("_ms")},
                "counts_mean": {f[2:]: float(raw[:, i].mean()) if n_queries else 0.0
                                for i, f in enumerate(fields) if f.startswith("n_")},
                "per_query": per_query}

    def rerank(self, query: Any, ids: Sequence[str], k: int | None = None) -> list[Hit]:
        """Exact MaxSim (from the stored data) of one query (Lq, dim) against the documents
        ``ids`` -> list[Hit], best first (ties: lower internal id); the best k if k is given.
        KeyError if an id is not in the index."""
        q = _validate.float_matrix(query, "query", self.dim)
        ids = _ids_list(ids)
        if k is not None:
            k = _validate.positive_int(k, "k")
        view = self._view
        if not ids:
            return []
        internal, seg_ids, rows = view.snap.rows(ids)
        pos = np.array([view.position[s] for s in seg_ids.tolist()], dtype=np.int64)
        scores = np.empty(len(ids), dtype=np.float32)
        for p in np.unique(pos).tolist():
            sel = np.flatnonzero(pos == p)
            seg = view.segments[p]
            if self.storage == "residual":
                scores[sel] = residual.score_rows(view.codecs[seg.codec_version], self.nbits,
                                                  seg.arrays, q, rows[sel])
            else:
                scores[sel] = flat.score_rows(seg.arrays, q, rows[sel])
        order = np.lexsort((internal, -scores.astype(np.float64)))[:k]
        return [Hit(ids[i], float(scores[i]), r) for r, i in enumerate(order.tolist())]

    # ---- documents -----------------------------------------------------------------------

    def get(self, id: str) -> dict[str, Any]:
        """{"id", "metadata" (dict), "text" (str or None)} of one document; KeyError if
        unknown."""
        if not isinstance(id, str):
            raise TypeError(f"id must be a string; got {type(id).__name__}")
        return self.documents([id])[0]

    def documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """{"id", "metadata" (dict), "text" (str or None)} of each id, in input order, read in
        one batched catalog query; KeyError naming the ids not in the index."""
        snap = self._view.snap
        return snap.documents(snap.resolve(_ids_list(ids)))

    def tokens(self, id: str) -> np.ndarray:
        """Stored token vectors of one document as float32 (n_tokens, dim) (decoded for
        residual, dequantized for int8); KeyError if unknown."""
        if not isinstance(id, str):
            raise TypeError(f"id must be a string; got {type(id).__name__}")
        view = self._view
        _, seg_ids, rows = view.snap.rows([id])
        seg = view.segments[view.position[int(seg_ids[0])]]
        if self.storage == "residual":
            return residual.decode_rows(view.codecs[seg.codec_version], self.nbits, seg.arrays,
                                        rows)[0]
        return flat.decode_rows(seg.arrays, rows)[0]

    def __len__(self) -> int:
        return len(self._view.snap)

    def ids(self) -> list[str]:
        """Ids of every live document, in insertion (internal id) order."""
        return self._view.snap.ids()

    @property
    def settings(self) -> dict[str, Any]:
        """The index's settings (storage, dim, nbits, model, ...) and the user's settings."""
        s = dict(self._view.snap.settings)
        user = s.pop("user_settings", None) or {}
        s.pop("gingham_index", None)
        return {**s, **user}

    @property
    def path(self) -> str:
        return str(self._store.path)

    def stats(self) -> dict[str, Any]:
        """n_docs (live), n_tokens (of live documents), n_tokens_stored (deleted ones
        included until compact), n_deleted, n_segments, storage, dim, nbits, n_centroids,
        commit, bytes_on_disk (every file of the folder), bytes_per_token (folder / stored
        tokens), data_bytes_per_token (codes + residuals + scales, or tokens + token_scales)."""
        view = self._view
        n_tokens = n_stored = n_deleted = data_bytes = 0
        for seg in view.segments:
            a = seg.arrays
            lens = np.diff(np.asarray(a["doc_offsets"]))
            n_stored += int(lens.sum())
            n_tokens += int(lens[seg.live != 0].sum())
            n_deleted += seg.n_docs - seg.n_live
            data_bytes += sum(a[n].nbytes for n in ("codes", "residuals", "scales", "tokens",
                                                    "token_scales") if n in a)
        codec = view.snap.codec
        on_disk = sum(f.stat().st_size for f in Path(self.path).rglob("*") if f.is_file())
        out = {"n_docs": len(view.snap), "n_tokens": n_tokens, "n_tokens_stored": n_stored,
               "n_deleted": n_deleted, "n_segments": len(view.segments),
               "storage": self.storage, "dim": self.dim, "nbits": self.nbits,
               "n_centroids": 0 if codec is None else int(codec["centroids"].shape[0]),
               "commit": view.snap.commit, "bytes_on_disk": on_disk,
               "bytes_per_token": on_disk / n_stored if n_stored else 0.0,
               "data_bytes_per_token": data_bytes / n_stored if n_stored else 0.0}
        if self.storage == "residual":
            out["code_bytes_per_token"] = out["data_bytes_per_token"]
        return out

    def verify(self) -> dict[str, Any]:
        """Check every file's checksum, every catalog row and every structural invariant of
        every segment. Raises ``storage.CorruptionError`` naming the bad file; returns the
        store's summary otherwise."""
        summary = self._store.verify()
        with self._store.snapshot() as snap:
            for arrays in snap.codecs.values():
                if self.storage == "residual":
                    residual.check_codec(_folder_of(arrays, self._store.path / "codec"),
                                         arrays, self.dim, self.nbits)
            for seg in snap.segments:
                self._check_segment(seg, snap.codecs, force=True)
        return summary
