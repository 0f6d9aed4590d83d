"""MaxSim kernels and exact search against the float64 numpy oracle, on every SIMD level."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gingham
from conftest import SIMD_LEVELS, assert_scores_close, maxsim_oracle, random_corpus
from gingham import _core

DIMS = [1, 7, 17, 33, 64, 96, 100, 127, 128, 384]


@st.composite
def problems(draw):
    dim = draw(st.sampled_from(DIMS))
    n_query = draw(st.sampled_from([1, 2, 15, 16, 17, 32, 33]))
    lengths = draw(st.lists(st.integers(0, 13), min_size=1, max_size=12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = rng.standard_normal((int(offsets[-1]), dim)).astype(np.float32)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    return query, tokens, offsets


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@settings(max_examples=25, deadline=None)
@given(problem=problems())
def test_scores_match_oracle_every_level(problem, dtype):
    query, tokens, offsets = problem
    tokens = tokens.astype(dtype)
    expected, bound = maxsim_oracle(query, tokens, offsets)
    before = _core.simd_level()
    try:
        for level in SIMD_LEVELS:
            _core.set_simd_level(level)
            assert_scores_close(gingham.maxsim_scores(query, tokens, offsets), expected, bound)
    finally:
        _core.set_simd_level(before)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_simd_level_matches_scalar_reference(simd_level, dim, dtype):
    rng = np.random.default_rng(dim)
    tokens, offsets = random_corpus(rng, 40, dim, max_len=30)
    tokens = tokens.astype(dtype)
    query = rng.standard_normal((32, dim)).astype(np.float32)
    got = gingham.maxsim_scores(query, tokens, offsets)
    _core.set_simd_level("scalar")
    reference = gingham.maxsim_scores(query, tokens, offsets)
    expected, bound = maxsim_oracle(query, tokens, offsets)
    assert_scores_close(got, expected, bound)
    np.testing.assert_allclose(got, reference, rtol=4 * dim * 2.0**-24, atol=1e-4)


@pytest.mark.parametrize("lengths", [[1], [1, 1, 1], [0, 1, 0], [5, 6, 7, 12, 13], [0, 0, 2]])
def test_short_documents(simd_level, lengths):
    rng = np.random.default_rng(sum(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = rng.standard_normal((int(offsets[-1]), 9)).astype(np.float32)
    query = rng.standard_normal((1, 9)).astype(np.float32)
    expected, bound = maxsim_oracle(query, tokens, offsets)
    assert_scores_close(gingham.maxsim_scores(query, tokens, offsets), expected, bound)


def test_empty_corpus():
    query = np.ones((2, 4), dtype=np.float32)
    tokens = np.zeros((0, 4), dtype=np.float32)
    assert gingham.maxsim_scores(query, tokens, [0]).shape == (0,)
    scores, ids = gingham.exact_search(query, tokens, [0, 0, 0], k=3)
    assert scores.shape == ids.shape == (1, 0)


def test_fp16_scores_use_fp16_values():
    rng = np.random.default_rng(3)
    tokens, offsets = random_corpus(rng, 20, 64, max_len=20, min_len=1)
    half = tokens.astype(np.float16)
    query = rng.standard_normal((8, 64)).astype(np.float32)
    expected, bound = maxsim_oracle(query, half.astype(np.float32), offsets)
    assert_scores_close(gingham.maxsim_scores(query, half, offsets), expected, bound)


def test_thread_count_does_not_change_scores(threads, simd_level):
    rng = np.random.default_rng(11)
    tokens, offsets = random_corpus(rng, 3000, 96, max_len=40)
    query = rng.standard_normal((32, 96)).astype(np.float32)
    queries = [query, query[:5], rng.standard_normal((17, 96)).astype(np.float32)]
    results = {}
    for n in (1, 2):
        gingham.set_num_threads(n)
        assert gingham.get_num_threads() == n
        results[n] = (gingham.maxsim_scores(query, tokens, offsets),
                      gingham.exact_search(queries, tokens, offsets, k=10),
                      gingham.exact_search(query, tokens, offsets, k=10))
    np.testing.assert_allclose(results[1][0], results[2][0], rtol=1e-5)
    for i in (1, 2):
        np.testing.assert_allclose(results[1][i][0], results[2][i][0], rtol=1e-5)
        np.testing.assert_array_equal(results[1][i][1], results[2][i][1])


def test_set_num_threads_rejects_bad_values(threads):
    with pytest.raises(ValueError, match="n_threads"):
        gingham.set_num_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        gingham.set_num_threads(1.5)


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_env_var_forces_level(level):
    code = "import gingham; print(gingham.simd_level())"
    env = dict(os.environ, GINGHAM_SIMD_LEVEL=level.upper())
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == level


def test_simd_level_names():
    assert gingham.simd_level() in SIMD_LEVELS
    assert SIMD_LEVELS[0] == "scalar"
    assert _core.detected_simd_level() == SIMD_LEVELS[-1]
    with pytest.raises(ValueError, match="unknown SIMD level"):
        _core.set_simd_level("sse9")


# ---- exact_search ------------------------------------------------------------------------------

def _oracle_topk(query, tokens, offsets, k):
    scores, _ = maxsim_oracle(query, tokens, offsets)
    live = [i for i in range(len(scores)) if np.isfinite(scores[i])]
    return sorted(live, key=lambda i: (-scores[i], i))[:k], scores


@pytest.mark.parametrize("k", [1, 5, 50, 1000])
def test_exact_search_matches_oracle(simd_level, k):
    rng = np.random.default_rng(k)
    tokens, offsets = random_corpus(rng, 200, 32, max_len=12)
    queries = [rng.standard_normal((n, 32)).astype(np.float32) for n in (1, 16, 20)]
    scores, ids = gingham.exact_search(queries, tokens, offsets, k)
    n_live = int((np.diff(offsets) > 0).sum())
    assert scores.shape == ids.shape == (3, min(k, n_live))
    for row, query in enumerate(queries):
        order, expected = _oracle_topk(query, tokens, offsets, k)
        assert len(set(ids[row].tolist())) == len(ids[row])
        assert (np.diff(scores[row]) <= 0).all()
        np.testing.assert_allclose(scores[row], expected[ids[row]], rtol=1e-4, atol=1e-4)
        # The oracle's order may differ only where float32 rounding ties two scores.
        gaps = np.abs(expected[order] - expected[ids[row]])
        assert (gaps <= 1e-4 * np.abs(expected[order]) + 1e-4).all()


def test_exact_search_breaks_ties_by_lower_index(threads):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 8)).astype(np.float32)
    other = rng.standard_normal((2, 8)).astype(np.float32)
    # docs 1, 3, 4 hold the same tokens (in different orders): exactly tied scores.
    docs = [other, base, other[:1], base[::-1], base[[1, 2, 0]], np.zeros((0, 8), np.float32)]
    tokens = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    query = base[:2] + 0.01
    for n in (1, 2):
        gingham.set_num_threads(n)
        scores, ids = gingham.exact_search([query, query], tokens, offsets, k=10)
        assert ids.shape == (2, 5)  # the empty document never appears
        tied = [i for i in ids[0] if i in (1, 3, 4)]
        assert tied == [1, 3, 4]
        np.testing.assert_array_equal(ids[0], ids[1])


def test_exact_search_returns_min_k_nonempty_unique(threads):
    rng = np.random.default_rng(5)
    tokens, offsets = random_corpus(rng, 500, 16, max_len=3)
    n_live = int((np.diff(offsets) > 0).sum())
    assert n_live < 500
    query = rng.standard_normal((4, 16)).astype(np.float32)
    for n in (1, 2):
        gingham.set_num_threads(n)
        for k in (1, 7, n_live, 10_000):
            scores, ids = gingham.exact_search(query, tokens, offsets, k)
            assert ids.shape == (1, min(k, n_live))
            assert len(np.unique(ids)) == ids.shape[1]
            assert (np.diff(offsets)[ids[0]] > 0).all()
            assert np.isfinite(scores).all()


def test_exact_search_query_forms():
    rng = np.random.default_rng(9)
    tokens, offsets = random_corpus(rng, 50, 24, max_len=10, min_len=1)
    batch = rng.standard_normal((3, 6, 24)).astype(np.float32)
    s3, i3 = gingham.exact_search(batch, tokens, offsets, 4)
    sl, il = gingham.exact_search(list(batch), tokens, offsets, 4)
    st_, it = gingham.exact_search(tuple(batch.astype(np.float64)), tokens, offsets, 4)
    np.testing.assert_array_equal(i3, il)
    np.testing.assert_array_equal(i3, it)
    for row in range(3):
        s1, i1 = gingham.exact_search(batch[row], tokens, offsets, 4)
        np.testing.assert_array_equal(i1[0], i3[row])
        np.testing.assert_array_equal(s1[0], s3[row])
        np.testing.assert_array_equal(gingham.maxsim_scores(batch[row], tokens, offsets)[i1[0]],
                                      s1[0])


def test_many_documents_parallel(threads):
    rng = np.random.default_rng(21)
    tokens, offsets = random_corpus(rng, 5000, 8, max_len=6)
    query = rng.standard_normal((3, 8)).astype(np.float32)
    expected, bound = maxsim_oracle(query, tokens, offsets)
    gingham.set_num_threads(2)
    assert_scores_close(gingham.maxsim_scores(query, tokens, offsets), expected, bound)
    sub = rng.choice(5000, size=300, replace=False).astype(np.int64)
    np.testing.assert_array_equal(_core.maxsim_scores_subset(query, tokens, offsets, sub),
                                  gingham.maxsim_scores(query, tokens, offsets)[sub])


# ---- masked exact search (durable index) ----
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_exact_search_subset_equals_search_over_the_subset(dtype):
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 6, size=80)  # some empty documents
    offsets = np.zeros(81, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = rng.standard_normal((int(offsets[-1]), 24)).astype(np.float32)
    scales = None
    if dtype == "int8":
        tokens, scales = gingham.quantize_int8(tokens)
    elif dtype == "float16":
        tokens = tokens.astype(np.float16)
    queries = rng.standard_normal((9, 24)).astype(np.float32)
    q_offsets = np.array([0, 4, 9], dtype=np.int64)
    ids = np.sort(rng.choice(80, size=33, replace=False)).astype(np.int64)
    for k in (1, 5, 100):
        got_s, got_i = _core.exact_search_subset(queries, q_offsets, tokens, offsets, ids, k,
                                                 token_scales=scales)
        sub_off = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths[ids], out=sub_off[1:])
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in ids])
        want_s, want_i = _core.exact_search(queries, q_offsets, np.ascontiguousarray(
            tokens[rows]), sub_off, k, token_scales=None if scales is None else
            np.ascontiguousarray(scales[rows]))
        assert got_i.shape[1] == min(k, int((lengths[ids] > 0).sum()))
        np.testing.assert_array_equal(got_i, ids[want_i])
        np.testing.assert_array_equal(got_s, want_s)
    with pytest.raises(ValueError, match="ascending"):
        _core.exact_search_subset(queries, q_offsets, tokens, offsets, ids[::-1].copy(), 3,
                                  token_scales=scales)
    with pytest.raises(ValueError, match="ascending"):
        _core.exact_search_subset(queries, q_offsets, tokens, offsets,
                                  np.array([80], dtype=np.int64), 3, token_scales=scales)


# ---- finiteness: the kernels' non-finite probe (validated calls scan tokens only after it) ----
# (n_query, dim, tokens in the document holding the bad value): one and two query blocks,
# dims below / at / above one SIMD register, partial and whole token tiles of every level.
PROBE_SHAPES = [(1, 1, 1), (3, 7, 6), (17, 8, 13), (2, 16, 7), (33, 9, 5), (16, 17, 9)]
BAD_VALUES = [np.nan, np.inf, -np.inf]


def _probe_problem(n_query, dim, n_tokens, zero_column):
    """A 3-document corpus whose middle document holds one winning token (every dot product
    large and positive) and n_tokens - 1 losing ones; the query is positive, so a -inf put in
    any token makes every dot product with that token -inf, which max drops."""
    rng = np.random.default_rng(n_query * 1000 + dim * 10 + n_tokens)
    query = (np.abs(rng.standard_normal((n_query, dim))) + 0.1).astype(np.float32)
    if zero_column:
        query[:, 0] = 0.0  # 0 * inf = NaN
    middle = -np.abs(rng.standard_normal((n_tokens, dim))).astype(np.float32)
    middle[n_tokens // 2] = 10.0
    tokens = np.concatenate([rng.standard_normal((4, dim)), middle,
                             rng.standard_normal((5, dim))]).astype(np.float32)
    offsets = np.array([0, 4, 4 + n_tokens, 9 + n_tokens], np.int64)
    return query, tokens, offsets


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("shape", PROBE_SHAPES)
def test_nonfinite_token_anywhere_is_rejected_at_every_level(threads, simd_level, shape, dtype):
    n_query, dim, n_tokens = shape
    gingham.set_num_threads(1)  # thousands of tiny calls; 2 threads are covered below
    for zero_column in (False, True):
        query, clean, offsets = _probe_problem(n_query, dim, n_tokens, zero_column)
        q_offsets = np.array([0, n_query], np.int64)
        for t in range(n_tokens):
            for c in range(dim):
                for value in BAD_VALUES:
                    tokens = clean.astype(dtype)
                    tokens[4 + t, c] = value
                    where = rf"tokens holds a non-finite value \(NaN or inf\) at \[{4 + t}, {c}\]"
                    with pytest.raises(ValueError, match=where):
                        gingham.maxsim_scores(query, tokens, offsets)
                    with pytest.raises(ValueError, match=where):
                        _core.maxsim_scores(query, tokens, offsets)
                    with pytest.raises(ValueError, match=where):
                        _core.exact_search(query, q_offsets, tokens, offsets, 1)


def test_hidden_nonfinite_token_would_score_finite_without_the_check(simd_level):
    """The case the probe exists for: a -inf similarity is not any row's maximum, so the
    unchecked score is finite (and equal to the score without that token)."""
    query, clean, offsets = _probe_problem(17, 8, 13, zero_column=False)
    tokens = clean.copy()
    tokens[4 + 3, 5] = -np.inf
    unchecked = gingham.maxsim_scores(query, tokens, offsets, check_finite=False)
    assert np.isfinite(unchecked).all()
    np.testing.assert_array_equal(unchecked, gingham.maxsim_scores(query, clean, offsets))
    with pytest.raises(ValueError, match=r"tokens holds a non-finite value .*\[7, 5\]"):
        gingham.maxsim_scores(query, tokens, offsets)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nonfinite_token_found_by_batched_parallel_search(threads, simd_level, dtype):
    """Many queries (chunked batch path) on 2 threads: a NaN in the last document, or an inf in
    the first one, is still reported, and the first offending position is the one named."""
    rng = np.random.default_rng(4)
    tokens, offsets = random_corpus(rng, 3000, 32, max_len=40, min_len=1)
    tokens = tokens.astype(dtype)
    queries = [rng.standard_normal((n, 32)).astype(np.float32) for n in (1, 16, 33)]
    gingham.set_num_threads(2)
    last, first = int(offsets[-1]) - 1, 0
    for spots in ([(last, 31, np.nan)], [(first, 0, -np.inf)],
                  [(last, 2, np.inf), (int(offsets[1500]), 7, np.nan)]):
        bad = tokens.copy()
        for row, col, value in spots:
            bad[row, col] = value
        row, col, _ = min(spots)
        where = rf"tokens holds a non-finite value .*\[{row}, {col}\]"
        with pytest.raises(ValueError, match=where):
            gingham.exact_search(queries, bad, offsets, 10)
        with pytest.raises(ValueError, match=where):
            gingham.exact_search(queries[1], bad, offsets, 10)
        with pytest.raises(ValueError, match=where):
            gingham.maxsim_scores(queries[2], bad, offsets)


def test_finite_overflow_passes_the_check_with_the_same_scores(simd_level):
    """Finite tokens whose similarities overflow set the probe; the scan then finds nothing and
    the validated call returns exactly the unchecked scores (NaN and inf included)."""
    query = np.array([[3e38, 0, 1], [-3e38, 1, 0]], np.float32)
    tokens = np.array([[2, 0, 0], [0, 1, 0], [-2, 0, 0], [0, 0, 1]], np.float32)
    offsets = np.arange(5, dtype=np.int64)
    for storage in (tokens, tokens.astype(np.float16)):
        unchecked = gingham.maxsim_scores(query, storage, offsets, check_finite=False)
        assert np.isnan(unchecked[[0, 2]]).all() and np.isfinite(unchecked[[1, 3]]).all()
        np.testing.assert_array_equal(gingham.maxsim_scores(query, storage, offsets), unchecked)
        s, i = gingham.exact_search(query, storage, offsets, 4)
        s_u, i_u = gingham.exact_search(query, storage, offsets, 4, check_finite=False)
        np.testing.assert_array_equal(i, i_u)
        np.testing.assert_array_equal(s, s_u)


def test_core_checks_query_and_int8_scales_before_scoring():
    rng = np.random.default_rng(8)
    tokens, offsets = random_corpus(rng, 10, 16, max_len=5, min_len=1)
    query = rng.standard_normal((3, 16)).astype(np.float32)
    values, scales = gingham.quantize_int8(tokens)
    bad_query = query.copy()
    bad_query[2, 9] = np.nan
    with pytest.raises(ValueError, match=r"query holds a non-finite value .*\[2, 9\]"):
        _core.maxsim_scores(bad_query, tokens, offsets)
    with pytest.raises(ValueError, match=r"queries holds a non-finite value .*\[2, 9\]"):
        _core.exact_search(bad_query, np.array([0, 3], np.int64), tokens, offsets, 2)
    bad_scales = scales.copy()
    bad_scales[4] = np.inf
    with pytest.raises(ValueError, match=r"token_scales holds a non-finite value .*\[4\]"):
        _core.maxsim_scores(query, values, offsets, bad_scales)
    unchecked = _core.maxsim_scores(query, values, offsets, bad_scales, check_finite=False)
    assert unchecked.shape == (10,)
