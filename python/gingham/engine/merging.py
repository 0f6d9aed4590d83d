"""Which segments a bounded compaction merges (``Index.compact(max_segments=...)``).

Segments are grouped in tiers by size: tier t holds the segments of 2^t to 2^(t+1) - 1 live
documents (empty ones count as tier 0). While there are more segments than allowed, the
segments of the lowest tier that holds at least two are merged into one; when every tier holds
a single segment, the two smallest are. Two segments of one tier merge into a segment of a
higher tier, so a document is rewritten about once per tier it climbs (log2 of the index size,
not once per add), and a stream of small adds leaves about one segment per tier.
"""
from __future__ import annotations

from typing import Sequence


def tier(n_live: int) -> int:
    """Size tier of a segment of ``n_live`` live documents: floor(log2(n_live)), 0 if empty."""
    return max(int(n_live), 1).bit_length() - 1


def segments_to_merge(n_live: Sequence[int], max_segments: int) -> list[int]:
    """Positions (into ``n_live``, ascending) of the segments to merge into one, or [] when
    there are at most ``max_segments``. n_live: live documents per segment, in any order."""
    if len(n_live) <= max_segments or len(n_live) < 2:
        return []
    tiers = [tier(n) for n in n_live]
    for t in sorted(set(tiers)):
        members = [i for i, ti in enumerate(tiers) if ti == t]
        if len(members) >= 2:
            return members
    smallest = sorted(range(len(n_live)), key=lambda i: (n_live[i], i))[:2]
    return sorted(smallest)
