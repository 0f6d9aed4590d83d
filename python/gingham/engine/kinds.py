"""The segment-kind protocol: what the Index asks of a storage kind, and the registry of kinds.

A kind (``"residual"``, ``"fp32"``, ``"fp16"``, ``"int8"``) turns token vectors into segment
arrays and back, checks arrays read from disk once when a segment is opened (the result is an
opened, checked handle the searches take), and searches, scores and merges its segments. The
Index only talks to this interface, so adding a kind means one new module that registers
itself here.

Search statistics have one layout for every kind, defined once in C++ (``PlaidStats`` in
csrc/gingham/plaid.h, exported as ``_core.plaid_stats_dtype()``): one structured record per
query; ``*_ms`` fields are float64 stage times, ``n_*`` fields int64 counts.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import _core
from ..storage import CorruptionError, Merged, MergeInput

Arrays = Mapping[str, np.ndarray]
STATS_DTYPE = np.dtype(_core.plaid_stats_dtype())


@dataclass(frozen=True)
class Listed:
    """Documents listed per query (``ListedDocs`` in csrc/gingham/plaid.h): query q's are
    (positions[j], rows[j]) for j in [offsets[q], offsets[q + 1]), int64 arrays."""

    offsets: np.ndarray
    positions: np.ndarray
    rows: np.ndarray

    def within(self, members: list[int]) -> tuple["Listed", np.ndarray]:
        """The documents in the segment positions ``members``, renumbered to positions in
        ``members``, and the indices into this list they come from."""
        if members == list(range(len(members))) and self.positions.max(initial=-1) < len(
                members):
            return self, np.arange(len(self.rows))  # every segment is in the group
        lookup = np.full(max(members[-1], int(self.positions.max(initial=-1))) + 1, -1,
                         dtype=np.int64)
        lookup[members] = np.arange(len(members))
        local = lookup[self.positions]
        picked = np.flatnonzero(local >= 0)
        n_queries = len(self.offsets) - 1
        query_of = np.repeat(np.arange(n_queries), np.diff(self.offsets))[picked]
        offsets = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum(np.bincount(query_of, minlength=n_queries), out=offsets[1:])
        return Listed(offsets, local[picked], self.rows[picked]), picked


class SegmentKind(ABC):
    """One storage kind, bound to the settings of one index (dim, nbits, ...).

    Handles: ``open_codec`` returns the checked codec of one codec version (None for kinds
    without a codec); ``open_segment`` returns the checked segment every other method takes.
    Both raise ``storage.CorruptionError`` naming the bad file."""

    name: str
    #: Array names holding a segment's token data (for bytes-per-token statistics).
    data_arrays: tuple[str, ...]
    #: True when the kind has a staged (approximate) search; flat kinds are always exact.
    staged: bool = False

    def __init__(self, settings: Mapping[str, Any]):
        self.dim = int(settings["dim"])

    @staticmethod
    def create_settings(dim: int, options: Mapping[str, Any]) -> dict[str, Any]:
        """Checked kind-specific settings recorded at ``Index.create`` from its keywords."""
        return {}

    @abstractmethod
    def encode(self, tokens: np.ndarray, doc_offsets: np.ndarray, codec: Arrays | None,
               settings: Mapping[str, Any], profile: dict) -> tuple[dict, dict | None]:
        """Segment arrays of tokens (T, dim) float32 / doc_offsets int64 (n + 1,), and the new
        codec arrays when this add must create one (else None)."""

    def train_codec(self, sample: np.ndarray, settings: Mapping[str, Any], profile: dict
                    ) -> dict | None:
        """Codec arrays fitted on a sample of token rows (S, dim) float32 (None for kinds
        without a codec)."""
        return None

    def open_codec(self, folder: Path, arrays: Arrays) -> Any:
        """The checked codec of one codec version read from disk."""
        return None

    @abstractmethod
    def open_segment(self, folder: Path, arrays: Arrays, n_docs: int, codec: Any) -> Any:
        """The checked handle of one segment read from disk (every invariant the kernels rely
        on: no later search re-checks it)."""

    @abstractmethod
    def search(self, codec: Any, segments: list, masks: list, queries: np.ndarray,
               query_offsets: np.ndarray, k: int, params: Mapping[str, Any], exact: bool,
               also: "Listed | None" = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Top-k over segments (handles) sharing one codec; masks: uint8 (n_docs,) or None per
        segment. -> (scores float32 (nq, m), segment position int64 (nq, m), row int64
        (nq, m), stats STATS_DTYPE (nq,), exact scores float32 of the ``also`` documents
        (positions into ``segments``), searchable or not, or None when the kind does not score
        them in its search (the caller then uses :meth:`score_rows`)); each row best first
        within a segment."""

    @abstractmethod
    def score_rows(self, codec: Any, segment: Any, query: np.ndarray, rows: np.ndarray
                   ) -> np.ndarray:
        """Exact MaxSim of query (Lq, dim) float32 against the documents rows int64 ->
        float32 (len(rows),)."""

    @abstractmethod
    def decode_rows(self, codec: Any, segment: Any, rows: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored tokens float32 (T', dim) of the documents rows, with offsets
        (len(rows) + 1,)."""

    @abstractmethod
    def merge(self, inp: MergeInput, retrain: bool) -> Arrays | Merged:
        """The merged segment of a compaction (``storage.Store.compact``)."""


_REGISTRY: dict[str, type[SegmentKind]] = {}


def register(*names: str):
    """Class decorator: make a SegmentKind available under ``names``."""
    def add(cls: type[SegmentKind]) -> type[SegmentKind]:
        for name in names:
            _REGISTRY[name] = cls
        return cls
    return add


def names() -> tuple[str, ...]:
    """Every registered storage kind, in registration order."""
    return tuple(_REGISTRY)


def kind_class(name: str) -> type[SegmentKind]:
    """The class of storage kind ``name``; ValueError listing the kinds otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"storage must be one of {', '.join(_REGISTRY)}; got {name!r}")
    return _REGISTRY[name]


def make(settings: Mapping[str, Any]) -> SegmentKind:
    """The kind of an index from its settings (``storage``, ``dim``, ...)."""
    return kind_class(settings["storage"])(settings)


def opened(folder: Path, arrays: Arrays, make, *args) -> Any:
    """``make(*args)`` (a ``_core`` segment or codec constructor, which checks every array),
    with its TypeError / ValueError turned into a CorruptionError naming the file: the
    message starts with the name of the bad array."""
    try:
        return make(*args)
    except (TypeError, ValueError) as exc:
        name = re.match(r"[a-z_]*", str(exc)).group(0)
        file = folder / (f"{name}.npy" if name in arrays else "manifest.json")
        raise CorruptionError(file, str(exc)) from None


def empty_stats(n_queries: int) -> np.ndarray:
    """Zeroed per-query statistics, STATS_DTYPE (n_queries,)."""
    return np.zeros(n_queries, dtype=STATS_DTYPE)


def add_stats(total: np.ndarray, part: np.ndarray) -> None:
    """Add per-query statistics ``part`` into ``total`` field by field."""
    for f in STATS_DTYPE.names:
        total[f] += part[f]


def stats_dict(raw: np.ndarray) -> dict[str, Any]:
    """Per-query records as the ``stats`` of ``Index.search(return_stats=True)``: stage times
    summed over queries, counts averaged, and every query's record."""
    fields = STATS_DTYPE.names
    timed = [f for f in fields if STATS_DTYPE[f].kind == "f"]
    counted = [f for f in fields if STATS_DTYPE[f].kind != "f"]
    n_queries = raw.shape[0]
    per_query = [{f: (float(raw[f][q]) if f in timed else int(raw[f][q])) for f in fields}
                 for q in range(n_queries)]
    return {"stages_ms": {f.removesuffix("_ms"): float(raw[f].astype(np.float64).sum())
                          for f in timed},
            "counts_mean": {f.removeprefix("n_"): float(raw[f].astype(np.float64).mean())
                            if n_queries else 0.0 for f in counted},
            "per_query": per_query}
