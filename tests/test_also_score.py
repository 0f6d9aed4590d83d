"""Index.search(also_score=): exact scores of listed documents beside the search, against a
numpy MaxSim of the stored vectors; the id lookup of the segments against the catalog's; the
checks of the also arrays in the binding."""
from __future__ import annotations

import numpy as np
import pytest

import gingham
from gingham import _core
from gingham import _synthetic as syn
from gingham.engine.kinds import Listed
from gingham.storage import UnknownIdError

DIM = 16
N = 240


@pytest.fixture(scope="module")
def corpus():
    tokens, offsets = syn.clustered_corpus(N, dim=DIM, n_centers=24, min_len=3, max_len=10,
                                           seed=5)
    docs = syn.split(tokens, offsets)
    ids = [f"doc-{i}" for i in range(N)]
    queries = syn.queries_near(tokens, offsets, 4, n_tokens=5)
    return ids, docs, queries


def build(tmp_path, corpus, storage):
    """Three segments, a delete and an upsert: ids in several segments, dead rows among them."""
    ids, docs, _ = corpus
    idx = gingham.Index.create(tmp_path / storage, DIM, storage=storage)
    for lo, hi in ((0, 100), (100, 200), (200, N)):
        idx.add(ids[lo:hi], docs[lo:hi], [{"even": i % 2 == 0} for i in range(lo, hi)])
    idx.delete(["doc-3", "doc-150"])
    idx.add(["doc-7"], [docs[8]], upsert=True)  # doc-7's old row stays in segment 0, dead
    return idx


def maxsim(q, d):
    return float((q.astype(np.float64) @ d.T.astype(np.float64)).max(axis=1).sum())


@pytest.mark.parametrize("storage", ["residual", "fp32", "int8"])
def test_also_scores_are_exact_maxsim_whatever_the_filters(tmp_path, corpus, storage):
    ids, _, queries = corpus
    idx = build(tmp_path, corpus, storage)
    asked = ["doc-3", "doc-7", "doc-150", "nope", "doc-0", "doc-199", "doc-239", "doc-42"]
    live = [i for i in asked if i not in ("doc-3", "doc-150", "nope")]
    for options in ({}, {"mode": "exact"}, {"subset": ["doc-0", "doc-1"]},
                    {"where": "json_extract(metadata, '$.even') = 1"}):
        for q in queries:
            hits, scored = idx.search(q, 5, also_score=asked, **options)
            assert [h.id for h in hits] == [h.id for h in idx.search(q, 5, **options)]
            assert list(scored) == live
            want = [maxsim(q, idx.tokens(i)) for i in live]
            np.testing.assert_allclose(list(scored.values()), want, rtol=1e-5, atol=1e-5)


def test_also_score_batches_and_stats(tmp_path, corpus):
    ids, _, queries = corpus
    idx = build(tmp_path, corpus, "residual")
    also = [["doc-1", "doc-2"], [], ["doc-230"], ids[100:110]]
    hits, scored, stats = idx.search(queries, 3, also_score=also, return_stats=True)
    assert len(hits) == len(scored) == 4 and stats["n_queries"] == 4
    for q, asked, got in zip(queries, also, scored):
        assert list(got) == asked
        single = idx.search(q, 3, also_score=asked)[1]
        assert got == pytest.approx(single, abs=1e-6)
    with pytest.raises(ValueError, match="one list of ids per query"):
        idx.search(queries, 3, also_score=also[:2])
    with pytest.raises(ValueError, match="more than once"):
        idx.search(queries[0], 3, also_score=["doc-1", "doc-1"])
    with pytest.raises(TypeError, match="also_score"):
        idx.search(queries[0], 3, also_score="doc-1")


def test_rerank_missing_ignore(tmp_path, corpus):
    _, _, queries = corpus
    idx = build(tmp_path, corpus, "fp32")
    got = idx.rerank(queries[0], ["nope", "doc-3", "doc-9"], missing="ignore")
    assert [h.id for h in got] == ["doc-9"]
    with pytest.raises(KeyError):
        idx.rerank(queries[0], ["nope", "doc-9"])
    with pytest.raises(ValueError, match="missing"):
        idx.rerank(queries[0], ["doc-9"], missing="skip")


def test_located_equals_the_catalog(tmp_path, corpus):
    ids, docs, _ = corpus
    idx = build(tmp_path, corpus, "residual")
    idx.add(["doc-7", "doc-120"], [docs[1], docs[2]], upsert=True)
    idx.compact(max_segments=2)
    view = idx._view
    live = idx.ids()
    internal, seg_ids, rows = view.snap.rows(live)  # SQLite: the oracle
    got = view.located(live)
    np.testing.assert_array_equal(got[0], internal)
    np.testing.assert_array_equal([view.segments[p].id for p in got[1]], seg_ids)
    np.testing.assert_array_equal(got[2], rows)
    asked = ["doc-3", "nope", live[5], "doc-150"]
    internal, pos, rows = view.located(asked, missing="ignore")
    assert (pos >= 0).tolist() == [False, False, True, False]
    assert (internal[pos < 0] == -1).all() and (rows[pos < 0] == -1).all()
    with pytest.raises(UnknownIdError, match="2 id"):
        view.located(["doc-3", live[0], "nope"])


def test_id_lookup_against_a_dict():
    rng = np.random.default_rng(1)
    names = [f"{rng.integers(1e6)}-é-{i % 50}" for i in range(400)] + ["x", "x", "日本"]
    raw = [n.encode() for n in names]
    offsets = np.zeros(len(raw) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in raw])
    lookup = _core.IdLookup(np.frombuffer(b"".join(raw), np.uint8), offsets)
    assert lookup.n_rows == len(names)
    live = np.ones(len(names), np.uint8)
    live[len(names) - 3] = 0  # the first "x" is dead: the second one is found
    keys = names[::17] + ["x", "日本", "absent", ""]
    want = {n: r for r, n in enumerate(names) if live[r]}
    assert lookup.find(keys, live).tolist() == [want.get(k, -1) for k in keys]
    assert lookup.find(["x"]).tolist()[0] in (len(names) - 3, len(names) - 2)
    with pytest.raises(ValueError, match="live"):
        lookup.find(["x"], live[:5])
    with pytest.raises(ValueError, match="id_offsets"):
        _core.IdLookup(np.zeros(3, np.uint8), np.array([0, 2, 1, 3], np.int64))
    with pytest.raises(ValueError, match="id_offsets"):
        _core.IdLookup(np.zeros(3, np.uint8), np.array([0, 4], np.int64))


def test_listed_within_renumbers_positions():
    listed = Listed(np.array([0, 3, 4]), np.array([2, 0, 2, 1]), np.array([5, 6, 7, 8]))
    part, picked = listed.within([2])
    assert picked.tolist() == [0, 2]
    assert part.offsets.tolist() == [0, 2, 2] and part.positions.tolist() == [0, 0]
    assert part.rows.tolist() == [5, 7]
    whole, picked = listed.within([0, 1, 2])
    assert whole is listed and picked.tolist() == [0, 1, 2, 3]


def test_plaid_search_checks_also(tmp_path, corpus):
    _, _, queries = corpus
    idx = build(tmp_path, corpus, "residual")
    segments = idx._view.handles
    q = np.ascontiguousarray(queries[0], np.float32)
    qo = np.array([0, len(q)], np.int64)
    args = (q, qo, segments, [None] * len(segments), 5, 2, 0.45, 64)
    out = _core.plaid_search(*args, also=(np.array([0, 1]), np.array([0]), np.array([4])))
    assert len(out) == 5 and out[4].shape == (1,)
    bad = [((np.array([0, 2]), np.array([0]), np.array([4])), "also_offsets"),
           ((np.array([0, 1]), np.array([9]), np.array([4])), "also_segments"),
           ((np.array([0, 1]), np.array([0]), np.array([10 ** 6])), "also_rows"),
           ((np.array([0, 1]), np.array([0]), np.array([], np.int64)), "also_rows"),
           ((np.array([0, 1]), np.array([0])), "also must be")]
    for also, name in bad:
        with pytest.raises(ValueError, match=name):
            _core.plaid_search(*args, also=also)
