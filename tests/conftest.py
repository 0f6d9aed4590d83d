"""Shared fixtures and the numpy float64 MaxSim oracle."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import gingham
from gingham import _core

SIMD_LEVELS = _core.supported_simd_levels()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run only when the -m expression names them (``-m slow``, or
    ``-m "slow or not slow"`` for everything): the default run stays short."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def maxsim_oracle(query: np.ndarray, tokens: np.ndarray, doc_offsets: np.ndarray) -> np.ndarray:
    """float64 MaxSim per document (-inf for empty documents), plus an error bound per score.

    The bound is 4 * dim * 2^-24 * sum_rows max_tokens sum_k |q_k d_k|: float32 dot products
    summed in any order stay within it.
    """
    q = np.asarray(query, dtype=np.float64)
    t = np.asarray(tokens, dtype=np.float64)
    n = len(doc_offsets) - 1
    scores = np.full(n, -np.inf)
    bounds = np.zeros(n)
    for i in range(n):
        doc = t[doc_offsets[i]:doc_offsets[i + 1]]
        if len(doc):
            scores[i] = (q @ doc.T).max(axis=1).sum()
            bounds[i] = (np.abs(q) @ np.abs(doc).T).max(axis=1).sum()
    dim = q.shape[1]
    return scores, 4 * (dim + q.shape[0]) * 2.0**-24 * bounds + 1e-30


def assert_scores_close(got: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float64)
    empty = np.isinf(expected)
    np.testing.assert_array_equal(np.isneginf(got), empty)
    err = np.abs(got[~empty] - expected[~empty])
    assert (err <= bound[~empty]).all(), f"max error {err.max()} > bound {bound[~empty].max()}"


@pytest.fixture(params=SIMD_LEVELS)
def simd_level(request):
    """Runs the test once per SIMD level this machine supports, restoring the level after."""
    before = _core.simd_level()
    _core.set_simd_level(request.param)
    yield request.param
    _core.set_simd_level(before)


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    before = gingham.get_num_threads()
    yield
    gingham.set_num_threads(before)


def random_corpus(rng: np.random.Generator, n_docs: int, dim: int, max_len: int,
                  min_len: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(min_len, max_len + 1, size=n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = rng.standard_normal((int(offsets[-1]), dim)).astype(np.float32)
    return tokens, offsets


# ---- shared BEIR data (read-only; never write there) ------------------------------------------
REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$GINGHAM_SHARED_DATA`` or ``<repo>/../shared/data`` (as laid out for CI)."""
    return Path(os.environ.get("GINGHAM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "msmarco" / "corpus.jsonl").exists():
        pytest.skip(f"shared BEIR data not found at {path} (set GINGHAM_SHARED_DATA)")
    return path
