"""PLAID's search split into phases, for a caller that takes PLAID's candidate cuts over several
indexes at once (gingham.distributed): so N indexes together return exactly what one index
holding all their documents returns.

Phase 1 (``PlaidCandidates``, from ``Index.plaid_candidates``): per query the number of
candidates in the probed cells and the best max(ndocs, k) of them by the pruned approximate
score, each with its score without pruning (csrc/gingham/plaid.h plaid_candidates). The caller
widens queries whose candidates over every index are fewer than k (``widen``), takes the cuts,
and asks for the exact scores of the survivors (``score``). Every phase runs on the view (the
commit) of phase 1, whatever writers do meanwhile.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _core
from .csr import merge_topk
from .index import hits_of


class PlaidCandidates:
    """Phase 1 of one Index's PLAID search of a query batch.

    Per query q: n_candidates[q] int64 (searchable documents of its ncells[q] cells); approx[q],
    rescored[q] float32 (n,) and internal[q] int64 (n,) of its best n = min(n_candidates[q],
    max(ndocs, k)) candidates, best approx first (ties: lower internal id)."""

    def __init__(self, view: Any, masks: list, queries: np.ndarray, query_offsets: np.ndarray,
                 k: int, params: dict):
        self._view = view
        self.k = k
        self.params = dict(params)
        self._queries, self._offsets = queries, query_offsets
        n_queries = len(query_offsets) - 1
        self._members = [i for i, m in enumerate(masks) if m is None or m.any()]
        versions = {view.segments[i].codec_version for i in self._members}
        if len(versions) > 1:
            raise ValueError("PLAID phases need every segment on one codec version; this index "
                             f"has {len(versions)} (compact it)")
        self._handles = [view.handles[i] for i in self._members]
        self._masks = [masks[i] for i in self._members]
        codec = view.codecs.get(versions.pop()) if versions else None
        self.n_centroids = 0 if codec is None else int(codec.n_centroids)
        self.ncells = np.full(n_queries, int(params["ncells"]), dtype=np.int64)
        self.n_candidates = np.zeros(n_queries, dtype=np.int64)
        empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int64)
        self.approx = [empty_f] * n_queries
        self.rescored = [empty_f] * n_queries
        self.internal = [empty_i] * n_queries
        self._pos = [empty_i] * n_queries  # segment position (of view.segments) per candidate
        self._rows = [empty_i] * n_queries
        if self._handles:
            self.widen(np.arange(n_queries), self.ncells)

    def _query_batch(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self._offsets[queries], self._offsets[queries + 1]
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist())])
        offsets = np.zeros(len(queries) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        return np.ascontiguousarray(self._queries[rows]), offsets

    def widen(self, queries: Sequence[int], ncells: Sequence[int]) -> None:
        """Redo phase 1 of the given query numbers with ncells cells each (int64 arrays)."""
        queries = np.asarray(queries, dtype=np.int64)
        ncells = np.asarray(ncells, dtype=np.int64)
        if not self._handles or not len(queries):
            return
        p = self.params
        for cells in np.unique(ncells).tolist():
            chosen = queries[ncells == cells]
            q, offsets = self._query_batch(chosen)
            n_cand, n_kept, approx, rescored, seg, rows = _core.plaid_candidates(
                q, offsets, self._handles, self._masks, self.k, int(cells),
                p["centroid_score_threshold"], p["ndocs"])
            members = np.asarray(self._members, dtype=np.int64)
            for j, qi in enumerate(chosen.tolist()):
                n = int(n_kept[j])
                pos, r = members[seg[j, :n]], rows[j, :n]
                self.ncells[qi], self.n_candidates[qi] = cells, n_cand[j]
                self.approx[qi], self.rescored[qi] = approx[j, :n], rescored[j, :n]
                self._pos[qi], self._rows[qi] = pos, r
                self.internal[qi] = self._internal_ids(pos, r)

    def _internal_ids(self, pos: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.int64)
        for p in np.unique(pos).tolist():
            sel = pos == p
            out[sel] = self._view.segments[p].internal_ids[rows[sel]]
        return out

    def documents(self, internal: np.ndarray) -> list[dict[str, Any]]:
        """{"id", "metadata", "text"} of internal ids (int64) as of this search's commit."""
        return self._view.snap.documents(np.asarray(internal, dtype=np.int64))

    def score(self, chosen: Sequence[np.ndarray], k: int, with_documents: bool = False
              ) -> list[list]:
        """Exact scores of the chosen candidates (per query: positions int64 into its phase-1
        lists) -> per query the best min(k, chosen) as ``Index.search`` returns them (Hit, or
        document dicts with with_documents), ties by lower internal id."""
        n_queries = len(self._offsets) - 1
        if len(chosen) != n_queries:
            raise ValueError(f"chosen must hold one array per query ({n_queries}); "
                             f"got {len(chosen)}")
        picks = [np.asarray(c, dtype=np.int64) for c in chosen]
        for q, c in enumerate(picks):
            if c.size and (c.min() < 0 or c.max() >= len(self.internal[q])):
                raise ValueError(f"chosen[{q}] must index its {len(self.internal[q])} "
                                 "candidates")
        cand_offsets = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum([len(c) for c in picks], out=cand_offsets[1:])
        local = {p: i for i, p in enumerate(self._members)}
        pos = np.concatenate([self._pos[q][c] for q, c in enumerate(picks)] or [np.zeros(0)])
        rows = np.concatenate([self._rows[q][c] for q, c in enumerate(picks)] or [np.zeros(0)])
        pos, rows = pos.astype(np.int64), rows.astype(np.int64)
        scores = np.zeros(0, np.float32)
        if len(rows):
            segs = np.array([local[p] for p in pos.tolist()], dtype=np.int64)
            scores = _core.plaid_score_candidates(self._queries, self._offsets, self._handles,
                                                  cand_offsets, segs, rows)
        merged = []
        for q, c in enumerate(picks):
            a, b = cand_offsets[q], cand_offsets[q + 1]
            part = (scores[a:b], self.internal[q][c], pos[a:b], rows[a:b])
            merged.append(merge_topk([part], k))
        if with_documents:
            return self._view.document_hits(merged)
        return hits_of(self._view, merged)
