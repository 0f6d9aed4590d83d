"""pytest-benchmark suite for the MaxSim kernels (not in the default test run: bench/ is outside
testpaths). Run: .venv/bin/python -m pytest bench/test_bench_maxsim.py --benchmark-only

Realistic ColBERT shapes (Lq = 32, d = 128, documents of 32-180 tokens), parametrized by SIMD
level, storage and thread count, with the numpy matmul + reduceat baseline for ratios.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import gingham
from gingham import _core
from gingham._synthetic import clustered_corpus, queries_near

sys.path.insert(0, str(Path(__file__).parent))
from maxsim import numpy_maxsim  # noqa: E402

N_DOCS = 4000


@pytest.fixture(scope="module")
def corpus():
    """(tokens per storage kind, doc_offsets, one 32x128 query) of the seeded corpus."""
    tokens, offsets = clustered_corpus(N_DOCS, dim=128, n_centers=256, seed=0)
    query = queries_near(tokens, offsets, 1)[0]
    return {"fp32": tokens, "fp16": tokens.astype(np.float16),
            "int8": gingham.quantize_int8(tokens)}, offsets, query


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("storage", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("level", _core.supported_simd_levels())
def test_gingham_maxsim(benchmark, corpus, level, storage, threads):
    data, offsets, query = corpus
    before_level, before_threads = _core.simd_level(), gingham.get_num_threads()
    _core.set_simd_level(level)
    gingham.set_num_threads(threads)
    try:
        benchmark.extra_info["gflop"] = 2 * 32 * int(offsets[-1]) * 128 / 1e9
        scores = benchmark(gingham.maxsim_scores, query, data[storage], offsets,
                           check_finite=False)
    finally:
        _core.set_simd_level(before_level)
        gingham.set_num_threads(before_threads)
    assert scores.shape == (N_DOCS,)


def test_gingham_maxsim_validated(benchmark, corpus):
    data, offsets, query = corpus
    benchmark(gingham.maxsim_scores, query, data["fp32"], offsets)


def test_numpy_baseline(benchmark, corpus):
    data, offsets, query = corpus
    scores = benchmark(numpy_maxsim, query, data["fp32"], offsets)
    np.testing.assert_allclose(scores, gingham.maxsim_scores(query, data["fp32"], offsets),
                               rtol=1e-4)
