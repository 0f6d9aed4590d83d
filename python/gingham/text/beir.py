"""Reader for BEIR-format folders: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

qrels files may or may not start with a header line (``query-id corpus-id score``); a first
line whose score field is not an integer is taken as the header. Judged documents missing from
the corpus are kept in the qrels (they count as relevant-but-unretrievable, as in BEIR) and
reported in ``missing_judged``. Judgments of queries absent from queries.jsonl are dropped
(counted in ``unknown_queries``): metrics average over the judged queries one can run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .corpus import JsonlRecord, read_jsonl


@dataclass
class BeirDataset:
    """A loaded BEIR split. ``doc_texts[i]`` belongs to ``doc_ids[i]`` (title + " " + text)."""

    name: str
    corpus_path: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    missing_judged: list[tuple[str, str]] = field(default_factory=list)
    unknown_queries: int = 0

    @property
    def judged_queries(self) -> tuple[list[str], list[str]]:
        """(ids, texts) of the queries that have at least one judgment, in file order."""
        pairs = [(q, t) for q, t in zip(self.query_ids, self.query_texts) if q in self.qrels]
        return [q for q, _ in pairs], [t for _, t in pairs]


def _doc_text(rec: JsonlRecord) -> str:
    return f"{rec.title} {rec.text}" if rec.title else rec.text


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    """qrels TSV (query-id, corpus-id, score; optional header line) -> {qid: {docid: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not line.strip():
                continue
            qid, did, score = parts[0], parts[1], parts[-1]
            try:
                grade = int(float(score))
            except ValueError:
                if lineno == 0:
                    continue  # header line
                raise ValueError(f"{path}:{lineno + 1}: score {score!r} is not a number") from None
            qrels.setdefault(qid, {})[did] = grade
    return qrels


def load_beir(folder: str, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; raises FileNotFoundError naming the missing file."""
    paths = {name: os.path.join(folder, name) for name in ("corpus.jsonl", "queries.jsonl")}
    paths["qrels"] = os.path.join(folder, "qrels", f"{split}.tsv")
    for p in paths.values():
        if not os.path.exists(p):
            raise FileNotFoundError(f"BEIR folder {folder!r} lacks {p}")
    corpus = list(read_jsonl(paths["corpus.jsonl"]))
    queries = list(read_jsonl(paths["queries.jsonl"]))
    qrels = read_qrels(paths["qrels"])
    query_ids = [r.id for r in queries]
    asked = set(query_ids)
    unknown = sum(1 for q in qrels if q not in asked)
    qrels = {q: docs for q, docs in qrels.items() if q in asked}
    doc_ids = [r.id for r in corpus]
    known = set(doc_ids)
    missing = sorted((q, d) for q, docs in qrels.items() for d in docs if d not in known)
    return BeirDataset(
        name=os.path.basename(os.path.normpath(folder)), corpus_path=paths["corpus.jsonl"],
        doc_ids=doc_ids, doc_texts=[_doc_text(r) for r in corpus],
        query_ids=query_ids, query_texts=[r.text for r in queries],
        qrels=qrels, missing_judged=missing, unknown_queries=unknown)
