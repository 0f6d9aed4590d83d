"""``gingham.Index``: a durable, mutable late-interaction index.

Storage kinds (engine/kinds.py): ``"residual"`` (compressed PLAID / ColBERTv2 codes,
engine/residual.py) and the flat exact kinds ``"fp32" | "fp16" | "int8"`` (engine/flat.py).
Both sit on ``gingham.storage`` (immutable segment folders + one SQLite catalog,
docs/format.md): every ``add`` appends a segment in one commit, ``delete`` tombstones,
``compact`` merges.

Scores are raw MaxSim sums: for each query token the best dot product with any of the
document's stored tokens (decoded, for residual), summed over query tokens. Results are
ordered by score, ties by internal id (= insertion order; upserted documents count as new).

Threads: any number of threads may search one Index while one thread writes. A search runs on
the view (engine/view.py: snapshot + opened, checked segments) it took when it started;
writes are serialized and publish a new view when they commit; ``refresh()`` picks up other
writers' commits.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from itertools import compress
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from ..storage import DuplicateIdError, Snapshot, Store
from ..storage.lock import WriterLock
from . import flat, kinds, merging, residual  # noqa: F401  (flat, residual register kinds)
from . import validate as _validate
from .residual import default_n_centroids  # noqa: F401  (public helper)
from .validate import default_search_params  # noqa: F401  (public helper)
from .view import View, open_view

MODES = ("plaid", "exact")
_INDEX_KEYS = ("gingham_index", "storage", "dim", "nbits", "n_centroids", "seed",
               "kmeans_iters", "sample_per_centroid", "model", "user_settings")


def bytes_on_disk(root: Path) -> int:
    """Bytes of every file under ``root``. Files and folders that a writer renames or removes
    while this walks (a commit's tmp folder, segments a merge dropped) are left out, never an
    error: the figure describes the folder at about one moment."""
    total = 0
    for folder, _, names in os.walk(root):  # os.walk skips folders that vanish under it
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


class Hit(NamedTuple):
    """One search result: the caller's document id, its MaxSim score and its 0-based rank."""

    id: str
    score: float
    rank: int


def hits_of(view, merged: list) -> list[list[Hit]]:
    """Hit lists of merged results (per query: scores, internal ids, segment positions, rows),
    their ids read segment by segment (``View.hit_ids``)."""
    return [[Hit(d, sc, rank) for rank, (d, sc) in enumerate(zip(ids, m[0].tolist()))]
            for ids, m in zip(view.hit_ids(merged), merged)]


class Index:
    """A multi-vector index in a folder; create with ``Index.create``, open with ``Index.open``."""

    def __init__(self, store: Store):
        self._store = store
        s = store.settings
        if s.get("gingham_index") != 1 or s.get("storage") not in kinds.names():
            store.close()
            raise ValueError(f"{store.path} is a gingham store but not a gingham Index "
                             f"(settings {sorted(s)})")
        self.dim: int = int(s["dim"])
        self.storage: str = s["storage"]
        self.nbits: int | None = int(s["nbits"]) if "nbits" in s else None
        self._kind = kinds.make(s)
        self._write_mutex = threading.Lock()
        self._opened: dict = {}  # (folder, manifest sha) -> opened handle
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
        index when ``overwrite=True``, which first waits up to ``lock_timeout`` s for that
        index's writer lock and raises LockTimeoutError if another writer holds it).

        dim: token dimension; storage: "residual" (compressed, PLAID search) or "fp32" /
        "fp16" / "int8" (flat, exhaustive); nbits: residual bits per dimension (1, 2, 4; dim *
        nbits a multiple of 8); n_centroids: k-means centroids (default 2^floor(log2(16
        sqrt(n_tokens))) of the first add, capped by the sample); seed, kmeans_iters,
        sample_per_centroid: codec training; model: encoder name (recorded only); settings:
        extra JSON dict stored in the catalog and merged into ``idx.settings``.
        """
        dim = _validate.positive_int(dim, "dim")
        kind = kinds.kind_class(storage)
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a string or None; got {type(model).__name__}")
        own: dict[str, Any] = {"gingham_index": 1, "storage": storage, "dim": dim,
                               "model": model}
        own.update(kind.create_settings(dim, {
            "nbits": nbits, "n_centroids": n_centroids, "seed": seed,
            "kmeans_iters": kmeans_iters, "sample_per_centroid": sample_per_centroid}))
        own["user_settings"] = _validate.user_settings(settings, _INDEX_KEYS)
        root = Path(path)
        if overwrite and root.exists() and any(root.iterdir()):
            if not (root / "catalog.sqlite").is_file():
                raise FileExistsError(f"{root} is not a gingham index; overwrite=True only "
                                      "replaces an existing index")
            lock = WriterLock(root)  # never delete an index another writer is changing
            lock.acquire(lock_timeout)
            try:
                shutil.rmtree(root)
            finally:
                lock.release()
        return cls(Store.create(root, own, lock_timeout=lock_timeout))

    @classmethod
    def open(cls, path: str | os.PathLike, *, lock_timeout: float = 10.0,
             check: str = "header") -> "Index":
        """Open an existing index (segments memory-mapped; every array's header, the id maps
        and the files of at most 1 MiB checksummed, and each segment's structure checked by
        its kind once).

        check: "header" (the above) or "full" (also the sha256 of every large file, as
        ``verify()`` does: reads the whole index once)."""
        if check not in ("header", "full"):
            raise ValueError(f"check must be 'header' or 'full'; got {check!r}")
        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"no gingham index at {str(root)!r}")
        if not (root / "catalog.sqlite").is_file():
            raise ValueError(f"{str(root)!r} is not a gingham index (no catalog.sqlite)")
        return cls(Store.open(root, lock_timeout=lock_timeout, check=check))

    def close(self) -> None:
        """Release the catalog connections (searches already running finish)."""
        self._store.close()
        self._view.snap.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- views ---------------------------------------------------------------------------

    def _make_view(self, snap: Snapshot, force: bool = False) -> View:
        """The view of a snapshot; handles of folders already opened are reused unless
        ``force`` (verify)."""
        view, opened = open_view(snap, self._kind, {} if force else self._opened,
                                 self._store.path / "codec")
        if not force:
            self._opened = opened  # folders this commit no longer uses are let go
        return view

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
            upsert: bool = False, codec_sample: Any = None) -> None:
        """Add documents in one commit.

        ids: unique non-empty strings; embeddings: one (n_i, dim) finite float array per id,
        n_i >= 1; metadata: one JSON dict (or None) per id; texts: one str (or None) per id.
        An id already in the index raises ValueError (before anything is written) unless
        upsert=True, which replaces it. The first add of a residual index trains the codec on
        a sample of its tokens and commits codec and segment together; codec_sample, a
        (S, dim) float array of token rows drawn across the whole corpus (``sample_tokens``),
        trains it on those instead (residual only, first add only, and the index must have
        been created with n_centroids: the default depends on the corpus size).
        """
        ids, tokens, doc_offsets, metadata, texts = _validate.add_batch(
            ids, embeddings, metadata, texts, self.dim)
        if codec_sample is not None:
            codec_sample = self._checked_codec_sample(codec_sample)
        profile: dict[str, float] = {"n_tokens": float(tokens.shape[0])}
        with self._write_mutex, self._store.write_lock():
            with self._store.snapshot() as snap:
                if not upsert:
                    found = snap.resolve(ids, missing="ignore")
                    if found.size:
                        dup = snap.external_ids(found[:5])
                        raise DuplicateIdError(f"{found.size} id(s) already in the index, "
                                               f"e.g. {dup!r}; pass upsert=True to replace")
                codec = snap.codec
            trained = None
            if codec_sample is not None:
                if codec is not None:
                    raise ValueError("codec_sample was given but the index already has a "
                                     "codec (only the first add trains one)")
                codec = trained = self._kind.train_codec(codec_sample, self._store.settings,
                                                         profile)
            arrays, new_codec = self._kind.encode(tokens, doc_offsets, codec,
                                                  self._store.settings, profile)
            new_codec = trained if trained is not None else new_codec
            del tokens
            clock = time.perf_counter()
            self._store.add(ids, arrays, metadata=metadata, texts=texts, upsert=upsert,
                            codec=new_codec)
            profile["write_s"] = time.perf_counter() - clock
            self._publish()
        self.last_add_profile = profile

    def add_batches(self, batches: Iterable[tuple], *, upsert: bool = False,
                    codec_sample: Any = None) -> int:
        """Add an iterable of batches, one ``add`` (one commit) per batch, holding one batch
        at a time -> number of documents added. A failing batch raises; the batches before
        it stay committed.

        batches: tuples (ids, embeddings[, metadata[, texts]]) as ``add`` takes them, e.g.
        from ``csr_batches`` over a memory-mapped corpus or from a generator; codec_sample: as
        in ``add``, used by the first batch (a streamed build trains the codec on a sample
        drawn across the corpus, not on the first batch). ``last_add_profile`` then holds the
        phase times summed over the batches, and n_batches."""
        if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
            raise TypeError("batches must be an iterable of (ids, embeddings[, metadata"
                            f"[, texts]]) tuples; got {type(batches).__name__}")
        if codec_sample is not None:
            codec_sample = self._checked_codec_sample(codec_sample)
        total: dict[str, float] = {"n_batches": 0.0}
        n_docs = 0
        for i, batch in enumerate(batches):
            if not isinstance(batch, tuple) or not 2 <= len(batch) <= 4:
                raise TypeError(f"batches[{i}] must be a tuple (ids, embeddings[, metadata"
                                f"[, texts]]); got {type(batch).__name__}")
            self.add(*batch, upsert=upsert, codec_sample=codec_sample if i == 0 else None)
            for key, value in self.last_add_profile.items():
                total[key] = total.get(key, 0.0) + value
            total["n_batches"] += 1
            n_docs += len(batch[0])
        self.last_add_profile = total
        return n_docs

    def _checked_codec_sample(self, sample: Any) -> np.ndarray:
        """codec_sample as float32 (S, dim), or ValueError when this index cannot use one."""
        if not self._kind.staged:
            raise ValueError(f"codec_sample applies to residual indexes only; this index "
                             f"stores {self.storage!r}")
        if self._store.settings.get("n_centroids") is None:
            raise ValueError("codec_sample needs the index created with n_centroids (the "
                             "default depends on the corpus size, which a sample does not "
                             "tell: e.g. gingham.engine.default_n_centroids(total_tokens))")
        return _validate.float_matrix(sample, "codec_sample", self.dim)

    @property
    def codec_sample_size(self) -> int | None:
        """Token rows the codec trains on (n_centroids * sample_per_centroid): the size of
        the ``codec_sample`` to draw; None when not known yet (residual index created
        without n_centroids) or not used (flat kinds)."""
        s = self._store.settings
        if not self._kind.staged or s.get("n_centroids") is None:
            return None
        return int(s["n_centroids"]) * int(s["sample_per_centroid"])

    def delete(self, ids: Sequence[str], *, missing: str = "raise") -> int:
        """Tombstone documents in one commit (O(len(ids))) -> number deleted.

        missing: "raise" (KeyError naming unknown ids, nothing deleted) or "ignore"."""
        ids = _validate.sequence(ids, "ids", "strings")
        with self._write_mutex:
            result = self._store.delete(ids, missing=missing)
            self._publish(result)
        return int(result.n_docs)

    def compact(self, *, retrain: bool = False, max_segments: int | None = None) -> None:
        """Merge every segment into one and drop deleted documents, in one commit; or, with
        ``max_segments``, merge only the smallest segments (engine/merging.py: tier by tier)
        until at most that many remain, one commit per merge (nothing to do when there are
        already at most that many).

        Stored codes / tokens are copied unchanged, so scores do not change. retrain=True
        (residual only; not with max_segments) refits the codec on the decoded tokens of the
        live documents (the original vectors are not kept) and re-encodes them."""
        if not isinstance(retrain, bool):
            raise TypeError("retrain must be True or False")
        if max_segments is not None:
            max_segments = _validate.positive_int(max_segments, "max_segments")
            if retrain:
                raise ValueError("retrain=True re-encodes every segment; it takes no "
                                 "max_segments")
            if len(self._view.segments) > max_segments:
                self._compact_to(max_segments)
            return
        with self._write_mutex:
            view = self._view
            if not retrain and len(view.segments) <= 1 and all(view.all_live):
                self._publish()  # already compact; still pick up other writers' commits
                return
            self._store.compact(lambda inp: self._kind.merge(inp, retrain))
            self._publish()

    def _compact_to(self, max_segments: int) -> None:
        """Merge the segments ``merging.segments_to_merge`` picks until at most
        ``max_segments`` remain (only segments of the current codec version are merged)."""
        with self._write_mutex, self._store.write_lock():
            self._publish()  # other writers' commits first: the choice needs every segment
            while True:
                segments = self._view.segments
                codec = self._view.snap.codec_version
                candidates = [s for s in segments if s.codec_version == codec]
                if len(segments) - len(candidates) >= max_segments:
                    return  # segments of older codecs wait for compact(retrain=True)
                allowed = max_segments - (len(segments) - len(candidates))
                chosen = merging.segments_to_merge([s.n_live for s in candidates], allowed)
                if not chosen:
                    return
                self._store.compact(lambda inp: self._kind.merge(inp, False),
                                    segment_ids=[candidates[i].id for i in chosen])
                self._publish()

    # ---- searching -----------------------------------------------------------------------

    def search(self, queries: Any, k: int = 10, *, mode: str = "plaid", subset: Any = None,
               where: str | None = None, params: Any = None, ncells: int | None = None,
               centroid_score_threshold: float | None = None, ndocs: int | None = None,
               return_stats: bool = False, with_documents: bool = False,
               also_score: Any = None) -> Any:
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
        also_score: ids to score exactly beside the search (a list for one query, one list per
        query for a batch), as :meth:`rerank` would, whatever the filters: the search's query
        tables are reused, so this costs far less than a separate rerank. The result is then
        (hits, {id: score} for each live id of also_score; one dict per query for a batch),
        with the stats dict last when return_stats=True; unknown and deleted ids are left out.
        """
        k = _validate.positive_int(k, "k")
        search_params = _validate.search_params(k, mode, MODES, ncells, centroid_score_threshold,
                                                ndocs)
        stacked, query_offsets, single = _validate.query_batch(queries, self.dim)
        n_queries = len(query_offsets) - 1
        also_ids = (None if also_score is None else
                    _validate.ids_per_query(also_score, n_queries, single, "also_score"))
        view = self._view  # one commit for the whole call, whatever writers do meanwhile
        t0 = time.perf_counter()
        masks = view.masks(view.selection(subset, where, params))
        listed, live_ids = (None, None) if also_ids is None else self._listed(view, also_ids)
        merged, raw_stats, listed_scores = view.search(self._kind, masks, stacked,
                                                       query_offsets, k, search_params,
                                                       mode == "exact", listed)
        hits = view.document_hits(merged) if with_documents else hits_of(view, merged)
        wall_ms = 1000.0 * (time.perf_counter() - t0)
        out: list = [hits[0] if single else hits]
        if listed is not None:
            values = listed_scores.tolist()
            ends = listed.offsets.tolist()
            scored = [dict(zip(ids, values[ends[q]:ends[q + 1]]))
                      for q, ids in enumerate(live_ids)]
            out.append(scored[0] if single else scored)
        if return_stats:
            effective = mode if self._kind.staged else "exact"
            out.append({"mode": effective, "storage": self.storage, "k": k, **search_params,
                        "n_queries": n_queries, "wall_ms": wall_ms,
                        **kinds.stats_dict(raw_stats)})
        return out[0] if len(out) == 1 else tuple(out)

    @staticmethod
    def _listed(view, ids_per_query: list[list[str]]
                ) -> tuple[kinds.Listed, list[list[str]]]:
        """The live documents of each query's ids, located in ``view``, and their ids in the
        same order."""
        asked = (ids_per_query[0] if len(ids_per_query) == 1 else
                 [i for ids in ids_per_query for i in ids])
        pos, rows = view.live_rows(asked)
        live = pos >= 0
        if live.all():
            live_ids = ids_per_query
        else:
            marks = live.tolist()
            ends = np.cumsum([len(ids) for ids in ids_per_query]).tolist()
            live_ids = [list(compress(ids, marks[end - len(ids):end]))
                        for ids, end in zip(ids_per_query, ends)]
            pos, rows = pos[live], rows[live]
        offsets = np.zeros(len(ids_per_query) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids in live_ids], out=offsets[1:])
        return kinds.Listed(offsets, pos, rows), live_ids

    def plaid_candidates(self, queries: Any, k: int = 10, *, subset: Any = None,
                         where: str | None = None, params: Any = None, ncells: int | None = None,
                         centroid_score_threshold: float | None = None,
                         ndocs: int | None = None) -> Any:
        """Phase 1 of a PLAID search whose candidate cuts the caller takes over several
        indexes (engine/staged.py): ``PlaidCandidates`` of a list of queries (each (Lq, dim)),
        arguments as ``search``; ``.score`` finishes it. Residual storage only."""
        from .staged import PlaidCandidates  # staged imports Hit from this module
        if not self._kind.staged:
            raise ValueError(f"plaid_candidates needs residual storage; this index is "
                             f"{self.storage!r} (always exact)")
        k = _validate.positive_int(k, "k")
        search_params = _validate.search_params(k, "plaid", MODES, ncells,
                                                centroid_score_threshold, ndocs)
        stacked, query_offsets, _ = _validate.query_batch(queries, self.dim)
        view = self._view
        masks = view.masks(view.selection(subset, where, params))
        return PlaidCandidates(view, masks, stacked, query_offsets, k, search_params)

    def rerank(self, query: Any, ids: Sequence[str], k: int | None = None, *,
               missing: str = "raise") -> list[Hit]:
        """Exact MaxSim (from the stored data) of one query (Lq, dim) against the documents
        ``ids`` -> list[Hit], best first (ties: lower internal id); the best k if k is given.
        missing: "raise" (KeyError if an id is not a live document) or "ignore" (leave such
        ids out)."""
        q = _validate.float_matrix(query, "query", self.dim)
        ids = _validate.ids_list(ids)
        if k is not None:
            k = _validate.positive_int(k, "k")
        view = self._view
        if not ids:
            return []
        internal, pos, rows = view.located(ids, missing=missing)
        if missing == "ignore":
            live = pos >= 0
            ids = [i for i, keep in zip(ids, live.tolist()) if keep]
            internal, pos, rows = internal[live], pos[live], rows[live]
        scores = view.score_located(self._kind, q, pos, rows)
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
        return snap.documents(snap.resolve(_validate.ids_list(ids)))

    def tokens(self, id: str) -> np.ndarray:
        """Stored token vectors of one document as float32 (n_tokens, dim) (decoded for
        residual, dequantized for int8); KeyError if unknown."""
        if not isinstance(id, str):
            raise TypeError(f"id must be a string; got {type(id).__name__}")
        view = self._view
        _, pos, rows = view.located([id])
        p = int(pos[0])
        return self._kind.decode_rows(view.codec_of(p), view.handles[p], rows)[0]

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
            data_bytes += sum(a[n].nbytes for n in self._kind.data_arrays if n in a)
        codec = view.snap.codec
        on_disk = bytes_on_disk(Path(self.path))
        out = {"n_docs": len(view.snap), "n_tokens": n_tokens, "n_tokens_stored": n_stored,
               "n_deleted": n_deleted, "n_segments": len(view.segments),
               "storage": self.storage, "dim": self.dim, "nbits": self.nbits,
               "n_centroids": 0 if codec is None else int(codec["centroids"].shape[0]),
               "commit": view.snap.commit, "bytes_on_disk": on_disk,
               "bytes_per_token": on_disk / n_stored if n_stored else 0.0,
               "data_bytes_per_token": data_bytes / n_stored if n_stored else 0.0}
        if self._kind.staged:
            out["code_bytes_per_token"] = out["data_bytes_per_token"]
        return out

    def verify(self) -> dict[str, Any]:
        """Check every file's checksum, every catalog row and every structural invariant of
        every segment. Raises ``storage.CorruptionError`` naming the bad file; returns the
        store's summary otherwise."""
        summary = self._store.verify()
        with self._store.snapshot() as snap:
            self._make_view(snap, force=True)
        return summary
