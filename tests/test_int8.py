"""int8 token storage: quantization against a numpy oracle, int8 MaxSim on every SIMD level."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gingham
from conftest import SIMD_LEVELS, assert_scores_close, maxsim_oracle, random_corpus
from gingham import _core


def numpy_quantize(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    amax = np.abs(tokens).max(axis=1).astype(np.float32)
    scales = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))
    values = np.clip(np.rint(tokens / safe[:, None]), -127, 127).astype(np.int8)
    return values, scales


@pytest.mark.parametrize("dim", [1, 7, 128, 384])
def test_quantize_matches_numpy(dim):
    rng = np.random.default_rng(dim)
    tokens = rng.standard_normal((300, dim)).astype(np.float32) * rng.uniform(0.01, 10, (300, 1))
    tokens[5] = 0.0
    tokens = tokens.astype(np.float32)
    values, scales = gingham.quantize_int8(tokens)
    ref_values, ref_scales = numpy_quantize(tokens)
    assert values.dtype == np.int8 and scales.dtype == np.float32
    assert values.shape == tokens.shape and scales.shape == (300,)
    np.testing.assert_array_equal(scales, ref_scales)
    np.testing.assert_array_equal(values, ref_values)
    assert scales[5] == 0 and not values[5].any()
    assert values.min() >= -127
    assert (np.abs(values).max(axis=1)[scales > 0] == 127).all()
    err = np.abs(values * scales[:, None] - tokens)
    assert (err <= scales[:, None] * 0.5 * (1 + 1e-5) + 1e-30).all()


def test_quantize_validates_input():
    with pytest.raises(ValueError, match="tokens holds a non-finite"):
        gingham.quantize_int8(np.array([[1.0, np.nan]], dtype=np.float32))
    with pytest.raises(TypeError, match="tokens must hold floating-point"):
        gingham.quantize_int8(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="tokens must be 2-d"):
        gingham.quantize_int8(np.ones(4, dtype=np.float32))
    values, scales = gingham.quantize_int8(np.zeros((0, 4)))
    assert values.shape == (0, 4) and scales.shape == (0,)


@st.composite
def int8_problems(draw):
    dim = draw(st.sampled_from([1, 7, 17, 33, 64, 96, 100, 127, 128, 384]))
    n_query = draw(st.sampled_from([1, 3, 16, 32, 33]))
    lengths = draw(st.lists(st.integers(0, 13), min_size=1, max_size=10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = rng.standard_normal((int(offsets[-1]), dim)).astype(np.float32)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    return query, tokens, offsets


@settings(max_examples=25, deadline=None)
@given(problem=int8_problems())
def test_int8_scores_match_oracle_every_level(problem):
    query, tokens, offsets = problem
    values, scales = gingham.quantize_int8(tokens)
    dequantized = values.astype(np.float64) * scales[:, None]
    expected, bound = maxsim_oracle(query, dequantized, offsets)
    before = _core.simd_level()
    try:
        for level in SIMD_LEVELS:
            _core.set_simd_level(level)
            got = gingham.maxsim_scores(query, (values, scales), offsets)
            assert_scores_close(got, expected, bound)
    finally:
        _core.set_simd_level(before)


def test_int8_level_matches_scalar_and_threads(simd_level, threads):
    rng = np.random.default_rng(4)
    tokens, offsets = random_corpus(rng, 2000, 128, max_len=30)
    values, scales = gingham.quantize_int8(tokens)
    query = rng.standard_normal((32, 128)).astype(np.float32)
    gingham.set_num_threads(2)
    two = gingham.maxsim_scores(query, values, offsets, token_scales=scales)
    gingham.set_num_threads(1)
    one = gingham.maxsim_scores(query, values, offsets, token_scales=scales)
    np.testing.assert_allclose(one, two, rtol=1e-5)
    level = _core.simd_level()
    _core.set_simd_level("scalar")
    reference = gingham.maxsim_scores(query, values, offsets, token_scales=scales)
    _core.set_simd_level(level)
    np.testing.assert_allclose(one, reference, rtol=4 * 128 * 2.0**-24, atol=1e-4)


def test_int8_exact_search_forms_and_recall():
    rng = np.random.default_rng(8)
    centers = rng.standard_normal((20, 64)).astype(np.float32)
    lengths = rng.integers(5, 30, size=400)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = centers[rng.integers(0, 20, size=int(offsets[-1]))]
    tokens = (tokens + 0.5 * rng.standard_normal(tokens.shape)).astype(np.float32)
    queries = [tokens[offsets[d]:offsets[d] + 8] + 0.1 for d in (3, 77, 250)]
    pair = gingham.quantize_int8(tokens)
    s_pair, i_pair = gingham.exact_search(queries, pair, offsets, 10)
    s_kw, i_kw = gingham.exact_search(queries, pair[0], offsets, 10, token_scales=pair[1])
    np.testing.assert_array_equal(i_pair, i_kw)
    np.testing.assert_array_equal(s_pair, s_kw)
    _, i_exact = gingham.exact_search(queries, tokens, offsets, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_pair, i_exact)])
    assert recall >= 0.9


@pytest.mark.parametrize("tokens,scales,error,message", [
    (np.ones((10, 8), np.int8), None, TypeError, "int8 tokens need their per-token scales"),
    (np.ones((10, 8), np.int16), np.ones(10), TypeError, "tokens must be int8"),
    (np.ones((10, 8), np.int8), np.ones(9), ValueError, r"token_scales must have shape \(10,\)"),
    (np.ones((10, 8), np.int8), np.ones((10, 1)), ValueError, "token_scales must have shape"),
    (np.ones((10, 8), np.int8), np.ones(10, np.int32), TypeError, "token_scales must hold float"),
    (np.ones((10, 8), np.int8), np.full(10, np.nan), ValueError, "token_scales holds a non-fin"),
    (np.ones((10, 4), np.int8), np.ones(10), ValueError, "tokens must have dim 8"),
    (np.ones(10, np.int8), np.ones(10), ValueError, "tokens must be 2-d"),
])
def test_int8_bad_input(tokens, scales, error, message):
    query = np.ones((2, 8), np.float32)
    offsets = np.array([0, 4, 10])
    with pytest.raises(error, match=message):
        gingham.maxsim_scores(query, tokens, offsets, token_scales=scales)


def test_int8_scales_given_twice_or_bad_tuple():
    query = np.ones((2, 8), np.float32)
    pair = (np.ones((10, 8), np.int8), np.ones(10, np.float32))
    with pytest.raises(ValueError, match="token_scales given twice"):
        gingham.maxsim_scores(query, pair, [0, 10], token_scales=pair[1])
    with pytest.raises(ValueError, match="must be \\(int8 values, float32 scales\\)"):
        gingham.maxsim_scores(query, pair + (1,), [0, 10])
    np.testing.assert_allclose(gingham.maxsim_scores(query, pair, [0, 10]), [16.0])
