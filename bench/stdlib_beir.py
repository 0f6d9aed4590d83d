"""Write a small labelled BEIR folder from the Python standard library's docstrings.

A held-out check for hybrid fusion, built without relevance judgments from people and never
used to choose a fusion method or a constant: the corpus is ``stdlib_docstrings`` (first
paragraphs of the docstrings of the demo modules and their public functions and classes), each
query is the dotted name of one function or class turned into words ("json.loads" -> "json
loads", "os.path.getsize" -> "os path getsize", "CamelCase" -> "camel case"), and its one
relevant document is that object's docstring paragraph (title: its module's name). Every 3rd
function/class is a query (deterministic). The docstring need not contain the name, so
neither BM25 nor late interaction is favoured by construction.

    python bench/stdlib_beir.py OUT_FOLDER [--limit 900]
"""
from __future__ import annotations

import argparse
import json
import os
import re


def name_query(dotted: str) -> str:
    """'http.client.HTTPResponse' -> 'http client http response'."""
    words = []
    for part in dotted.split("."):
        part = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", part)
        part = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", part)
        words.extend(w for w in re.split(r"[_\s]+", part.lower()) if w)
    return " ".join(words)


def write_folder(out: str, limit: int) -> tuple[int, int]:
    """Write corpus.jsonl, queries.jsonl, qrels/test.tsv under ``out``; returns (docs, queries)."""
    from gingham.text.corpus import stdlib_docstrings

    docs = stdlib_docstrings(limit)
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for i, t, m in zip(docs.ids, docs.texts, docs.metadata):
            f.write(json.dumps({"_id": i, "title": m["module"], "text": t}) + "\n")
    named = [i for i, m in zip(docs.ids, docs.metadata) if m["kind"] != "module"][::3]
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for n, i in enumerate(named):
            f.write(json.dumps({"_id": f"q{n}", "text": name_query(i)}) + "\n")
    with open(os.path.join(out, "qrels", "test.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for n, i in enumerate(named):
            f.write(f"q{n}\t{i}\t1\n")
    return len(docs.ids), len(named)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--limit", type=int, default=900)
    a = p.parse_args()
    n_docs, n_queries = write_folder(a.out, a.limit)
    print(f"{a.out}: {n_docs} documents, {n_queries} queries")


if __name__ == "__main__":
    main()
