"""Exact merge of per-shard top-k lists: (score desc, global sequence number asc), the tie
rule of one Index (lower internal id = earlier added).

Within a shard, internal-id order is global-sequence order, so each shard's list is already
in merged order; only equal scores coming from different shards need the sequence numbers,
which the caller fetches for exactly those ids (``tied_ids``).
"""
from __future__ import annotations

from typing import Callable, Sequence

Entry = tuple  # (id, score, ...) as a shard returns it


def _contenders(lists: dict[int, Sequence[Entry]], k: int | None) -> list[tuple]:
    """(score, shard, position, entry) of every entry, best score first (stable)."""
    flat = [(float(e[1]), s, p, e) for s, entries in lists.items()
            for p, e in enumerate(entries)]
    flat.sort(key=lambda t: (-t[0], t[1], t[2]))
    return flat


def tied_ids(lists: dict[int, Sequence[Entry]], k: int | None) -> dict[int, list[str]]:
    """Ids (by shard) whose score equals the score of an entry from another shard, among the
    entries at or above the k-th best score: the only ones whose order needs sequence
    numbers."""
    flat = _contenders(lists, k)
    if k is not None and len(flat) > k:
        cut = flat[k - 1][0]
        flat = [t for t in flat if t[0] >= cut]
    shards_of: dict[float, set] = {}
    for score, s, _, _ in flat:
        shards_of.setdefault(score, set()).add(s)
    out: dict[int, list[str]] = {}
    for score, s, _, e in flat:
        if len(shards_of[score]) > 1:
            out.setdefault(s, []).append(e[0])
    return out


def merge(lists: dict[int, Sequence[Entry]], k: int | None,
          seq_of: Callable[[str], int]) -> list[Entry]:
    """The best k entries (all when k is None) of the shards' lists in merged order; seq_of
    gives the global sequence number of every id ``tied_ids`` named."""
    flat = _contenders(lists, k)
    tied = {e[0] for ids in tied_ids(lists, k).values() for e in [(i,) for i in ids]}
    # Entries whose score no other shard shares keep their shard's own order (position).
    flat.sort(key=lambda t: (-t[0], seq_of(t[3][0]) if t[3][0] in tied else -1, t[1], t[2]))
    return [t[3] for t in flat[:k]]
