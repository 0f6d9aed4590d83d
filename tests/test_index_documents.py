"""Hits with their documents in one step: Index.search(with_documents=True), Index.documents."""
from __future__ import annotations

import numpy as np
import pytest

import gingham

DIM = 16


def _docs(rng, n):
    return [rng.standard_normal((int(rng.integers(1, 9)), DIM)).astype(np.float32)
            for _ in range(n)]


@pytest.fixture(params=["residual", "fp16"])
def index(request, tmp_path):
    rng = np.random.default_rng(7)
    options = {"nbits": 2, "n_centroids": 8} if request.param == "residual" else {}
    idx = gingham.Index.create(tmp_path / "idx", dim=DIM, storage=request.param, **options)
    ids = [f"d{i}" for i in range(40)]
    idx.add(ids, _docs(rng, 40), metadata=[{"i": i} for i in range(40)],
            texts=[f"text {i}" if i % 3 else None for i in range(40)])
    idx.add([f"e{i}" for i in range(10)], _docs(rng, 10))  # a second segment
    idx.delete(["d3", "e1"])
    yield idx
    idx.close()


def test_with_documents_matches_hits_and_get(index):
    queries = [np.random.default_rng(s).standard_normal((4, DIM)).astype(np.float32)
               for s in range(3)]
    for mode in ("plaid", "exact"):
        plain = index.search(queries, k=12, mode=mode)
        rich = index.search(queries, k=12, mode=mode, with_documents=True)
        assert len(rich) == len(plain)
        for hits, docs in zip(plain, rich):
            assert [(h.id, h.score, h.rank) for h in hits] == \
                [(d["id"], d["score"], d["rank"]) for d in docs]
            for d in docs:
                assert {k: d[k] for k in ("id", "metadata", "text")} == index.get(d["id"])
    single = index.search(queries[0], k=5, with_documents=True)
    assert [d["id"] for d in single] == [h.id for h in index.search(queries[0], k=5)]


def test_documents_in_input_order_and_unknown_ids(index):
    ids = ["e4", "d0", "d2", "d1"]
    assert index.documents(ids) == [index.get(i) for i in ids]
    assert index.documents(ids)[1] == {"id": "d0", "metadata": {"i": 0}, "text": None}
    assert index.documents(ids)[2] == {"id": "d2", "metadata": {"i": 2}, "text": "text 2"}
    with pytest.raises(KeyError, match="not in the index"):
        index.documents(["d0", "d3"])  # d3 is deleted
    with pytest.raises(TypeError, match="ids"):
        index.documents([1, 2])
