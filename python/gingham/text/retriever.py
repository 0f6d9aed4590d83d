"""``gingham.Retriever``: text in, ranked texts out, over a ``gingham.Index``.

An index folder built by :meth:`Retriever.build` holds, beside the Index's own files:

    <index>/encoder/   the encoder that made the vectors (``Encoder.save``: settings, any stored
                       projection, the PCA fitted on this corpus), written before the first
                       documents are committed, so queries are always encoded the same way
    <index>/bm25/      a BM25 index (``bm25.BM25Index``) over the same documents, plus
                       ``source.json``: the document count, the sha256 of the sorted ids and
                       the Index commit it matches (``commit``; null when it matched none)

The Index catalog is the source of truth. ``add``/``delete`` commit to the Index first and then
rewrite the BM25 folder; a crash in between leaves ``source.json`` naming an older commit, and
the next :meth:`Retriever.open` rebuilds BM25 from the texts stored in the Index. Any other
commit (an upsert or compaction made through the Index directly) also triggers the rebuild: the
commit number, not the ids, tells whether the texts BM25 holds are the stored ones, and
comparing it needs no pass over the ids. Folders without a ``commit`` entry are checked by
count and ids digest.

Scores: late interaction hits carry raw MaxSim sums (Index convention); hybrid hits carry the
fused score (``fusion.auto_fuse``, ``fusion.weighted`` or ``fusion.rrf``).
"""
from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from typing import Any, Sequence

import numpy as np

from ..engine.index import Index
from ..storage import CorruptionError, DuplicateIdError
from . import saved
from .bm25 import BM25Index
from .checks import check_target, ids_digest, ids_for, texts_list
from .encoder import RECOMMENDED_SETTINGS, Encoder
from .explain import explain_hits
from .fusion import DEFAULT_ALPHA, auto_fuse, hybrid_scored_ids, rrf, weighted

ENCODER_DIR = "encoder"
BM25_DIR = "bm25"
BM25_SOURCE = "source.json"
SETTINGS_KEY = "retriever"
HYBRID_MODES = ("auto", "rrf", "weighted")
# Dense and BM25 candidates fetched per query before fusion (at least k).
FUSION_DEPTH = 100


def _commit(index: Index) -> int:
    return int(index.stats()["commit"])


_SOURCE_FIELDS: dict[str, saved.Field] = {
    "n_docs": saved.COUNT, "ids_sha256": saved.TEXT, "commit": saved.optional(saved.INT)}


def _read_source(path: str) -> dict | None:
    """BM25's ``source.json`` (what it was built from), or None when missing or damaged: the
    BM25 beside it then counts as stale and is rebuilt from the stored texts."""
    if not os.path.exists(path):
        return None
    try:
        return saved.read_json(path, _SOURCE_FIELDS, may_lack=("commit",),
                               lists_files=False)
    except CorruptionError as exc:
        warnings.warn(f"{exc}; BM25 will be rebuilt from the stored texts", stacklevel=3)
        return None


def _hybrid_mode(hybrid: Any) -> str | None:
    if hybrid is False or hybrid is None:
        return None
    if hybrid is True:
        return "auto"
    if hybrid in HYBRID_MODES:
        return hybrid
    raise ValueError(f"hybrid must be False, True, 'auto', 'rrf' or 'weighted'; got {hybrid!r}")


class Retriever:
    """Text retrieval over a late-interaction index folder (see the module docstring).

    Build with :meth:`build`, reopen with :meth:`open`. ``timings`` holds the wall seconds of the
    last build/add: ``encode_s`` (text -> vectors), ``engine_s`` (Index.add: codec training,
    compression, IVF, commit), ``bm25_s``, and ``n_docs`` (int: documents encoded).
    """

    def __init__(self, index: Index, encoder: Encoder, bm25: BM25Index | None) -> None:
        self.index = index
        self.encoder = encoder
        # A BM25 folder found current at open is read on first use: a late-interaction search
        # from the shell then never pays for importing bm25s / scipy.
        self._bm25_lock = threading.Lock()
        self._bm25_pending = False
        self._bm25_language: str | None = None
        self.bm25 = bm25
        self.timings: dict[str, float] = {}

    @property
    def bm25(self) -> BM25Index | None:
        """The BM25 index beside the Index (None when built without BM25)."""
        if self._bm25_pending:
            with self._bm25_lock:
                if self._bm25_pending:
                    self._bm25 = self._load_or_rebuild_bm25(self._bm25_language)
                    self._bm25_pending = False
        return self._bm25

    @bm25.setter
    def bm25(self, value: BM25Index | None) -> None:
        self._bm25 = value
        self._bm25_pending = False

    def close(self) -> None:
        """Close the underlying Index (its catalog connections)."""
        self.index.close()

    def __enter__(self) -> "Retriever":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, path: str | os.PathLike, texts: Sequence[str],
              ids: Sequence[str] | None = None, metadata: Sequence[Any] | None = None,
              model: str | None = None, *, storage: str = "residual", nbits: int = 2,
              n_centroids: int | None = None, seed: int = 0,
              pca_dim: int | None = RECOMMENDED_SETTINGS["pca_dim"],
              pool_factor: float = RECOMMENDED_SETTINGS["pool_factor"],
              skiplist: str | Sequence[str] | None = None, projection: str = "auto",
              query_length: int | None = None, document_length: int | None = None,
              bm25_language: str | None = "english", batch_size: int = 32,
              device: str = "cpu", num_threads: int | None = None, show_progress: bool = True,
              overwrite: bool = False, lock_timeout: float = 10.0, backend: str = "torch",
              quantize: str | None = None) -> "Retriever":
        """Encode ``texts`` and write a new index folder at ``path``.

        texts: non-empty strings; ids: one string per text (default "0", "1", ...); metadata:
        one JSON dict (or None) per text. model: encoder checkpoint (None = the offline
        all-MiniLM-L6-v2). storage/nbits/n_centroids/seed: passed to ``Index.create``.
        pca_dim/pool_factor/skiplist/projection/query_length/document_length: ``Encoder``
        settings (defaults: ``encoder.RECOMMENDED_SETTINGS``, pooling by 2 then PCA to 128 fitted
        on these texts). bm25_language: BM25 analyser language, None for no BM25 (no hybrid).
        overwrite: replace an existing index at ``path`` (checked, like the writability of
        ``path``, before any text is encoded). lock_timeout: seconds to wait for another
        writer's lock (``Index.create``). backend: "torch" or "onnx" (the transformer exported
        to ONNX and stored in ``encoder/``: later queries and adds run without torch);
        quantize: None or "int8" (ONNX only, ``Encoder``).
        """
        texts = texts_list(texts)
        if not texts:
            raise ValueError("texts must hold at least one document")
        ids = ids_for(texts, ids)
        if bm25_language is not None:
            BM25Index(bm25_language)  # validates the language before any work
        check_target(path, overwrite)
        encoder = Encoder(model, projection=projection, seed=seed, pca_dim=pca_dim,
                          skiplist=skiplist, pool_factor=pool_factor,
                          query_length=query_length, document_length=document_length,
                          device=device, num_threads=num_threads, batch_size=batch_size,
                          show_progress=show_progress, backend=backend, quantize=quantize)
        t0 = time.perf_counter()
        embeddings = encoder.fit_documents(texts)
        encode_s = time.perf_counter() - t0
        settings = {SETTINGS_KEY: {"format_version": 1, "encoder": encoder.config(),
                                   "encoder_fingerprint": encoder.fingerprint(),
                                   "bm25_language": bm25_language}}
        index = Index.create(path, dim=encoder.dim, storage=storage, nbits=nbits,
                             n_centroids=n_centroids, seed=seed,
                             model=encoder.model_name or "all-MiniLM-L6-v2",
                             settings=settings, overwrite=overwrite,
                             lock_timeout=lock_timeout)
        # The encoder folder exists before any document is committed: an index whose documents
        # are visible always has the encoder that made them.
        encoder.save(os.path.join(index.path, ENCODER_DIR))
        t0 = time.perf_counter()
        index.add(ids, embeddings, metadata=metadata, texts=texts)
        engine_s = time.perf_counter() - t0
        r = cls(index, encoder, None)
        t0 = time.perf_counter()
        if bm25_language is not None:
            r.bm25 = BM25Index(bm25_language)
            r.bm25.add(ids, texts)
            r._save_bm25(r.bm25)
        r.timings = {"encode_s": encode_s, "engine_s": engine_s,
                     "bm25_s": time.perf_counter() - t0, "n_docs": len(texts)}
        return r

    @classmethod
    def open(cls, path: str | os.PathLike, *, device: str = "cpu",
             num_threads: int | None = None, batch_size: int = 32,
             show_progress: bool = False, lock_timeout: float = 10.0,
             backend: str | None = None) -> "Retriever":
        """Open a folder written by :meth:`build`; rebuilds BM25 from the stored texts when it
        does not match the Index catalog (interrupted add/delete). lock_timeout: seconds to
        wait for another writer's lock (``Index.open``). backend: None uses the encoder's saved
        backend; "torch" / "onnx" overrides it (``Encoder.load``)."""
        index = Index.open(path, lock_timeout=lock_timeout)
        settings = (index.settings or {}).get(SETTINGS_KEY)
        enc_dir = os.path.join(index.path, ENCODER_DIR)
        if settings is None or not os.path.exists(os.path.join(enc_dir, "encoder.json")):
            index.close()
            raise ValueError(f"{path}: not a Retriever index (no encoder settings or "
                             f"{ENCODER_DIR}/encoder.json); open it with gingham.Index")
        try:
            encoder = Encoder.load(enc_dir, device=device, num_threads=num_threads,
                                   batch_size=batch_size, show_progress=show_progress,
                                   backend=backend)
            r = cls(index, encoder, None)
            r._attach_bm25(settings.get("bm25_language"))
        except BaseException:
            index.close()
            raise
        return r

    def _attach_bm25(self, language: str | None) -> None:
        """At open: BM25 of ``language`` (None: none), loaded on first use when it matches the
        index, else rebuilt now from the stored texts."""
        if language is None:
            return
        self._bm25_language = language
        if self._bm25_is_current():
            self._bm25_pending = True
        else:
            self.bm25 = self._rebuild_bm25(language)

    @staticmethod
    def describe(index: Index) -> dict[str, Any]:
        """Text-layer settings of an open ``index``, read-only: {"encoder": the encoder's
        config, "bm25": {"language", "n_docs", "ids_sha256", "commit"}} for an index built by
        :meth:`build` ("bm25" only when BM25 is on and written), {} for an embeddings index."""
        settings = (index.settings or {}).get(SETTINGS_KEY) or {}
        if not settings.get("encoder"):
            return {}
        out: dict[str, Any] = {"encoder": settings["encoder"]}
        source = _read_source(os.path.join(index.path, BM25_DIR, BM25_SOURCE))
        if settings.get("bm25_language") is not None and source is not None:
            out["bm25"] = {"language": settings["bm25_language"], **source}
        return out

    # ------------------------------------------------------------------ BM25 upkeep
    @property
    def _bm25_dir(self) -> str:
        return os.path.join(self.index.path, BM25_DIR)

    def _save_bm25(self, bm25: BM25Index) -> None:
        """Write ``bm25`` to a temporary folder, then swap it in (source.json written last)."""
        final = self._bm25_dir
        tmp = final + ".tmp"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        bm25.save(tmp)
        digest = ids_digest(bm25.ids)
        # The commit is recorded only when BM25 holds exactly the ids of that commit.
        commit = _commit(self.index)
        matches = ids_digest(self.index.ids()) == digest and _commit(self.index) == commit
        saved.write_json(os.path.join(tmp, BM25_SOURCE), {
            "n_docs": len(bm25.ids), "ids_sha256": digest,
            "commit": commit if matches else None})
        old = final + ".old"
        if os.path.exists(old):
            shutil.rmtree(old)
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(tmp, final)
        if os.path.exists(old):
            shutil.rmtree(old)

    def _bm25_is_current(self) -> bool:
        source = _read_source(os.path.join(self._bm25_dir, BM25_SOURCE))
        if source is None:
            return False
        if source["n_docs"] != len(self.index):
            return False
        if "commit" in source:
            return source["commit"] is not None and source["commit"] == _commit(self.index)
        return source.get("ids_sha256") == ids_digest(self.index.ids())

    def _load_or_rebuild_bm25(self, language: str) -> BM25Index:
        """The saved BM25 (found current at open), or, when a file of it is damaged, one
        rebuilt from the stored texts (BM25 is derived data: damage costs a rebuild, not an
        error)."""
        try:
            return BM25Index.load(self._bm25_dir)
        except CorruptionError as exc:
            warnings.warn(f"{exc}; rebuilding BM25 from the stored texts", stacklevel=3)
        return self._rebuild_bm25(language)

    def _rebuild_bm25(self, language: str) -> BM25Index:
        """BM25 of the stored texts, written to the index folder."""
        ids = self.index.ids()
        texts = [d["text"] or "" for d in self.index.documents(ids)] if ids else []
        bm25 = BM25Index(language)
        if ids:
            bm25.add(ids, texts)
        self._save_bm25(bm25)
        return bm25

    # ------------------------------------------------------------------ updates
    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None,
            metadata: Sequence[Any] | None = None, *, upsert: bool = False) -> list[str]:
        """Encode and add documents (one Index commit, then BM25). ids default to
        "<n>", "<n+1>", ... (n = current count, skipping ids in use). An id already in the
        index raises ValueError unless upsert=True, which replaces that document (tokens,
        metadata, text and BM25 terms). Returns the ids added.

        Raises ``gingham.storage.DuplicateIdError`` (a ValueError) for an id already in the
        index when upsert is False, before anything is encoded."""
        texts = texts_list(texts)
        if not texts:
            raise ValueError("texts must hold at least one document")
        existing = set(self.index.ids())
        if ids is None:
            # "<n>", "<n+1>", ... skipping ids still in use (possible after deletes).
            fresh, n = [], len(existing)
            while len(fresh) < len(texts):
                if str(n) not in existing:
                    fresh.append(str(n))
                n += 1
            ids = fresh
        ids = ids_for(texts, ids)
        taken = sorted(set(ids) & existing)
        if taken and not upsert:
            raise DuplicateIdError(f"{len(taken)} id(s) already in the index, e.g. "
                                   f"{taken[:5]!r}; pass upsert=True to replace them")
        t0 = time.perf_counter()
        embeddings = self.encoder.encode_documents(texts)
        encode_s = time.perf_counter() - t0
        bm25 = self.bm25  # loaded (or rebuilt) before the index changes under it
        t0 = time.perf_counter()
        self.index.add(ids, embeddings, metadata=metadata, texts=texts, upsert=upsert)
        engine_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if bm25 is not None:
            if taken:
                bm25.delete(taken)
            bm25.add(ids, texts)
            self._save_bm25(bm25)
        self.timings = {"encode_s": encode_s, "engine_s": engine_s,
                        "bm25_s": time.perf_counter() - t0, "n_docs": len(texts)}
        return ids

    def delete(self, ids: Sequence[str], *, missing: str = "raise") -> int:
        """Delete documents by id -> number deleted. missing: "raise" (KeyError naming unknown
        ids, before any change) or "ignore" (skip them)."""
        ids = list(ids)
        bm25 = self.bm25  # loaded (or rebuilt) before the index changes under it
        n = self.index.delete(ids, missing=missing)
        if bm25 is not None:
            bm25.delete([i for i in ids if i in bm25])
            self._save_bm25(bm25)
        return n

    def __len__(self) -> int:
        return len(self.index)

    # ------------------------------------------------------------------ search
    @staticmethod
    def _hit(doc: dict[str, Any], score: float, rank: int) -> dict[str, Any]:
        return {"id": doc["id"], "score": float(score), "rank": rank, "text": doc.get("text"),
                "metadata": doc.get("metadata")}

    def search(self, query: str | Sequence[str], k: int = 10, *, hybrid: Any = False,
               alpha: float = DEFAULT_ALPHA, subset: Sequence[str] | None = None,
               where: str | None = None, params: Sequence[Any] | None = None,
               mode: str = "plaid", explain: bool = False) -> Any:
        """Top-k documents for a query string -> list of {"id", "score", "rank", "text",
        "metadata"} (rank from 0), or for a list of queries -> one such list per query.

        hybrid: False (late interaction only), True / "auto" (complete-score fusion with BM25,
        weighted per query by a label-free confidence: ``fusion.auto_fuse``, docs/hybrid.md),
        "weighted" (min-max fusion, ``alpha`` on the late-interaction side) or "rrf"
        (reciprocal rank, k = 60). Hybrid search returns min(k, matching documents) distinct
        documents; deleted or filtered-out BM25 hits never appear.
        subset / where / params: restrict to these ids / a SQL filter over the metadata JSON
        (see ``Index.search``); BM25 candidates are filtered the same way. mode: "plaid" or
        "exact". explain=True adds to each hit ``"explain"``: what :meth:`explain` returns for
        it, computed from the query vectors this search already encoded.
        """
        single = isinstance(query, str)
        queries = [query] if single else texts_list(query, "query")
        if single and not query.strip():
            raise ValueError("query is empty")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive int; got {k!r}")
        fusion = _hybrid_mode(hybrid)
        if fusion is not None and self.bm25 is None:
            raise ValueError("hybrid search needs BM25; this index was built with "
                             "bm25_language=None")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
        qvecs = self.encoder.encode_queries(queries)
        filters = {"subset": None if subset is None else list(subset), "where": where,
                   "params": None if params is None else list(params)}
        if fusion is None:
            out = self.index.search(qvecs, k=int(k), mode=mode, with_documents=True, **filters)
            out = [[self._hit(d, d["score"], d["rank"]) for d in hits] for hits in out]
        else:
            depth = max(int(k), FUSION_DEPTH)
            sparse = [self.bm25.search(text, depth)[0] for text in queries]
            if fusion == "auto":  # exact MaxSim of the BM25 hits within the same search
                also = [hybrid_scored_ids(ids, self.bm25.ids) for ids, _ in sparse]
                dense, scored = self.index.search(qvecs, k=depth, mode=mode, also_score=also,
                                                  **filters)
            else:
                dense = self.index.search(qvecs, k=depth, mode=mode, **filters)
                scored = [{} for _ in queries]
            ranked = [self._fuse(queries[qi], qvecs[qi], hits, sparse[qi], scored[qi], int(k),
                                 fusion, float(alpha), filters)
                      for qi, hits in enumerate(dense)]
            docs = iter(self.index.documents([d for r in ranked for d, _ in r]))
            out = [[self._hit(next(docs), s, rank) for rank, (_, s) in enumerate(r)]
                   for r in ranked]
        if explain:
            for text, qvec, hits in zip(queries, qvecs, out):
                rows = [(self.index.tokens(h["id"]), h["text"]) for h in hits]
                for h, e in zip(hits, explain_hits(self.encoder, text, qvec, rows)):
                    h["explain"] = e
        return out[0] if single else out

    def _fuse(self, text: str, qvec: np.ndarray, hits: list, sparse: tuple, scored: dict,
              k: int, fusion: str, alpha: float, filters: dict) -> list[tuple[str, float]]:
        assert self.bm25 is not None
        sparse_ids, sparse_scores = sparse
        if fusion == "auto":
            ids, scores = auto_fuse(self.index, self.bm25, text, qvec,
                                    ([h.id for h in hits], [h.score for h in hits]),
                                    sparse_ids, scored, k, **filters)
            return list(zip(ids, scores.tolist()))
        if filters["subset"] is not None or filters["where"] is not None:
            allowed = set(sparse_ids)
            if filters["subset"] is not None:
                allowed &= set(filters["subset"])
            if allowed and filters["where"] is not None:
                # The Index applies the filter: the candidates it returns are the ones passing.
                cand = [d for d in sparse_ids if d in allowed]
                allowed = {h.id for h in self.index.search(
                    qvec, k=len(cand), mode="exact", subset=cand, where=filters["where"],
                    params=filters["params"])}
            keep = [i for i, d in enumerate(sparse_ids) if d in allowed]
            sparse_ids = [sparse_ids[i] for i in keep]
            sparse_scores = np.asarray(sparse_scores)[keep]
        dense_ids = [h.id for h in hits]
        dense_scores = [h.score for h in hits]
        if fusion == "rrf":
            ids, scores = rrf([dense_ids, sparse_ids], k)
        else:
            ids, scores = weighted((dense_ids, dense_scores), (sparse_ids, sparse_scores), k,
                                   alpha=alpha)
        return list(zip(ids, scores.tolist()))

    def rerank(self, query: str, texts_or_ids: Sequence[str], k: int | None = None
               ) -> list[dict[str, Any]]:
        """Exact MaxSim of ``query`` against the given documents, best first.

        texts_or_ids: ids of indexed documents (scored from the stored vectors), or texts
        (encoded now with the index's encoder; their results have ``"id": None`` and
        ``"position"`` = index in the input). A list mixing ids and non-ids is treated as texts.
        k: keep the best k (default all).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        items = texts_list(texts_or_ids, "texts_or_ids")
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer))
                              or k <= 0):
            raise ValueError(f"k must be a positive int or None; got {k!r}")
        if not items:
            return []
        qvec = self.encoder.encode_query(query)
        known = set(self.index.ids())
        if all(x in known for x in items):
            hits = self.index.rerank(qvec, items, k)
            docs = self.index.documents([h.id for h in hits])
            return [self._hit(d, h.score, r) for r, (h, d) in enumerate(zip(hits, docs))]
        from ..engine.csr import to_csr
        from ..engine.exact import maxsim_scores

        docs = self.encoder.encode_documents(items)
        tokens, offsets = to_csr(docs)
        scores = np.asarray(maxsim_scores(qvec, tokens, offsets), dtype=np.float64).ravel()
        order = np.argsort(-scores, kind="stable")[: k or len(items)]
        return [{"id": None, "position": int(i), "score": float(scores[i]), "rank": r,
                 "text": items[i], "metadata": None} for r, i in enumerate(order.tolist())]

    def explain(self, query: str, doc_id: str) -> list[dict[str, Any]]:
        """Token-level explanation of ``doc_id``'s exact MaxSim score for ``query``.

        Returns one dict per query token: ``query_token`` (string), ``query_position``,
        ``doc_position`` (row of the stored document vectors with the highest dot product),
        ``similarity`` (that dot product; the similarities sum to the exact MaxSim score from
        the stored vectors), ``doc_token`` (the matched token's text; for pooled documents the
        tokens of its group joined by " "), ``doc_tokens`` (the group's token strings) and
        ``doc_spans`` ([start, end) character offsets of those tokens in the stored text).
        Token strings come from re-tokenizing the stored text with the encoder's tokenizer and
        its skip list/pooling; when that cannot be aligned, names fall back to "#<row>".
        To explain search hits without encoding the query again, use ``search(explain=True)``.
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        doc = self.index.get(doc_id)
        qvec = self.encoder.encode_query(query)
        return explain_hits(self.encoder, query, qvec,
                            [(self.index.tokens(doc_id), doc.get("text"))])[0]
