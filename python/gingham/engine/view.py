"""What one search runs on: a snapshot of one commit with its segments opened by their kind.

Opening a segment or codec (``SegmentKind.open_segment`` / ``open_codec``) checks it fully
once; views of later commits reuse the handles of folders they share, so a folder is checked
once per Index. A search groups the segments by codec version, asks the kind for each group's
top-k and merges the groups' lists by (score desc, internal id asc).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import _core
from ..storage import Snapshot, UnknownIdError
from . import kinds
from . import validate as _validate
from .csr import merge_topk


def folder_of(arrays: dict, fallback: Path) -> Path:
    """Folder of memory-mapped arrays (to name it in errors)."""
    for arr in arrays.values():
        name = getattr(arr, "filename", None)
        if name:
            return Path(name).parent
    return fallback


def open_view(snap: Snapshot, kind: kinds.SegmentKind, opened: dict, codec_root: Path
              ) -> tuple["View", dict]:
    """The View of ``snap``, reusing the handles in ``opened`` ((folder, manifest sha) ->
    handle); -> (view, the handles this view uses). Closes ``snap`` if a check fails."""
    used: dict = {}

    def cached(key, make):
        handle = opened.get(key)
        used[key] = handle = make() if handle is None else handle
        return handle

    try:
        codecs = {}
        for version, arrays in snap.codecs.items():
            folder = folder_of(arrays, codec_root)
            codecs[version] = cached((str(folder), "codec"),
                                     lambda: kind.open_codec(folder, arrays))
        handles = [cached((str(seg.folder), seg.files.manifest_sha256),
                          lambda: kind.open_segment(seg.folder, seg.arrays, seg.n_docs,
                                                    codecs.get(seg.codec_version)))
                   for seg in snap.segments]
        lookups = [cached((str(seg.folder), seg.files.manifest_sha256, "ids"),
                          lambda: SegmentIds(seg)) for seg in snap.segments]
    except BaseException:
        snap.close()
        raise
    return View(snap, handles, codecs, lookups), used


class SegmentIds:
    """A segment's rows by external id (``_core.IdLookup``), built at the first lookup: an
    open that never looks ids up pays nothing."""

    def __init__(self, segment) -> None:
        self._segment = segment
        self._lookup: _core.IdLookup | None = None
        self._lock = threading.Lock()

    def find(self, ids: list[str], live: np.ndarray | None) -> np.ndarray:
        """Row int64 of each id whose row is live (live: uint8 per row, None: every row), -1
        where there is none."""
        if self._lookup is None:
            with self._lock:
                if self._lookup is None:
                    self._lookup = _core.IdLookup(*self._segment.external_id_arrays)
        return self._lookup.find(ids, live)


class View:
    """The snapshot, its segments and their opened handles, and the opened codecs by version."""

    def __init__(self, snap: Snapshot, handles: list, codecs: dict, lookups: list):
        self.snap = snap
        self.segments = list(snap.segments)  # storage.SegmentView, segment-id order
        self.handles = handles               # the kind's opened segment, per segment
        self.codecs = codecs                 # codec version -> the kind's opened codec
        self.lookups = lookups               # SegmentIds per segment
        self.position = {s.id: i for i, s in enumerate(self.segments)}
        self.all_live = [not s.n_docs or bool(s.live.all()) for s in self.segments]

    def selection(self, subset: Any, where: Any, params: Any) -> np.ndarray | None:
        """Internal ids allowed by subset / where (None: no filter). Unknown or deleted ids
        in subset match nothing."""
        if params is not None and where is None:
            raise ValueError("params is given without where")
        selected = None
        if subset is not None:
            subset = _validate.sequence(subset, "subset")
            selected = np.unique(self.snap.resolve(subset, missing="ignore"))
        if where is not None:
            chosen = self.snap.where(where, () if params is None else params)
            selected = chosen if selected is None else np.intersect1d(selected, chosen)
        return selected

    def masks(self, selected: np.ndarray | None) -> list:
        """Per-segment uint8 masks (None = every row searchable) for a selection of internal
        ids (None = every live document)."""
        if selected is None:
            return [None if full else np.ascontiguousarray(s.live)
                    for s, full in zip(self.segments, self.all_live)]
        return self.snap.masks(selected)

    def located(self, ids: Sequence[str], missing: str = "raise"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(internal ids, segment position, row) int64 of external ids, found in the segments'
        own id arrays (``SegmentIds``) and live masks; UnknownIdError if an id is not live, or
        with missing="ignore" -1 in all three for it."""
        if missing not in ("raise", "ignore"):
            raise ValueError("missing must be 'raise' or 'ignore'")
        ids = _validate.sequence(ids, "ids")
        pos, rows = self.live_rows(ids)
        if missing == "raise" and (pos < 0).any():
            raise UnknownIdError.of([i for i, p in zip(ids, pos.tolist()) if p < 0])
        internal = np.full(len(ids), -1, dtype=np.int64)
        for p in np.unique(pos[pos >= 0]).tolist():
            sel = np.flatnonzero(pos == p)
            internal[sel] = np.asarray(self.segments[p].internal_ids)[rows[sel]]
        return internal, pos, rows

    def live_rows(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(segment position, row) int64 of each external id's live row, -1 in both for an id
        that has none."""
        filled = [p for p, seg in enumerate(self.segments) if seg.n_docs]
        if len(filled) == 1:  # one segment: its look-up is the answer
            p = filled[0]
            rows = self.lookups[p].find(ids, None if self.all_live[p] else
                                        self.segments[p].live)
            return np.where(rows >= 0, p, -1), rows
        pos = np.full(len(ids), -1, dtype=np.int64)
        rows = np.full(len(ids), -1, dtype=np.int64)
        for p in filled:
            found = self.lookups[p].find(ids, None if self.all_live[p] else
                                         self.segments[p].live)
            new = np.flatnonzero((found >= 0) & (pos < 0))  # a live document has one live row
            pos[new], rows[new] = p, found[new]
        return pos, rows

    def score_located(self, kind: kinds.SegmentKind, query: np.ndarray, pos: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
        """Exact MaxSim float32 (len(rows),) of one (Lq, dim) query against the documents at
        (segment position, row)."""
        scores = np.empty(len(rows), dtype=np.float32)
        for p in np.unique(pos).tolist():
            sel = np.flatnonzero(pos == p)
            scores[sel] = kind.score_rows(self.codec_of(p), self.handles[p], query, rows[sel])
        return scores

    def codec_of(self, position: int) -> Any:
        """The opened codec of the segment at ``position`` (None for kinds without one)."""
        return self.codecs.get(self.segments[position].codec_version)

    def search(self, kind: kinds.SegmentKind, masks: list, queries: np.ndarray,
               query_offsets: np.ndarray, k: int, params: dict, exact: bool,
               also: kinds.Listed | None = None) -> tuple[list, np.ndarray, np.ndarray]:
        """Top-k of every query over the segments with a searchable row. -> (per query
        (scores, internal ids, segment position, row), per-query stats records, float32
        exact scores of the ``also`` documents (segment positions of this view), searchable
        or not; empty without ``also``)."""
        n_queries = len(query_offsets) - 1
        parts: list[list] = [[] for _ in range(n_queries)]
        stats = kinds.empty_stats(n_queries)
        also_scores = np.zeros(0 if also is None else len(also.rows), dtype=np.float32)
        done = np.zeros(len(also_scores), dtype=bool)
        groups: dict[Any, list[int]] = {}
        for i, m in enumerate(masks):
            if m is None or m.any():
                groups.setdefault(self.segments[i].codec_version, []).append(i)
        for version, members in groups.items():
            listed, picked = (None, None) if also is None else also.within(members)
            scores, seg, rows, st, listed_scores = kind.search(
                self.codecs.get(version), [self.handles[i] for i in members],
                [masks[i] for i in members], queries, query_offsets, k, params, exact, listed)
            kinds.add_stats(stats, st)
            self._collect(parts, scores, np.asarray(members, dtype=np.int64)[seg], rows)
            if listed_scores is not None:
                also_scores[picked], done[picked] = listed_scores, True
        if not done.all():  # the kind scored them not, or their segment was not searched
            for q in range(n_queries):
                j = np.flatnonzero(~done[also.offsets[q]:also.offsets[q + 1]]) + also.offsets[q]
                if len(j):
                    query = queries[query_offsets[q]:query_offsets[q + 1]]
                    also_scores[j] = self.score_located(kind, query, also.positions[j],
                                                        also.rows[j])
        return [merge_topk(parts[q], k) for q in range(n_queries)], stats, also_scores

    def _collect(self, parts: list, scores, seg, rows) -> None:
        if not scores.shape[1]:
            return
        internal = np.empty(rows.shape, dtype=np.int64)
        for s in np.unique(seg).tolist():
            sel = seg == s
            internal[sel] = self.segments[s].internal_ids[rows[sel]]
        for q in range(scores.shape[0]):
            parts[q].append((scores[q], internal[q], seg[q], rows[q]))

    def hit_ids(self, merged: list) -> list[list[str]]:
        """External ids of merged results (per query, in rank order), read segment by
        segment in one pass over all queries."""
        if not merged:
            return []
        seg = np.concatenate([m[2] for m in merged]).astype(np.int64, copy=False)
        rows = np.concatenate([m[3] for m in merged]).astype(np.int64, copy=False)
        flat: list = [None] * len(rows)
        for s in np.unique(seg).tolist():
            sel = np.flatnonzero(seg == s)
            for i, doc_id in zip(sel.tolist(), self.segments[s].external_ids(rows[sel])):
                flat[i] = doc_id
        bounds = np.cumsum([0] + [len(m[3]) for m in merged]).tolist()
        return [flat[a:b] for a, b in zip(bounds, bounds[1:])]

    def document_hits(self, merged: list) -> list[list[dict[str, Any]]]:
        """Merged results as {"id", "metadata", "text", "score", "rank"} dicts, read in one
        batched catalog query."""
        internal = np.concatenate([m[1] for m in merged]) if merged else np.zeros(0, np.int64)
        docs = dict(zip(internal.tolist(), self.snap.documents(internal)))
        return [[{**docs[i], "score": float(sc), "rank": rank}
                 for rank, (sc, i) in enumerate(zip(scores.tolist(), ids.tolist()))]
                for scores, ids, _, _ in merged]
