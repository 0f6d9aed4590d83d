"""PLAID over the shards with its candidate cuts taken over all of them, so the result is one
Index's PLAID result (same codec, same documents, same parameters): ids, order and scores.

One Index (csrc/gingham/plaid.h): candidates = the documents of the query's top ``ncells``
cells (doubling ncells while fewer than k); keep the best max(ndocs, k) by the pruned
approximate score; if more than max(ndocs / 4, k) remain, keep that many by the unpruned
score; score those exactly; top k. Ties go to the lower internal id = the earlier added, which
across shards is the lower global sequence number (distributed/merge.py).

Over N shards (every shard on the pinned commit of its phase 1, engine/staged.py):

1. every shard returns its candidate count and its own best max(ndocs, k) by the pruned score
   with their unpruned scores: a superset of its part of the global cut, since within a shard
   the global order is the shard's order. The coordinator widens (doubles ncells of) queries
   whose total is below k, as one Index does, asking the shards again for those queries only.
2. the coordinator takes both cuts over the union (sequence numbers fetched only for equal
   scores at a cut's boundary that come from several shards), and each shard scores its
   survivors exactly and returns its top k, which merge as exact results do.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Call = Callable[..., dict]
SeqLookup = Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]]


def cut(values: dict[int, np.ndarray], internal: dict[int, np.ndarray], m: int,
        seqs: SeqLookup) -> dict[int, np.ndarray]:
    """Positions (int64, per shard) of the best m entries of every shard's ``values``
    (float32) together, ties by global sequence number; within a shard, ties follow
    ``internal`` (int64, the shard's internal ids: its global order). seqs maps shard ->
    internal ids to their sequence numbers (asked only for ties at the boundary)."""
    if sum(len(v) for v in values.values()) <= m:
        return {s: np.arange(len(v), dtype=np.int64) for s, v in values.items()}
    every = np.concatenate([v for v in values.values()]).astype(np.float64)
    bound = -np.partition(-every, m - 1)[m - 1]  # the m-th best score
    kept = {s: np.flatnonzero(v > bound) for s, v in values.items()}
    tied = {s: np.flatnonzero(v == bound) for s, v in values.items()}
    tied = {s: t for s, t in tied.items() if len(t)}
    need = m - sum(len(k) for k in kept.values())
    if len(tied) == 1:
        (s, t), = tied.items()
        kept[s] = np.concatenate([kept[s], t[np.argsort(internal[s][t], kind="stable")[:need]]])
    else:
        got = seqs({s: internal[s][t] for s, t in tied.items()})
        order = sorted((int(q), s, int(p)) for s, t in tied.items()
                       for q, p in zip(got[s], t.tolist()))[:need]
        for s in tied:
            extra = np.array([p for _, sh, p in order if sh == s], dtype=np.int64)
            kept[s] = np.concatenate([kept[s], extra])
    return {s: np.sort(k).astype(np.int64) for s, k in kept.items()}


def survivors(phase1: dict[int, dict], q: int, k: int, ndocs: int, seqs: SeqLookup
              ) -> dict[int, np.ndarray]:
    """Positions in each shard's phase-1 list of query q that one Index scores exactly."""
    approx = {s: a["approx"][q] for s, a in phase1.items()}
    internal = {s: a["internal"][q] for s, a in phase1.items()}
    first = cut(approx, internal, max(ndocs, k), seqs)
    n_full = max(ndocs // 4, k)
    if sum(len(p) for p in first.values()) <= n_full:
        return first
    rescored = {s: phase1[s]["rescored"][q][p] for s, p in first.items()}
    second = cut(rescored, {s: internal[s][p] for s, p in first.items()}, n_full, seqs)
    return {s: first[s][p] for s, p in second.items()}


def split(answer: dict) -> dict:
    """A shard's phase-1 answer (flat arrays with per-query counts) -> per-query lists."""
    bounds = np.cumsum(answer["counts"])[:-1]
    return {"n_centroids": int(answer["n_centroids"]),
            "n_candidates": np.asarray(answer["n_candidates"], dtype=np.int64),
            "ncells": np.asarray(answer["ncells"], dtype=np.int64),
            **{f: np.split(answer[f], bounds) for f in ("approx", "rescored", "internal")}}


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
                for f in ("approx", "rescored", "internal"):
                    got[s][f][q] = part[f][j]
                got[s]["n_candidates"][q] = part["n_candidates"][j]
                got[s]["ncells"][q] = wider[j]
        got = {s: got[s] for s in more}
    return got
