"""A hand-made BEIR folder small enough to reason about: 12 one-sentence passages."""
from __future__ import annotations

import json
from pathlib import Path

DOCS = [
    ("a", "Coffee", "Coffee is a brewed drink prepared from roasted coffee beans."),
    ("b", "", "Mount Everest is Earth's highest mountain above sea level."),
    ("c", "Ocean", "The Pacific Ocean is the largest and deepest of Earth's oceans."),
    ("d", "", "Honey is a sweet substance made by bees from the nectar of flowers."),
    ("e", "", "Chess is a board game for two players on a board of 64 squares."),
    ("f", "", "The violin is a wooden string instrument played with a bow."),
    ("g", "", "Volcanoes erupt when magma rises through the crust of the Earth."),
    ("h", "", "Penguins are flightless seabirds of the Southern Hemisphere."),
    ("i", "", "Jupiter is the largest planet in the Solar System."),
    ("j", "", "Sourdough bread is leavened by wild yeast and lactic acid bacteria."),
    ("k", "", "Glaciers are slowly moving rivers of ice formed from compacted snow."),
    ("l", "", "Shakespeare wrote Hamlet, Macbeth and Romeo and Juliet."),
]


def write_beir(root: Path, docs, queries, qrels, *, header: bool = False,
               extra: dict | None = None) -> Path:
    """corpus.jsonl (``extra`` fields added to every row), queries.jsonl and qrels/test.tsv
    (with a header line when ``header``) under ``root``; returns ``root``."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x, **(extra or {})}) + "\n"
        for i, t, x in docs))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries))
    (root / "qrels" / "test.tsv").write_text(
        ("query-id\tcorpus-id\tscore\n" if header else "")
        + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in qrels))
    return root
