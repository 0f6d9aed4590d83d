"""where / subset filters on random metadata against a Python brute-force oracle, and the
guards that keep a filter expression from reading or changing anything else."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _storage_workload as wl
from gingham.storage import Store, UnknownIdError

LANGS = ["en", "fr", "de"]
meta_st = st.fixed_dictionaries(
    {"lang": st.sampled_from(LANGS), "year": st.integers(1990, 2030)},
    optional={"score": st.floats(-10, 10, allow_nan=False), "tag": st.sampled_from(["x", "y"])})
docs_st = st.lists(meta_st, min_size=1, max_size=40)


def _build(path: Path, metas: list, deleted: set, split: int) -> dict:
    """Two adds (split at `split`), then deletes; returns external id -> metadata of live."""
    ids = [f"d{i}" for i in range(len(metas))]
    store = Store.create(path, {"dim": wl.DIM})
    for lo, hi in ((0, split), (split, len(ids))):
        if hi > lo:
            store.add(ids[lo:hi], wl.segment_arrays([(x, 0) for x in ids[lo:hi]]),
                      metadata=metas[lo:hi])
    if deleted:
        store.delete([ids[i] for i in sorted(deleted)])
    store.close()
    return {ids[i]: m for i, m in enumerate(metas) if i not in deleted}


PREDICATES = [
    ("json_extract(metadata, '$.lang') = ?", lambda m, p: m["lang"] == p[0],
     st.tuples(st.sampled_from(LANGS))),
    ("json_extract(metadata, '$.year') BETWEEN ? AND ?", lambda m, p: p[0] <= m["year"] <= p[1],
     st.tuples(st.integers(1990, 2030), st.integers(1990, 2030))),
    ("json_extract(metadata, '$.lang') = ? AND json_extract(metadata, '$.year') > ?",
     lambda m, p: m["lang"] == p[0] and m["year"] > p[1],
     st.tuples(st.sampled_from(LANGS), st.integers(1990, 2030))),
    ("json_extract(metadata, '$.score') < ? OR json_extract(metadata, '$.tag') = ?",
     lambda m, p: ("score" in m and m["score"] < p[0]) or m.get("tag") == p[1],
     st.tuples(st.floats(-10, 10, allow_nan=False), st.sampled_from(["x", "y"]))),
    ("json_extract(metadata, '$.tag') IS NULL", lambda m, p: "tag" not in m, st.just(())),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), metas=docs_st)
def test_where_and_subset_match_oracle(data, metas):
    n = len(metas)
    deleted = data.draw(st.sets(st.integers(0, n - 1), max_size=n))
    split = data.draw(st.integers(0, n))
    with tempfile.TemporaryDirectory() as tmp:
        live = _build(Path(tmp) / "idx", metas, deleted, split)
        store = Store.open(Path(tmp) / "idx")
        with store.snapshot() as snap:
            internal = {x: int(i) for x, i in zip(snap.ids(), snap.resolve(snap.ids()))}
            assert set(internal) == set(live)
            for expr, oracle, params_st in PREDICATES:
                params = list(data.draw(params_st))
                got = snap.where(expr, params)
                want = sorted(internal[x] for x, m in live.items() if oracle(m, params))
                assert got.tolist() == want, (expr, params)
                # the masks the Index will search with select the same documents
                masks = snap.masks(got)
                selected = sorted(int(s.internal_ids[r]) for s, mask in zip(snap.segments, masks)
                                  for r in np.flatnonzero(mask))
                assert selected == want
            every = [f"d{i}" for i in range(n)]
            subset = data.draw(st.lists(st.sampled_from(every), max_size=10, unique=True))
            got = snap.resolve(subset, missing="ignore")
            assert got.tolist() == [internal[x] for x in subset if x in live]
            if any(x not in live for x in subset):
                with pytest.raises(UnknownIdError):
                    snap.resolve(subset)
            internal_ids, seg_ids, rows = snap.rows([x for x in subset if x in live])
            by_id = {s.id: s for s in snap.segments}
            assert [int(by_id[s].internal_ids[r]) for s, r in zip(seg_ids, rows)] == \
                internal_ids.tolist() == got.tolist()
        store.close()


@pytest.fixture
def snap(tmp_path):
    _build(tmp_path / "idx", [{"lang": "en", "year": 2000}, {"lang": "fr", "year": 2001}],
           set(), 1)
    store = Store.open(tmp_path / "idx")
    s = store.snapshot()
    yield s
    s.close()
    store.close()


@pytest.mark.parametrize("expr", [
    "1); DELETE FROM documents; SELECT (1",
    "1 -- comment",
    "(SELECT count(*) FROM meta) > 0",
    "(SELECT count(*) FROM sqlite_master) > 0",
    "external_id IN (SELECT key FROM settings)",
])
def test_filter_cannot_escape(snap, expr):
    with pytest.raises(ValueError):
        snap.where(expr)
    assert snap.ids() == ["d0", "d1"]


def test_filter_values_are_bound_and_errors_are_clear(snap):
    assert snap.where("external_id = ?", ["d1' OR '1'='1"]).tolist() == []
    assert snap.where("json_extract(metadata, '$.year') >= :y", {"y": 2001}).tolist() == [1]
    with pytest.raises(ValueError, match="failed"):
        snap.where("json_extract(metadata, '$.lang') = ?", [])
    with pytest.raises(ValueError, match="failed"):
        snap.where("no_such_column = 1")
    with pytest.raises(ValueError, match="non-empty"):
        snap.where("  ")
