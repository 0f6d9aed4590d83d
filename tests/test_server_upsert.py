"""HTTP upsert on an embeddings index: the replaced document's text, metadata and score come
back, the count does not grow, a plain add of an existing id is refused (422). The oracle for
scores is a float64 MaxSim over the exact fp32 tokens. (Text indexes: test_server_text.py.)"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import gingham
from gingham.client import InvalidRequest
from gingham.serve.server import create_app
from server_util import DIM, live_server, random_docs


def maxsim(q, d):
    """Float64 MaxSim of one query against one document (the oracle for fp32 scores)."""
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


def test_upsert_replaces_an_embeddings_document(tmp_path):
    path = str(tmp_path / "index")
    rng = np.random.default_rng(4)
    docs = random_docs(rng, 12)
    ids = [f"d{i}" for i in range(12)]
    gingham.Index.create(path, dim=DIM, storage="fp32").add(
        ids, docs, [{"n": i} for i in range(12)], [f"text {i}" for i in range(12)])
    new = random_docs(rng, 1, lo=7, hi=7)[0]
    with live_server(create_app(path)) as url, gingham.Client(url) as c:
        with pytest.raises(InvalidRequest) as info:  # a plain add of an existing id
            c.add(["d3"], [new], texts=["other"])
        assert info.value.status == 422 and info.value.code == "invalid_argument"
        assert "upsert" in info.value.message
        assert c.get("d3") == {"id": "d3", "text": "text 3", "metadata": {"n": 3}}

        out = c.add(["d3"], [new], texts=["replaced"], metadata=[{"n": 99}], upsert=True)
        assert out == {"added": 1, "ids": ["d3"], "n_docs": 12}  # replaced, not added
        assert c.get("d3") == {"id": "d3", "text": "replaced", "metadata": {"n": 99}}
        hits = c.search(new, k=12, mode="exact", with_documents=True)
        assert c.stats()["index"]["n_docs"] == 12
    assert hits[0]["id"] == "d3"
    assert hits[0]["text"] == "replaced" and hits[0]["metadata"] == {"n": 99}
    expected = {i: maxsim(new, d) for i, d in zip(ids, docs)}
    expected["d3"] = maxsim(new, new)
    assert sorted(h["id"] for h in hits) == sorted(ids)
    for h in hits:
        assert h["score"] == pytest.approx(expected[h["id"]], rel=1e-5), h["id"]
        n = int(h["id"][1:])
        assert h["metadata"] == ({"n": 99} if n == 3 else {"n": n})
