"""In-memory readers of one segment's or codec's arrays: the checks and kernels an open and a
search run on what ``files.load_array`` returned, without the file system or the catalog.

``files.load_array`` only hands on an array whose dtype and shape are the manifest's (fuzzed
on its own by the ``npy`` reader), and a plain open checks the sha256 of the id maps and of
every small file. What is left to the structure checks is a file whose bytes the checksum
cannot help with: a large array (sha256 only in ``verify()``), or a writer that recorded
damaged arrays together with their sha256 and a manifest shape of its own. This reader feeds
such arrays -- one array of one segment or of the codec rewritten at fuzzer-chosen bytes,
possibly with another length -- through the functions a real open and search call, in the
order they call them: ``kind.open_codec``, ``snapshot.check_segment_files``,
``kind.open_segment``, ``View.search`` (exact, and PLAID for residual), ``SegmentView.
external_id`` of every hit, ``kind.decode_rows``, and the external ids of every row. The other
arrays stay pristine. Groups (``GROUPS``): ``idmaps`` (no search: nothing else reads them),
``internal-ids``, ``segment`` (the kind's own arrays), ``codec``.

Contract: a CorruptionError naming a file of the damaged folder, or a clean result: with the
bytes unchanged, exactly the pristine result; otherwise every hit names a live row of its
segment, its id decodes, and the exact scores equal a numpy float64 MaxSim over the tokens
``decode_rows`` gives back (whenever those are small enough for float32 sums to be exact to
rounding).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import gingham
from gingham.engine import validate
from gingham.engine.view import SegmentIds, View
from gingham.storage import CorruptionError
from gingham.storage.snapshot import (
    EXTERNAL_ID_BYTES,
    EXTERNAL_ID_OFFSETS,
    INTERNAL_IDS,
    FolderFiles,
    SegmentView,
    check_segment_files,
)

from .readers import build_index

K = 10
ID_MAPS = (EXTERNAL_ID_BYTES, EXTERNAL_ID_OFFSETS)
#: What each harness may damage: "segment" arrays, "codec" arrays, or the named ones.
GROUPS = {"idmaps": ID_MAPS, "internal-ids": (INTERNAL_IDS,), "segment": None, "codec": None}


class _Snap:
    """What View needs of a Snapshot: its segments (search never touches the catalog)."""

    def __init__(self, segments: list):
        self.segments = segments


def _copy(arrays) -> dict:
    return {k: np.array(v) for k, v in arrays.items()}


class FolderArraysReader:
    """Damage one array of a small two-segment index (``storage``) held in memory; see the
    module docstring for the contract. ``group`` picks which arrays a call may damage."""

    def __init__(self, root: Path, storage: str, group: str):
        path = Path(tempfile.mkdtemp(prefix=f"arrays-{storage}-", dir=root))
        self.root = path / "index"
        self.query = build_index(self.root, storage)
        with gingham.Index.open(path / "index") as idx:
            self.kind = idx._kind
            snap = idx._view.snap
            self.segments = [(s.id, s.codec_version, s.n_docs, s.folder,
                              _copy(s.files.arrays), s.live.copy()) for s in snap.segments]
            self.codecs = {v: (path / "index" / "codec" / f"v{v}", _copy(a))
                           for v, a in snap.codecs.items()}
        self.staged = self.kind.staged
        # the id maps are read by the checks at open and by external_id only: no search
        self.searched = group != "idmaps"
        self.targets = self._targets(group)
        self.expected = self._results(self.segments, self.codecs)

    def _targets(self, group: str) -> list[tuple[str, int | None, str]]:
        names = GROUPS[group]
        out: list[tuple[str, int | None, str]] = []
        if group == "codec":
            out += [("codec", v, n) for v, (_, a) in self.codecs.items() for n in sorted(a)]
        else:
            for pos, (_, _, _, _, arrays, _) in enumerate(self.segments):
                out += [("segment", pos, n) for n in sorted(arrays)
                        if (names is None and not n.startswith("_"))
                        or (names is not None and n in names)]
        if not out:
            raise ValueError(f"group {group!r} has no arrays in this index")
        return out

    def __call__(self, target: int, edits: list[tuple[int, int]], length: int | None = None
                 ) -> None:
        """target: which array (modulo the group's count); edits: (byte position modulo the
        array's size, new byte value) pairs; length: a new first-axis length (rows cut off,
        or appended as zeros) as a manifest of its own could claim, None to keep it."""
        where, key, name = self.targets[target % len(self.targets)]
        segments, codecs = list(self.segments), dict(self.codecs)
        if where == "codec":
            folder, arrays = codecs[key]
            arrays = dict(arrays)
            arrays[name], changed = _damaged(arrays[name], edits, length)
            codecs[key] = (folder, arrays)
        else:
            seg = segments[key]
            arrays = dict(seg[4])
            arrays[name], changed = _damaged(arrays[name], edits, length)
            folder = seg[3]
            segments[key] = seg[:4] + (arrays,) + seg[5:]
        try:
            got = self._results(segments, codecs)
        except CorruptionError as exc:
            assert changed, exc
            # a codec that no longer fits a segment may be named through the segment
            assert exc.path.startswith(str(folder if where == "segment" else self.root)), exc
            return
        if not changed:
            assert got == self.expected

    def _results(self, segments: list, codecs: dict) -> list:
        kind = self.kind
        opened = {v: kind.open_codec(folder, arrays) for v, (folder, arrays) in codecs.items()}
        views, handles = [], []
        for seg_id, version, n_docs, folder, arrays, live in segments:
            files = FolderFiles(folder, "0" * 64, arrays)
            check_segment_files(seg_id, n_docs, files)
            view = SegmentView(seg_id, version, n_docs, files, live)
            handles.append(kind.open_segment(folder, view.arrays, n_docs, opened.get(version)))
            views.append(view)
        view = View(_Snap(views), handles, opened, [SegmentIds(v) for v in views])
        q = np.ascontiguousarray(self.query)
        q_offsets = np.array([0, len(q)], dtype=np.int64)
        out = []
        for exact in ((True, False) if self.staged else (True,)) if self.searched else ():
            params = validate.search_params(K, "exact" if exact else "plaid",
                                            ("exact", "plaid"), None, None, None)
            merged, _, _ = view.search(kind, view.masks(None), q, q_offsets, K, params, exact)
            scores, internal, seg, rows = merged[0]
            hits = []
            for sc, i, s, r in zip(scores.tolist(), internal.tolist(), seg.tolist(),
                                   rows.tolist()):
                assert 0 <= r < views[s].n_docs and views[s].live[r], (s, r)
                hits.append((views[s].external_id(r), round(sc, 4), i))
            out.append(hits)
            if exact:
                self._check_exact(view, scores, seg, rows)
        out.append([v.external_ids() for v in views])
        self._check_located(view, views)
        return out

    @staticmethod
    def _check_located(view: View, views: list) -> None:
        """Every live row's external id is found (by the segments' id lookup) at a live row
        holding that id: the one asked for, or another copy of it that damage created."""
        asked = list(dict.fromkeys(v.external_id(r) for v in views
                                   for r in np.flatnonzero(v.live).tolist()))
        _, pos, rows = view.located(asked)
        for i, p, r in zip(asked, pos.tolist(), rows.tolist()):
            assert views[p].live[r] and views[p].external_id(r) == i, (i, p, r)

    def _check_exact(self, view: View, scores, seg, rows) -> None:
        """Exact scores equal numpy's MaxSim over the decoded tokens of each hit."""
        q = self.query.astype(np.float64)
        for s in np.unique(seg).tolist():
            sel = np.flatnonzero(seg == s)
            tokens, offsets = self.kind.decode_rows(
                view.codec_of(s), view.handles[s], np.ascontiguousarray(rows[sel], np.int64))
            for i, score in enumerate(scores[sel].tolist()):
                doc = tokens[offsets[i]:offsets[i + 1]]
                if not np.all(np.abs(doc) < 1e4):
                    continue  # float32 sums of such values differ from float64 beyond rounding
                ref = float((q @ doc.astype(np.float64).T).max(1).sum())
                assert abs(score - ref) <= 1e-3 * (1 + abs(ref)), (s, score, ref)


def _damaged(arr: np.ndarray, edits, length) -> tuple[np.ndarray, bool]:
    """A copy of ``arr`` with bytes replaced and the first axis resized; -> (array, changed)."""
    out = np.array(arr)
    if length is not None and out.ndim and length != out.shape[0]:
        grown = np.zeros((length,) + out.shape[1:], dtype=out.dtype)
        n = min(length, out.shape[0])
        grown[:n] = out[:n]
        out = grown
    raw = out.reshape(-1).view(np.uint8) if out.size else None
    for pos, value in edits:
        if raw is not None:
            raw[pos % raw.size] = value
    changed = out.shape != arr.shape or not np.array_equal(
        out.reshape(-1).view(np.uint8), np.asarray(arr).reshape(-1).view(np.uint8))
    return out, changed
