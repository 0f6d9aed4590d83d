"""Hypothesis fuzzing of the ``_core`` entry points with crafted arrays: for every input the call
returns the oracle's answer (numpy float64 MaxSim, bounds computed in Python) or raises
TypeError / ValueError naming the argument; never a crash or an answer without an error."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import assert_scores_close, maxsim_oracle
from gingham import _core

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
DIM = 8
RNG = np.random.default_rng(3)
TOKENS = RNG.standard_normal((20, DIM)).astype(np.float32)
QUERY = RNG.standard_normal((3, DIM)).astype(np.float32)
CENTROIDS = _core.kmeans_fit(TOKENS, 4, 3, 0)
ASSIGN = _core.kmeans_assign(TOKENS, CENTROIDS)
CUTOFFS, WEIGHTS = _core.codec_fit_buckets(TOKENS, ASSIGN, CENTROIDS, 2)
CODES, RESIDUALS, SCALES = _core.codec_encode(TOKENS, CENTROIDS, CUTOFFS, WEIGHTS, 2)
CODEC = _core.Codec(CENTROIDS, CUTOFFS, WEIGHTS, 2)

offsets = hnp.arrays(np.int64, st.integers(1, 8), elements=st.integers(-3, 24))


def valid_offsets(off: np.ndarray, n_tokens: int) -> bool:
    return bool(off[0] == 0 and off[-1] == n_tokens and np.all(np.diff(off) >= 0))


@FAST
@given(off=offsets)
def test_maxsim_scores_offsets(off):
    if valid_offsets(off, len(TOKENS)):
        got = _core.maxsim_scores(QUERY, TOKENS, off)
        assert_scores_close(got, *maxsim_oracle(QUERY, TOKENS, off))
    else:
        with pytest.raises(ValueError, match="doc_offsets"):
            _core.maxsim_scores(QUERY, TOKENS, off)


@FAST
@given(ids=hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(-2, 6)),
       k=st.integers(-2, 8))
def test_exact_search_subset_ids_and_k(ids, k):
    off = np.array([0, 4, 4, 9, 15, 20], np.int64)
    qo = np.array([0, 3], np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 5 or np.any(np.diff(ids) <= 0)):
        with pytest.raises(ValueError, match="doc_ids"):
            _core.exact_search_subset(QUERY, qo, TOKENS, off, ids, max(k, 1))
        return
    if k < 1:
        with pytest.raises(ValueError, match="k"):
            _core.exact_search_subset(QUERY, qo, TOKENS, off, ids, k)
        return
    scores, got = _core.exact_search_subset(QUERY, qo, TOKENS, off, ids, k)
    expected, _ = maxsim_oracle(QUERY, TOKENS, off)
    live = [i for i in ids.tolist() if np.isfinite(expected[i])]
    want = sorted(live, key=lambda i: (-expected[i], i))[:k]
    got_ids = [int(i) for i in got.ravel() if i >= 0]
    assert sorted(got_ids) == sorted(want) or np.allclose(
        sorted(expected[got_ids]), sorted(expected[want]), rtol=1e-5)


@FAST
@given(codes=hnp.arrays(CODES.dtype, 20, elements=st.integers(0, 6)),
       off=offsets)
def test_residual_segment_codes_and_offsets(codes, off):
    ok_codes = bool(codes.max() < 4)
    ok_off = valid_offsets(off, len(TOKENS))
    if not (ok_codes and ok_off):
        ivf_o, ivf_i = np.zeros(5, np.int64), np.zeros(0, np.int32)
        with pytest.raises(ValueError):
            _core.ResidualSegment(CODEC, codes, RESIDUALS, SCALES, off, ivf_o, ivf_i)
        return
    ivf_o, ivf_i = _core.ivf_build(codes, off, 4)
    seg = _core.ResidualSegment(CODEC, codes, RESIDUALS, SCALES, off, ivf_o, ivf_i)
    n_docs = len(off) - 1
    qo = np.array([0, 3], np.int64)
    scores, seg_pos, rows, _ = _core.plaid_search(QUERY, qo, [seg], [None], 5, 2, 0.0,
                                                   64, True)
    hit = rows[rows >= 0]
    assert np.all(hit < n_docs) and np.all(np.isfinite(scores[rows >= 0]))
    decoded = _core.codec_decode(codes, RESIDUALS, SCALES, CENTROIDS, WEIGHTS, 2)
    expected, _ = maxsim_oracle(QUERY, decoded, off)
    got = _core.plaid_score_docs(QUERY, seg, np.arange(n_docs, dtype=np.int64))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-4, atol=1e-4)


@FAST
@given(ivf_offsets=hnp.arrays(np.int64, 5, elements=st.integers(-1, 30)),
       ivf_ids=hnp.arrays(np.int32, st.integers(0, 30), elements=st.integers(-1, 6)))
def test_residual_segment_inverted_lists(ivf_offsets, ivf_ids):
    off = np.array([0, 4, 4, 9, 15, 20], np.int64)
    ok = (ivf_offsets[0] == 0 and ivf_offsets[-1] == len(ivf_ids)
          and np.all(np.diff(ivf_offsets) >= 0)
          and (not ivf_ids.size or (ivf_ids.min() >= 0 and ivf_ids.max() < 5)))
    try:
        seg = _core.ResidualSegment(CODEC, CODES, RESIDUALS, SCALES, off, ivf_offsets, ivf_ids)
    except ValueError as exc:
        assert not ok and "ivf" in str(exc), exc
        return
    assert ok
    qo = np.array([0, 3], np.int64)
    scores, _, rows, _ = _core.plaid_search(QUERY, qo, [seg], [None], 5, 4, 0.0, 64, False)
    assert np.all(rows[rows >= 0] < 5)


@FAST
@given(tokens=hnp.arrays(np.float32, (6, DIM), elements=st.floats(-1e6, 1e6, width=32)
                        | st.sampled_from([np.nan, np.inf, -np.inf])))
def test_flat_segment_refuses_non_finite_tokens(tokens):
    off = np.array([0, 2, 6], np.int64)
    if not np.all(np.isfinite(tokens)):
        with pytest.raises(ValueError, match="tokens"):
            _core.FlatSegment(tokens, off)
        return
    seg = _core.FlatSegment(tokens, off)
    got = _core.flat_score_docs(seg, QUERY, np.array([0, 1], np.int64))
    expected, _ = maxsim_oracle(QUERY, tokens, off)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())
