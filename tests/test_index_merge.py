"""Bounded compaction: ``Index.compact(max_segments=N)`` and its policy (engine/merging.py).

Oracles: hand-computed merge choices; numpy float64 brute-force MaxSim over the live documents
(the original vectors for fp32, the stored decoded tokens for residual) for the results after
any number of merges; for concurrent searches, the brute-force top-k of every prefix of the
writes (a search must equal one of them: the commit its snapshot saw).
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import gingham
from gingham.engine.index import bytes_on_disk
from gingham.engine.merging import segments_to_merge, tier

DIM = 8


def docs(rng, n):
    return [rng.standard_normal((int(rng.integers(1, 6)), DIM)).astype(np.float32)
            for _ in range(n)]


def brute_force(query, live: dict, k: int) -> list[tuple[str, float]]:
    """Top-k (id, score) by exact MaxSim in float64, ties by insertion order (dict order)."""
    q = query.astype(np.float64)
    scored = [(-(q @ t.astype(np.float64).T).max(1).sum(), i, doc_id)
              for i, (doc_id, t) in enumerate(live.items())]
    return [(doc_id, -s) for s, _, doc_id in sorted(scored)[:k]]


def same(hits, expected):
    assert [h.id for h in hits] == [e[0] for e in expected]
    np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected],
                               rtol=1e-4, atol=1e-4)


# ---- the policy -------------------------------------------------------------------------------

def test_tiers_are_powers_of_two_of_live_documents():
    assert [tier(n) for n in (0, 1, 2, 3, 4, 7, 8, 1000)] == [0, 0, 1, 1, 2, 2, 3, 9]


@pytest.mark.parametrize("sizes, limit, expected", [
    ([5, 1, 1], 3, []),                      # at the limit: nothing
    ([5, 1, 1], 2, [1, 2]),                  # the two of tier 0
    ([100, 1, 40, 3, 2, 1], 5, [1, 5]),      # lowest tier with two members: tier 0
    ([100, 40, 3, 2, 9], 4, [2, 3]),         # tier 1 (2 and 3), not the smallest overall
    ([64, 1, 2, 4, 8], 4, [1, 2]),           # one per tier: the two smallest
    ([0, 0, 7], 1, [0, 1]),                  # empty segments are tier 0
    ([3], 0, []),                            # one segment cannot be merged further
])
def test_segments_to_merge(sizes, limit, expected):
    assert segments_to_merge(sizes, limit) == expected


def test_a_stream_of_small_adds_keeps_about_one_segment_per_tier():
    sizes, rewritten = [], 0
    for _ in range(3000):
        sizes.append(4)
        while chosen := segments_to_merge(sizes, 8):
            merged = sum(sizes[i] for i in chosen)
            rewritten += merged
            sizes = [s for i, s in enumerate(sizes) if i not in chosen] + [merged]
        assert len(sizes) <= 8
    assert sum(sizes) == 12000
    # every document rewritten about once per tier it climbed (log2(12000 / 4) < 12), far
    # from the ~3000 / 2 times of merging everything on every add
    assert rewritten / 12000 < 12


# ---- the index --------------------------------------------------------------------------------

@pytest.mark.parametrize("storage", ["fp32", "residual"])
def test_many_small_writes_stay_within_the_limit_with_unchanged_results(tmp_path, storage):
    rng = np.random.default_rng(1)
    idx = gingham.Index.create(tmp_path / "i", dim=DIM, storage=storage, n_centroids=8)
    live: dict[str, np.ndarray] = {}
    n = 0
    for step in range(40):
        batch = docs(rng, int(rng.integers(1, 4)))
        ids = [f"d{n + i}" for i in range(len(batch))]
        n += len(batch)
        idx.add(ids, batch)
        live.update(zip(ids, batch))
        if step % 5 == 4:  # an upsert (a new internal id) and a delete between the adds
            victim, replaced = list(live)[0], list(live)[1]
            idx.delete([victim])
            del live[victim]
            new = docs(rng, 1)[0]
            idx.add([replaced], [new], upsert=True)
            del live[replaced]
            live[replaced] = new
        idx.compact(max_segments=4)
        assert idx.stats()["n_segments"] <= 4
    assert sorted(idx.ids()) == sorted(live)
    if storage == "residual":  # the oracle scores what is stored: the decoded tokens
        live = {i: idx.tokens(i) for i in live}
    for q in docs(rng, 5):
        same(idx.search(q, k=7, mode="exact"), brute_force(q, live, 7))
    reopened = gingham.Index.open(tmp_path / "i")
    reopened.verify()
    q = docs(rng, 1)[0]
    same(reopened.search(q, k=len(live), mode="exact"), brute_force(q, live, len(live)))
    reopened.close()
    idx.close()


def test_max_segments_is_checked(tmp_path):
    idx = gingham.Index.create(tmp_path / "i", dim=DIM, storage="fp32")
    for bad in (0, -1, 1.5, True):
        with pytest.raises((ValueError, TypeError), match="max_segments"):
            idx.compact(max_segments=bad)
    with pytest.raises(ValueError, match="retrain"):
        idx.compact(max_segments=2, retrain=True)
    idx.close()


def test_a_compaction_within_the_limit_writes_nothing(tmp_path):
    idx = gingham.Index.create(tmp_path / "i", dim=DIM, storage="fp32")
    rng = np.random.default_rng(2)
    for i in range(3):
        idx.add([f"d{i}"], docs(rng, 1))
    commit = idx.stats()["commit"]
    idx.compact(max_segments=3)
    assert idx.stats()["commit"] == commit and idx.stats()["n_segments"] == 3
    idx.compact(max_segments=1)
    assert idx.stats()["n_segments"] == 1
    idx.close()


def test_searches_during_merges_see_one_commit_each(tmp_path):
    """A writer adds batches and merges after each; searching threads compare every result
    with the brute-force top-k of each prefix of the batches: a search must match one."""
    rng = np.random.default_rng(3)
    batches = [docs(rng, 2) for _ in range(30)]
    query = docs(rng, 1)[0]
    idx = gingham.Index.create(tmp_path / "i", dim=DIM, storage="fp32")
    idx.add(["seed"], [batches[0][0]])
    live = {"seed": batches[0][0]}
    prefixes = [brute_force(query, live, 5)]
    for b, batch in enumerate(batches):
        live.update({f"b{b}-{j}": t for j, t in enumerate(batch)})
        prefixes.append(brute_force(query, live, 5))
    done, seen, errors = threading.Event(), [], []

    def search():
        try:
            while not done.is_set():
                hits = idx.search(query, k=5, mode="exact")
                got = [h.id for h in hits]
                match = [p for p, exp in enumerate(prefixes) if [e[0] for e in exp] == got]
                assert match, got
                same(hits, prefixes[match[0]])
                seen.append(match[0])
                assert idx.stats()["n_docs"] >= 1  # walks folders the merges remove
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for b, batch in enumerate(batches):
        if done.is_set():
            break
        idx.add([f"b{b}-{j}" for j in range(len(batch))], batch)
        idx.compact(max_segments=3)
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert idx.stats()["n_segments"] <= 3
    same(idx.search(query, k=5, mode="exact"), prefixes[-1])
    assert seen  # the searchers ran while the writer wrote
    idx.close()


def test_bytes_on_disk_leaves_out_files_removed_while_it_walks(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert bytes_on_disk(tmp_path) == 8
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # the writer removed x between listing and stat
        if str(path).endswith(os.sep + "x"):
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    assert bytes_on_disk(tmp_path) == 3
    assert bytes_on_disk(tmp_path / "gone") == 0
