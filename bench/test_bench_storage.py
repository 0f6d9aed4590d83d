"""Checks of the storage benchmarks' helpers and a tiny end-to-end run of each (not in the
default test run: bench/ is outside testpaths). Run:
    .venv/bin/python -m pytest -q bench/test_bench_storage.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import index_ops  # noqa: E402
import storage  # noqa: E402
from _report import write_section  # noqa: E402


def test_write_section_replaces_only_its_block(tmp_path):
    path = tmp_path / "doc.md"
    write_section(path, "a", "first A", title="# T")
    write_section(path, "b", "first B")
    write_section(path, "a", "second A")
    text = path.read_text()
    assert text.startswith("# T\n")
    assert "second A" in text and "first A" not in text and "first B" in text
    assert text.index("second A") < text.index("first B")  # replaced in place


def test_mean_pooled_matches_numpy():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, size=23)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.standard_normal((int(offsets[-1]), 8)).astype(np.float32)
    got = storage.mean_pooled(tokens, offsets, chunk=5)
    for i in range(23):
        want = tokens[offsets[i]:offsets[i + 1]].mean(axis=0)
        np.testing.assert_allclose(got[i], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)


def test_recall_at_hand_computed():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = [["1", "2", "9", "4"], ["8", "7", "6", "5"]]
    assert storage.recall_at(found, truth, depth=4) == (0.75 + 1.0) / 2
    assert storage.recall_at(found, truth, depth=2) == (1.0 + 0.0) / 2


def test_single_vector_search_orders_by_score_then_index():
    vecs = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], dtype=np.float32)
    assert single(vecs, np.array([1, 0], np.float32), 3) == [0, 2, 3]


def single(vecs, q, k):
    """Indices of bench/storage.py's single-vector top-k, as a list."""
    return storage.single_vector_search(vecs, q, k).tolist()


def test_storage_end_to_end_flat(tmp_path, capsys):
    out = tmp_path / "storage.md"
    storage.main(["--sizes", "300", "--kinds", "fp32,int8", "--queries", "4",
                  "--latency-queries", "2", "--no-text", "--out", str(out)])
    text = out.read_text()
    assert "| fp32 | " in text and "| int8 | " in text and "single-vector" in text
    # fp32 flat search is exact MaxSim over the same float32 corpus: recall 1
    row = next(line for line in text.splitlines() if line.startswith("| fp32 |"))
    assert row.rstrip(" |").endswith("1.000")


def test_index_ops_end_to_end_flat(tmp_path):
    out = tmp_path / "storage.md"
    index_ops.main(["--docs", "300", "--kinds", "fp16", "--delete", "50", "--out", str(out)])
    text = out.read_text()
    assert "| fp16 (cold page cache) |" in text and "add / build" in text
