"""The CLI over a sharded folder: info / verify / search detect the manifest; index --shards
builds one (slow: loads the encoder and starts Ray)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gingham import _synthetic as syn
from gingham.cli.main import main
from gingham.distributed import ShardedIndex


@pytest.fixture
def sharded(tmp_path):
    tokens, offsets = syn.clustered_corpus(120, dim=16, n_centers=16, min_len=3, max_len=8,
                                           seed=2)
    idx = ShardedIndex.create(tmp_path / "s", 16, n_shards=3)
    idx.add([f"d{i}" for i in range(120)], syn.split(tokens, offsets))
    idx.close()
    return tmp_path / "s"


def test_info_and_verify_read_a_sharded_folder(sharded, capsys):
    assert main(["info", str(sharded), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_docs"] == 120 and info["stats"]["n_shards"] == 3
    assert sum(s["n_docs"] for s in info["stats"]["shards"]) == 120
    assert main(["verify", str(sharded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"index": str(sharded), "ok": True,
                                                   "n_docs": 120, "n_shards": 3}


def test_search_of_an_embeddings_only_sharded_folder_is_a_clear_error(sharded, capsys):
    assert main(["search", str(sharded), "a query"]) != 0
    assert "without an encoder" in capsys.readouterr().err


def test_serve_an_embeddings_sharded_folder(sharded):
    """The HTTP API over a sharded folder answers as the ShardedIndex does (oracle: its own
    search, exact and PLAID), and its writes reach the shards."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import gingham
    from gingham.serve.server import create_app
    from server_util import live_server
    queries = syn.queries_near(*syn.clustered_corpus(120, dim=16, n_centers=16, min_len=3,
                                                     max_len=8, seed=2), 4, n_tokens=5)
    with ShardedIndex.open(sharded) as idx:
        expected = {mode: idx.search(queries, 5, mode=mode) for mode in ("exact", "plaid")}
    app = create_app(str(sharded), batch_window_ms=5)
    assert not app.state.service.has_encoder
    with live_server(app) as url, gingham.Client(url) as c:
        for mode, hits in expected.items():
            got = c.search(queries, k=5, mode=mode)
            assert [[h["id"] for h in q] for q in got] == [[h.id for h in q] for q in hits]
            np.testing.assert_allclose([[h["score"] for h in q] for q in got],
                                       [[h.score for h in q] for q in hits], atol=1e-5)
        c.add(["new"], [queries[0]])
        assert c.search(queries[0], k=1, mode="exact")[0]["id"] == "new"
        assert c.stats()["index"]["n_docs"] == 121
        assert c.delete(["new"]) == 1
    with ShardedIndex.open(sharded) as idx:
        assert len(idx) == 120 and "new" not in idx.ids()


def test_index_rejects_bad_shards(tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"_id": "a", "text": "hello"}) + "\n")
    assert main(["index", str(tmp_path / "i"), str(src), "--shards", "-1"]) != 0
    assert "--shards" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                            "ignore::ResourceWarning")
def test_index_with_shards_then_search(tmp_path, capsys, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with -m slow")
    pytest.importorskip("ray")
    pytest.importorskip("torch")
    import ray
    texts = ["the cat sat on the mat", "dogs chase cats", "stock markets fell today",
             "a recipe for bread", "rain is expected tomorrow", "the mat was red"] * 5
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"_id": f"t{i}", "text": t}) + "\n"
                           for i, t in enumerate(texts)))
    try:
        assert main(["index", str(tmp_path / "i"), str(src), "--shards", "2", "--quiet",
                     "--pca-dim", "0", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["n_docs"] == 30
        assert main(["search", str(tmp_path / "i"), "cat on a mat", "--json", "-k", "3"]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert hits[0]["text"] in ("the cat sat on the mat",)
        assert np.all(np.diff([h["score"] for h in hits]) <= 0)
        assert main(["search", str(tmp_path / "i"), "cat on a mat", "--hybrid", "--json",
                     "-k", "3"]) == 0  # the build wrote the corpus-wide BM25
        hybrid = json.loads(capsys.readouterr().out)["hits"]
        assert "cat" in hybrid[0]["text"]
    finally:
        ray.shutdown()
