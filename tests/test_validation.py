"""Every bad input raises ValueError/TypeError naming the argument; convertible input converts."""
from __future__ import annotations

import numpy as np
import pytest

import gingham
from conftest import maxsim_oracle
from gingham import _core

RNG = np.random.default_rng(0)
Q = RNG.standard_normal((4, 8)).astype(np.float32)
T = RNG.standard_normal((10, 8)).astype(np.float32)
OFF = np.array([0, 3, 3, 10], dtype=np.int64)


def _with_value(arr, index, value):
    out = arr.copy()
    out[index] = value
    return out


BAD_QUERY = [
    (Q[0], ValueError, "query must be 2-d"),
    (Q[None], ValueError, "query must be 2-d"),
    (Q[:, :5], ValueError, "tokens must have dim 5"),
    (np.zeros((0, 8), np.float32), ValueError, "query must hold at least one token"),
    (np.zeros((3, 0), np.float32), ValueError, "query must have at least one column"),
    (_with_value(Q, (1, 2), np.nan), ValueError, r"query holds a non-finite value .*\[1, 2\]"),
    (_with_value(Q, (0, 0), np.inf), ValueError, "query holds a non-finite"),
    (_with_value(Q, (3, 7), -np.inf), ValueError, "query holds a non-finite"),
    (Q.astype(np.int32), TypeError, "query must hold floating-point"),
    (Q.astype(object), TypeError, "query must hold floating-point"),
    (Q.astype(bool), TypeError, "query must hold floating-point"),
    ("not an array", TypeError, "query must be a 2-d float array"),
    (None, TypeError, "query must be a 2-d float array"),
]


@pytest.mark.parametrize("query,error,message", BAD_QUERY)
def test_bad_query(query, error, message):
    with pytest.raises(error, match=message):
        gingham.maxsim_scores(query, T, OFF)


BAD_TOKENS = [
    (T[0], ValueError, "tokens must be 2-d"),
    (T[:, :7], ValueError, "tokens must have dim 8"),
    (_with_value(T, (4, 1), np.nan), ValueError, r"tokens holds a non-finite value .*\[4, 1\]"),
    (_with_value(T, (9, 7), np.inf), ValueError, "tokens holds a non-finite"),
    (_with_value(T.astype(np.float16), (2, 2), np.inf), ValueError, "tokens holds a non-finite"),
    (_with_value(T.astype(np.float16), (2, 2), np.nan), ValueError, "tokens holds a non-finite"),
    (T.astype(np.int64), TypeError, "tokens must hold floating-point"),
    (T.astype(np.int8), TypeError, "int8 tokens need their per-token scales"),
    (T.astype(object), TypeError, "tokens must hold floating-point"),
]


@pytest.mark.parametrize("tokens,error,message", BAD_TOKENS)
def test_bad_tokens(tokens, error, message):
    with pytest.raises(error, match=message):
        gingham.maxsim_scores(Q, tokens, OFF)
    with pytest.raises(error, match=message):
        gingham.exact_search(Q, tokens, OFF, 2)


BAD_OFFSETS = [
    (np.array([0, 3, 3, 9]), ValueError, "doc_offsets must end at 10"),
    (np.array([0, 3, 3, 11]), ValueError, "doc_offsets must end at 10"),
    (np.array([1, 3, 3, 10]), ValueError, r"doc_offsets\[0\] must be 0"),
    (np.array([0, 5, 3, 10]), ValueError, "doc_offsets must be non-decreasing"),
    (np.array([0.0, 3.0, 10.0]), TypeError, "doc_offsets must hold integers"),
    (np.array(["0", "10"]), TypeError, "doc_offsets must hold integers"),
    (np.array([[0, 10]]), ValueError, "doc_offsets must be 1-d"),
    (np.array([], dtype=np.int64), ValueError, "doc_offsets must be 1-d"),
    (np.array([0, 2**63 + 5], dtype=np.uint64), ValueError, "doc_offsets has values beyond int64"),
    (np.array([0, 3, 3, 10], dtype=object), TypeError, "doc_offsets must hold integers"),
]


@pytest.mark.parametrize("offsets,error,message", BAD_OFFSETS)
def test_bad_offsets(offsets, error, message):
    with pytest.raises(error, match=message):
        gingham.maxsim_scores(Q, T, offsets)
    with pytest.raises(error, match=message):
        gingham.exact_search(Q, T, offsets, 2)


@pytest.mark.parametrize("k,error", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                     (True, TypeError), ("5", TypeError), (None, TypeError)])
def test_bad_k(k, error):
    with pytest.raises(error, match="k must be a positive integer"):
        gingham.exact_search(Q, T, OFF, k)


@pytest.mark.parametrize("queries,error,message", [
    ([], ValueError, "queries must hold at least one query"),
    ([Q, Q[:, :4]], ValueError, r"queries\[1\] must have dim 8"),
    ([Q, np.zeros((0, 8), np.float32)], ValueError, r"queries\[1\] must hold at least one"),
    ([Q, _with_value(Q, (0, 1), np.nan)], ValueError, r"queries\[1\] holds a non-finite"),
    (Q[0], TypeError, "queries must be a"),
    ({"q": Q}, TypeError, "queries must be a"),
    ([Q.astype(np.int16)], TypeError, r"queries\[0\] must hold floating-point"),
])
def test_bad_queries(queries, error, message):
    with pytest.raises(error, match=message):
        gingham.exact_search(queries, T, OFF, 2)


def test_float64_and_noncontiguous_inputs_are_converted():
    expected = gingham.maxsim_scores(Q, T, OFF)
    wide = np.asfortranarray(T.astype(np.float64))
    strided_q = np.repeat(Q, 2, axis=1)[:, ::2]
    assert not strided_q.flags.c_contiguous
    np.testing.assert_array_equal(gingham.maxsim_scores(strided_q, wide, OFF.astype(np.int32)),
                                  expected)
    np.testing.assert_array_equal(gingham.maxsim_scores(Q.tolist(), T, OFF.tolist()), expected)
    ref, _ = maxsim_oracle(Q, T, OFF)
    np.testing.assert_allclose(expected, ref, rtol=1e-5)


def test_check_finite_false_skips_scan_but_stays_safe():
    bad = _with_value(T, (0, 0), np.nan)
    scores = gingham.maxsim_scores(Q, bad, OFF, check_finite=False)
    assert scores.shape == (3,)  # NaN propagates; the process does not crash


def test_core_checks_keep_process_safe():
    with pytest.raises(TypeError, match="query must be float32"):
        _core.maxsim_scores(Q.astype(np.float64), T, OFF)
    with pytest.raises(ValueError, match="tokens must be a C-contiguous"):
        _core.maxsim_scores(Q, np.asfortranarray(T), OFF)
    with pytest.raises(ValueError, match="doc_offsets must end at"):
        _core.maxsim_scores(Q, T, np.array([0, 3], dtype=np.int64))
    with pytest.raises(TypeError, match="doc_offsets must be int64"):
        _core.maxsim_scores(Q, T, OFF.astype(np.int32))
    with pytest.raises(ValueError, match="out of range"):
        _core.maxsim_scores_subset(Q, T, OFF, np.array([3], dtype=np.int64))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        _core.exact_search(Q, np.array([0, 4], dtype=np.int64), T, OFF, 0)
    with pytest.raises(ValueError, match="query 0 is empty"):
        _core.exact_search(Q, np.array([0, 0, 4], dtype=np.int64), T, OFF, 1)
    with pytest.raises(ValueError, match="int8 tokens need token_scales"):
        _core.maxsim_scores(Q, T.astype(np.int8), OFF)
    with pytest.raises(ValueError, match="token_scales is only for int8"):
        _core.maxsim_scores(Q, T, OFF, np.ones(10, np.float32))
