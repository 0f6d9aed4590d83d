"""One shard of a sharded index: an ordinary gingham Index plus what the sharded layer asks of
it (adds that carry the shared codec and global sequence numbers, existence checks, sequence
look-ups). The same class runs in-process (local backend) and as a Ray actor (one per shard).

Results cross the process boundary as plain tuples (id, score) per hit, best first with the
shard's own tie rule (lower internal id = earlier added, which within a shard is the order of
the global sequence numbers).
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine import kinds
from ..engine.index import Index
from ..engine.runtime import set_num_threads
from ..storage import Store
from .manifest import SEQ_KEY, read_codec

_PENDING = 64  # phase-1 searches a shard keeps for their phase 2 (the oldest goes first)


class PhaseExpiredError(KeyError):
    """A PLAID phase named a search this shard no longer holds (restarted, or evicted)."""


class SeqCache:
    """Global sequence numbers of a shard's documents by internal id, in memory (8 + 8 bytes a
    document). An internal id names one document for good (an upsert is a new internal id), so
    an entry never goes stale: the live documents are read from the catalog at the first
    look-up, later documents when first seen."""

    def __init__(self, store: Store):
        self._store = store
        self._ids = np.zeros(0, np.int64)   # sorted internal ids
        self._seqs = np.zeros(0, np.int64)

    def lookup(self, internal: np.ndarray, found: Any) -> np.ndarray:
        """Sequence numbers int64 of internal ids (int64) of the held search ``found``
        (engine.staged.PlaidCandidates, whose commit holds them)."""
        if not len(self._ids):
            with self._store.snapshot() as snap:
                live = [seg.internal_ids[np.asarray(seg.live) != 0] for seg in snap.segments]
                self._add(np.concatenate(live) if live else np.zeros(0, np.int64), snap.metadata)
        pos = np.searchsorted(self._ids, internal)
        known = pos < len(self._ids)
        known[known] = self._ids[pos[known]] == internal[known]
        if not known.all():
            self._add(np.unique(internal[~known]),
                      lambda ids: [d["metadata"] for d in found.documents(ids)])
            pos = np.searchsorted(self._ids, internal)
        return self._seqs[pos]

    def _add(self, internal: np.ndarray, read_metadata) -> None:
        if not len(internal):
            return
        seqs = np.array([int(m[SEQ_KEY]) for m in read_metadata(internal)], dtype=np.int64)
        ids = np.concatenate([self._ids, internal])
        order = np.argsort(ids, kind="stable")
        self._ids, self._seqs = ids[order], np.concatenate([self._seqs, seqs])[order]


def _concat(arrays: list[np.ndarray], picks: list[int], dtype) -> np.ndarray:
    return np.concatenate([arrays[i] for i in picks]) if picks else np.zeros(0, dtype)


def codec_digest(codec: Mapping[str, np.ndarray] | None) -> str | None:
    """sha256 over the codec's arrays (name, dtype, shape, bytes), None without a codec."""
    if codec is None:
        return None
    h = hashlib.sha256()
    for name in sorted(codec):
        arr = np.ascontiguousarray(codec[name])
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def add_with_codec(path: str, ids: list[str], tokens: np.ndarray, doc_offsets: np.ndarray,
                   metadata: list | None, texts: list | None,
                   codec: Mapping[str, np.ndarray]) -> None:
    """First add of an empty residual Index at ``path`` that installs ``codec`` (arrays as
    ``residual.train_codec`` returns) instead of training one, in one commit (public storage
    API: the kind encodes, the store commits codec and segment together)."""
    with Store.open(path) as store:
        with store.snapshot() as snap:
            if snap.codec is not None:
                raise ValueError(f"{path} already has a codec")
        kind = kinds.make(store.settings)
        arrays, _ = kind.encode(np.ascontiguousarray(tokens, dtype=np.float32),
                                np.asarray(doc_offsets, dtype=np.int64), dict(codec),
                                store.settings, {})
        store.add(ids, arrays, metadata=metadata, texts=texts, codec=dict(codec))


class Shard:
    """An open shard folder. threads: OpenMP threads of this shard's searches (None: keep)."""

    def __init__(self, path: str, threads: int | None = None):
        if threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(int(threads))
            set_num_threads(int(threads))
        self.path = str(path)
        self.index = Index.open(path)
        self._store = Store.open(path)
        self._pending: OrderedDict = OrderedDict()  # token -> engine.staged.PlaidCandidates
        self._seqs = SeqCache(self._store)

    def close(self) -> None:
        self.index.close()
        self._store.close()

    def pid(self) -> int:
        return os.getpid()

    def refresh(self) -> None:
        self.index.refresh()

    # ---- reads ---------------------------------------------------------------------------

    def existing(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` that are live in this shard, in input order."""
        with self._store.snapshot() as snap:
            found = snap.resolve(list(ids), missing="ignore")
            present = set(snap.external_ids(found)) if found.size else set()
        return [i for i in ids if i in present]

    def seqs(self, ids: Sequence[str]) -> list[int]:
        """Global sequence number of each id (KeyError if one is not in this shard)."""
        return [int(d["metadata"][SEQ_KEY]) for d in self.index.documents(list(ids))]

    def search(self, queries: list[np.ndarray], k: int, options: dict) -> list:
        """Per query a list of (id, score), best first; with return_stats -> (lists, stats)."""
        out = self.index.search(queries, k, **options)
        hits, stats = out if options.get("return_stats") else (out, None)
        if options.get("with_documents"):
            lists = [[(h["id"], h["score"], h["metadata"], h["text"]) for h in q] for q in hits]
        else:
            lists = [[(h.id, h.score) for h in q] for q in hits]
        return (lists, stats) if options.get("return_stats") else lists

    # ---- PLAID phases (distributed/plaid.py) ---------------------------------------------
    # Each answers a dict with "wall_ms": the time this shard spent on it (its own search
    # time, which the fan-out's overhead is measured against).

    def plaid_candidates(self, token: str, queries: list[np.ndarray], k: int,
                         options: dict) -> dict:
        """Phase 1 of a sharded PLAID search (options: search's filters and PLAID parameters),
        held under ``token`` for the later phases -> flat answer (``_flat``)."""
        clock = time.perf_counter()
        found = self.index.plaid_candidates(queries, k, **options)
        self._pending[token] = found
        while len(self._pending) > _PENDING:
            self._pending.popitem(last=False)
        return self._flat(found, np.arange(len(queries)), clock)

    def _held(self, token: str):
        found = self._pending.get(token)
        if found is None:
            raise PhaseExpiredError(f"search {token} is not held by shard {self.path}")
        return found

    def plaid_widen(self, token: str, queries: np.ndarray, ncells: np.ndarray) -> dict:
        """Phase 1 again for query numbers ``queries`` with ``ncells`` cells each."""
        clock = time.perf_counter()
        found = self._held(token)
        found.widen(queries, ncells)
        return self._flat(found, np.asarray(queries, dtype=np.int64), clock)

    def _flat(self, found, queries: np.ndarray, clock: float) -> dict:
        """n_candidates / ncells / counts int64 per query and the candidates' approx,
        rescored float32 and global sequence numbers int64 of those queries back to back."""
        q = queries.tolist()
        return {"n_centroids": found.n_centroids, "n_candidates": found.n_candidates[queries],
                "ncells": found.ncells[queries],
                "counts": np.array([len(found.internal[i]) for i in q], dtype=np.int64),
                "approx": _concat(found.approx, q, np.float32),
                "rescored": _concat(found.rescored, q, np.float32),
                "seq": self._seqs.lookup(_concat(found.internal, q, np.int64), found),
                "wall_ms": 1000.0 * (time.perf_counter() - clock)}

    def plaid_release(self, token: str) -> dict:
        """Drop the search held under ``token`` (a search abandoned between phases)."""
        self._pending.pop(token, None)
        return {"wall_ms": 0.0}

    def plaid_finish(self, token: str, chosen: list[np.ndarray], k: int,
                     with_documents: bool) -> dict:
        """Exact scores of the chosen candidates (positions per query) -> {"lists": per query
        the best k as ``search`` returns them}; drops the held search."""
        clock = time.perf_counter()
        found = self._held(token)
        del self._pending[token]
        hits = found.score(chosen, k, with_documents)
        if with_documents:
            lists = [[(h["id"], h["score"], h["metadata"], h["text"]) for h in q] for q in hits]
        else:
            lists = [[(h.id, h.score) for h in q] for q in hits]
        return {"lists": lists, "wall_ms": 1000.0 * (time.perf_counter() - clock)}

    def rerank(self, query: np.ndarray, ids: Sequence[str], missing: str = "raise") -> list:
        """Exact MaxSim of ``query`` against ``ids`` -> [(id, score)] best first (missing as
        ``Index.rerank``)."""
        return [(h.id, h.score) for h in self.index.rerank(query, list(ids), missing=missing)]

    def score_lists(self, queries: list, ids_per_query: list) -> list[dict]:
        """{id: exact MaxSim} of each query against its live ids (unknown ones left out)."""
        return [{h.id: h.score for h in self.index.rerank(q, ids, missing="ignore")} if ids
                else {} for q, ids in zip(queries, ids_per_query)]

    def documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.index.documents(list(ids))

    def tokens(self, doc_id: str) -> np.ndarray:
        return self.index.tokens(doc_id)

    def ids(self) -> list[str]:
        return self.index.ids()

    def __len__(self) -> int:
        return len(self.index)

    def size(self) -> int:
        return len(self.index)

    def stats(self) -> dict[str, Any]:
        return self.index.stats()

    def settings(self) -> dict[str, Any]:
        return self.index.settings

    def _has_codec(self) -> bool:
        with self._store.snapshot() as snap:
            return snap.codec is not None

    def codec_digest(self) -> str | None:
        with self._store.snapshot() as snap:
            return codec_digest(snap.codec)

    def verify(self) -> dict[str, Any]:
        return {**self.index.verify(), "codec_digest": self.codec_digest()}

    # ---- writes --------------------------------------------------------------------------

    def add(self, ids: list[str], tokens: np.ndarray, doc_offsets: np.ndarray,
            metadata: list | None, texts: list | None, seqs: Sequence[int], upsert: bool,
            codec_sha256: str | None) -> int:
        """Add documents (CSR tokens float32 (T, dim), doc_offsets int64 (n + 1,)) in one
        commit, each with its global sequence number in its metadata; the first add of a
        residual shard installs the shared codec (the sharded folder's codec file, checked against
        codec_sha256). -> number added."""
        meta = [{**(m or {}), SEQ_KEY: int(s)}
                for m, s in zip(metadata or [None] * len(ids), seqs)]
        if codec_sha256 is not None and self.index.storage == "residual" and not self._has_codec():
            codec = read_codec(Path(self.path).parent, codec_sha256)
            add_with_codec(self.path, ids, tokens, doc_offsets, meta, texts, codec)
            self.index.refresh()
        else:
            docs = [tokens[doc_offsets[i]:doc_offsets[i + 1]] for i in range(len(ids))]
            self.index.add(ids, docs, meta, texts, upsert=upsert)
        return len(ids)

    def delete(self, ids: Sequence[str], missing: str) -> int:
        return self.index.delete(list(ids), missing=missing)

    def merge_segments(self, max_segments: int) -> int:
        """Merge this shard's smallest segments down to ``max_segments`` -> segments left."""
        self.index.compact(max_segments=max_segments)
        return int(self.index.stats()["n_segments"])
