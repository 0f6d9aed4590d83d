"""PLAID over the shards with its candidate cuts taken over all of them, so the result is one
Index's PLAID result (same codec, same documents, same parameters): ids, order and scores.

One Index (csrc/gingham/plaid.h): candidates = the documents of the query's top ``ncells``
cells (doubling ncells while fewer than k); keep the best max(ndocs, k) by the pruned
approximate score; if more than max(ndocs / 4, k) remain, keep that many by the unpruned
score; score those exactly; top k. Ties go to the lower internal id = the earlier added, which
across shards is the lower global sequence number (distributed/merge.py).

Over N shards (every shard on the pinned commit of its phase 1, engine/staged.py):

1. every shard returns its candidate count and its own best max(ndocs, k) by the pruned score
   with their unpruned scores and global sequence numbers: a superset of its part of the
   global cut, since within a shard the global order is the shard's order. The coordinator
   widens (doubles ncells of) queries whose total is below k, as one Index does, asking the
   shards again for those queries only.
2. the coordinator takes both cuts over the union, and each shard scores its survivors
   exactly and returns its top k, which merge as exact results do.

Equal approximate scores are common (every query token floored at the threshold gives the
same sum), so the sequence numbers travel with every candidate: a shard keeps them in memory
by internal id (``SeqCache``), read from its catalog once.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Call = Callable[..., dict]


def cut(values: dict[int, np.ndarray], seqs: dict[int, np.ndarray], m: int
        ) -> dict[int, np.ndarray]:
    """Positions (int64, sorted, per shard) of the best m entries of every shard's ``values``
    (float32) together: score desc, ties by global sequence number (``seqs`` int64, per
    shard, one per value) asc, which is one Index's order."""
    if sum(len(v) for v in values.values()) <= m:
        return {s: np.arange(len(v), dtype=np.int64) for s, v in values.items()}
    shard_of = np.concatenate([np.full(len(v), s, dtype=np.int64) for s, v in values.items()])
    pos = np.concatenate([np.arange(len(v), dtype=np.int64) for v in values.values()])
    score = np.concatenate(list(values.values())).astype(np.float64)
    order = np.lexsort((np.concatenate([seqs[s] for s in values]), -score))[:m]
    return {s: np.sort(pos[order][shard_of[order] == s]) for s in values}


def survivors(phase1: dict[int, dict], q: int, k: int, ndocs: int) -> dict[int, np.ndarray]:
    """Positions in each shard's phase-1 list of query q that one Index scores exactly."""
    seqs = {s: a["seq"][q] for s, a in phase1.items()}
    first = cut({s: a["approx"][q] for s, a in phase1.items()}, seqs, max(ndocs, k))
    n_full = max(ndocs // 4, k)
    if sum(len(p) for p in first.values()) <= n_full:
        return first
    second = cut({s: phase1[s]["rescored"][q][p] for s, p in first.items()},
                 {s: seqs[s][p] for s, p in first.items()}, n_full)
    return {s: first[s][p] for s, p in second.items()}


def split(answer: dict) -> dict:
    """A shard's phase-1 answer (flat arrays with per-query counts) -> per-query lists; the
    per-query counts are copies (Ray hands over read-only arrays; widening updates them)."""
    bounds = np.cumsum(answer["counts"])[:-1]
    return {"n_centroids": int(answer["n_centroids"]),
            "n_candidates": np.array(answer["n_candidates"], dtype=np.int64),
            "ncells": np.array(answer["ncells"], dtype=np.int64),
            **{f: np.split(answer[f], bounds) for f in ("approx", "rescored", "seq")}}


def phase1(call: Call, shards: dict[int, tuple], token: str, k: int) -> dict[int, dict]:
    """Candidates of every shard named in ``shards`` (shard -> (queries, options)), widened
    as one Index widens: while the shards together have fewer than k candidates and not every
    cell is probed, ncells doubles (for those queries only)."""
    got = {s: split(a) for s, a in call("plaid_candidates", {
        s: (token, qs, k, opts) for s, (qs, opts) in shards.items()}).items()}
    while got:
        total = sum(a["n_candidates"] for a in got.values())
        ncells = next(iter(got.values()))["ncells"]
        n_centroids = max(a["n_centroids"] for a in got.values())
        widen = np.flatnonzero((total < k) & (ncells < n_centroids))
        if not len(widen):
            break
        wider = np.minimum(n_centroids, 2 * ncells[widen])
        more = call("plaid_widen", {s: (token, widen, wider) for s in got})
        for s, a in more.items():
            part = split(a)
            for j, q in enumerate(widen.tolist()):
                for f in ("approx", "rescored", "seq"):
                    got[s][f][q] = part[f][j]
                got[s]["n_candidates"][q] = part["n_candidates"][j]
                got[s]["ncells"][q] = wider[j]
        got = {s: got[s] for s in more}
    return got
