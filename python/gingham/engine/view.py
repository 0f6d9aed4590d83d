"""What one search runs on: a snapshot of one commit with its segments opened by their kind.

Opening a segment or codec (``SegmentKind.open_segment`` / ``open_codec``) checks it fully
once; views of later commits reuse the handles of folders they share, so a folder is checked
once per Index. A search groups the segments by codec version, asks the kind for each group's
top-k and merges the groups' lists by (score desc, internal id asc).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..storage import Snapshot
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
    except BaseException:
        snap.close()
        raise
    return View(snap, handles, codecs), used


class View:
    """The snapshot, its segments and their opened handles, and the opened codecs by version."""

    def __init__(self, snap: Snapshot, handles: list, codecs: dict):
        self.snap = snap
        self.segments = list(snap.segments)  # storage.SegmentView, segment-id order
        self.handles = handles               # the kind's opened segment, per segment
        self.codecs = codecs                 # codec version -> the kind's opened codec
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

    def located(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(internal ids, segment position, row) int64 of external ids; KeyError if unknown."""
        internal, seg_ids, rows = self.snap.rows(ids)
        pos = np.array([self.position[s] for s in seg_ids.tolist()], dtype=np.int64)
        return internal, pos, rows

    def codec_of(self, position: int) -> Any:
        """The opened codec of the segment at ``position`` (None for kinds without one)."""
        return self.codecs.get(self.segments[position].codec_version)

    def search(self, kind: kinds.SegmentKind, masks: list, queries: np.ndarray,
               query_offsets: np.ndarray, k: int, params: dict, exact: bool
               ) -> tuple[list, np.ndarray]:
        """Top-k of every query over the segments with a searchable row. -> (per query
        (scores, internal ids, segment position, row), per-query stats records)."""
        n_queries = len(query_offsets) - 1
        parts: list[list] = [[] for _ in range(n_queries)]
        stats = kinds.empty_stats(n_queries)
        groups: dict[Any, list[int]] = {}
        for i, m in enumerate(masks):
            if m is None or m.any():
                groups.setdefault(self.segments[i].codec_version, []).append(i)
        for version, members in groups.items():
            scores, seg, rows, st = kind.search(
                self.codecs.get(version), [self.handles[i] for i in members],
                [masks[i] for i in members], queries, query_offsets, k, params, exact)
            kinds.add_stats(stats, st)
            self._collect(parts, scores, np.asarray(members, dtype=np.int64)[seg], rows)
        return [merge_topk(parts[q], k) for q in range(n_queries)], stats

    def _collect(self, parts: list, scores, seg, rows) -> None:
        if not scores.shape[1]:
            return
        internal = np.empty(rows.shape, dtype=np.int64)
        for s in np.unique(seg).tolist():
            sel = seg == s
            internal[sel] = self.segments[s].internal_ids[rows[sel]]
        for q in range(scores.shape[0]):
            parts[q].append((scores[q], internal[q], seg[q], rows[q]))

    def document_hits(self, merged: list) -> list[list[dict[str, Any]]]:
        """Merged results as {"id", "metadata", "text", "score", "rank"} dicts, read in one
        batched catalog query."""
        internal = np.concatenate([m[1] for m in merged]) if merged else np.zeros(0, np.int64)
        docs = dict(zip(internal.tolist(), self.snap.documents(internal)))
        return [[{**docs[i], "score": float(sc), "rank": rank}
                 for rank, (sc, i) in enumerate(zip(scores.tolist(), ids.tolist()))]
                for scores, ids, _, _ in merged]
