"""The server keeps the segment count bounded: after an add that leaves more than
``ServiceLimits.max_segments`` segments its writer merges the smallest ones.

Oracle: numpy float64 brute-force MaxSim over the documents the test itself added (and the
index's stored tokens of the ones it started with, decoded: residual storage).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import gingham  # noqa: E402
from gingham.serve.server import create_app  # noqa: E402
from gingham.serve.service import ServiceLimits  # noqa: E402
from server_util import build_index, live_server, random_docs  # noqa: E402


def brute_force(query, live: dict, k: int) -> list[str]:
    q = query.astype(np.float64)
    scored = sorted((-(q @ t.astype(np.float64).T).max(1).sum(), i, doc_id)
                    for i, (doc_id, t) in enumerate(live.items()))
    return [(doc_id, -s) for s, _, doc_id in scored[:k]]


def test_a_stream_of_small_adds_keeps_at_most_max_segments(tmp_path):
    path = str(tmp_path / "index")
    ids, _ = build_index(path, n_docs=20)
    with gingham.Index.open(path) as idx:
        live = {i: idx.tokens(i) for i in ids}
    rng = np.random.default_rng(5)
    app = create_app(path, limits=ServiceLimits(max_segments=3))
    with live_server(app) as url, gingham.Client(url) as client:
        for step in range(12):
            new = random_docs(rng, 2)
            new_ids = [f"n{step}-0", f"n{step}-1"]
            client.add(new_ids, new)
            assert client.stats()["index"]["n_segments"] <= 3
        client.delete(["d0", "n0-0"])
        with gingham.Index.open(path) as idx:  # what is stored, decoded
            live = {i: idx.tokens(i) for i in idx.ids()}
        assert len(live) == 20 + 24 - 2
        for q in random_docs(rng, 4, lo=2, hi=5):
            got = client.search(q, k=8, mode="exact")
            expected = brute_force(q, live, 8)
            assert [h["id"] for h in got] == [e[0] for e in expected]
            np.testing.assert_allclose([h["score"] for h in got], [e[1] for e in expected],
                                       rtol=1e-4, atol=1e-4)
