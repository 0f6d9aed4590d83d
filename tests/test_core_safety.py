"""Every ``gingham._core`` entry point called directly with crafted bad arrays: each raises
TypeError / ValueError naming the bad argument, never reads or writes out of bounds (a crash
would take the test run down with it)."""
from __future__ import annotations

import numpy as np
import pytest

from gingham import _core
from plaid_data import clustered_docs, csr

DIM, NBITS, N_CENTROIDS = 16, 2, 8


def _build():
    docs = clustered_docs(40, DIM, 6, seed=11, min_len=2, max_len=6)
    tokens, offsets = csr(docs)
    centroids = _core.kmeans_fit(tokens, N_CENTROIDS, 3, 0)
    assign = _core.kmeans_assign(tokens, centroids)
    cutoffs, weights = _core.codec_fit_buckets(tokens, assign, centroids, NBITS)
    codes, residuals, scales = _core.codec_encode(tokens, centroids, cutoffs, weights, NBITS)
    ivf_offsets, ivf_ids = _core.ivf_build(codes, offsets, N_CENTROIDS)
    return {"tokens": tokens, "doc_offsets": offsets, "centroids": centroids,
            "bucket_cutoffs": cutoffs, "bucket_weights": weights, "codes": codes,
            "residuals": residuals, "scales": scales, "ivf_offsets": ivf_offsets,
            "ivf_doc_ids": ivf_ids, "query": docs[0][:3].copy(),
            "query_offsets": np.array([0, 3], np.int64)}


A = _build()
N_TOKENS, N_DOCS = len(A["tokens"]), len(A["doc_offsets"]) - 1
CODEC = _core.Codec(A["centroids"], A["bucket_cutoffs"], A["bucket_weights"], NBITS)
SEG_NAMES = ("codes", "residuals", "scales", "doc_offsets", "ivf_offsets", "ivf_doc_ids")


def seg(**bad):
    """A ResidualSegment with some arrays replaced."""
    return _core.ResidualSegment(CODEC, *[bad.get(n, A[n]) for n in SEG_NAMES])


SEGMENT = seg()
FLAT = _core.FlatSegment(A["tokens"], A["doc_offsets"])


def changed(name, index, value, dtype=None):
    out = A[name].copy() if dtype is None else A[name].astype(dtype)
    out[index] = value
    return out


DECREASING = changed("doc_offsets", 2, 0)
OVERRUN = changed("doc_offsets", -1, N_TOKENS + 50)
FIRST_NOT_ZERO = changed("doc_offsets", 0, 1)
BAD_CODES = changed("codes", 5, N_CENTROIDS)
BAD_IVF_IDS = changed("ivf_doc_ids", 1, N_DOCS)
NEG_IVF_IDS = changed("ivf_doc_ids", 0, -1)
NAN_SCALES = changed("scales", 3, np.nan)
NAN_CENTROIDS = changed("centroids", (2, 3), np.nan)
NAN_WEIGHTS = changed("bucket_weights", (0, 1), np.inf)
NAN_CUTOFFS = changed("bucket_cutoffs", (1, 0), np.nan)
F16_NAN = changed("tokens", (4, 2), np.nan, np.float16)
IDS_OUT = np.array([0, N_DOCS], np.int64)
IDS_NEG = np.array([-1], np.int64)
Q, QO = A["query"], A["query_offsets"]
T, OFF = A["tokens"], A["doc_offsets"]
C, CUT, W = A["centroids"], A["bucket_cutoffs"], A["bucket_weights"]
CODES, RES, SC = A["codes"], A["residuals"], A["scales"]


def plaid(segments, masks=None, queries=Q, offsets=QO, **kw):
    masks = [None] * len(segments) if masks is None else masks
    args = {"k": 5, "ncells": 2, "threshold": 0.5, "ndocs": 64, **kw}
    return _core.plaid_search(queries, offsets, segments, masks, args["k"], args["ncells"],
                              args["threshold"], args["ndocs"], False)


CASES = {  # name: (call, exception, message pattern naming the argument)
    # maxsim / exact search over arrays
    "maxsim query dtype": (lambda: _core.maxsim_scores(Q.astype(np.float64), T, OFF),
                           TypeError, "query"),
    "maxsim tokens dtype": (lambda: _core.maxsim_scores(Q, T.astype(np.int32), OFF),
                            TypeError, "tokens"),
    "maxsim offsets decrease": (lambda: _core.maxsim_scores(Q, T, DECREASING),
                                ValueError, "doc_offsets"),
    "maxsim offsets overrun": (lambda: _core.maxsim_scores(Q, T, OVERRUN),
                               ValueError, "doc_offsets"),
    "maxsim offsets start": (lambda: _core.maxsim_scores(Q, T, FIRST_NOT_ZERO),
                             ValueError, "doc_offsets"),
    "maxsim offsets dtype": (lambda: _core.maxsim_scores(Q, T, OFF.astype(np.int32)),
                             TypeError, "doc_offsets"),
    "maxsim offsets 2-d": (lambda: _core.maxsim_scores(Q, T, OFF[None, :]),
                           ValueError, "doc_offsets"),
    "maxsim dim": (lambda: _core.maxsim_scores(Q[:, :8].copy(), T, OFF), ValueError, "tokens"),
    "maxsim scales shape": (lambda: _core.maxsim_scores(Q, T.astype(np.int8), OFF,
                                                        np.ones(3, np.float32)),
                            ValueError, "token_scales"),
    "subset ids out": (lambda: _core.maxsim_scores_subset(Q, T, OFF, IDS_OUT),
                       ValueError, "doc_ids"),
    "subset ids negative": (lambda: _core.maxsim_scores_subset(Q, T, OFF, IDS_NEG),
                            ValueError, "doc_ids"),
    "exact query offsets overrun": (lambda: _core.exact_search(Q, np.array([0, 9], np.int64), T,
                                                               OFF, 3),
                                    ValueError, "query_offsets"),
    "exact query offsets decrease": (lambda: _core.exact_search(
        Q, np.array([0, 2, 1, 3], np.int64), T, OFF, 3), ValueError, "query_offsets"),
    "exact offsets overrun": (lambda: _core.exact_search(Q, QO, T, OVERRUN, 3),
                              ValueError, "doc_offsets"),
    "exact subset ids out": (lambda: _core.exact_search_subset(Q, QO, T, OFF, IDS_OUT, 3),
                             ValueError, "doc_ids"),
    "exact subset ids unsorted": (lambda: _core.exact_search_subset(
        Q, QO, T, OFF, np.array([3, 1], np.int64), 3), ValueError, "doc_ids"),
    "first_nonfinite dtype": (lambda: _core.first_nonfinite(T.astype(np.float64)),
                              TypeError, "values"),
    "quantize dtype": (lambda: _core.quantize_int8(T.astype(np.float64)), TypeError, "tokens"),
    # flat segments
    "flat offsets decrease": (lambda: _core.FlatSegment(T, DECREASING), ValueError,
                              "doc_offsets"),
    "flat offsets overrun": (lambda: _core.FlatSegment(T, OVERRUN), ValueError, "doc_offsets"),
    "flat fp32 NaN": (lambda: _core.FlatSegment(changed("tokens", (1, 1), np.nan), OFF),
                      ValueError, "tokens"),
    "flat fp16 NaN": (lambda: _core.FlatSegment(F16_NAN, OFF), ValueError, "tokens"),
    "flat int8 NaN scales": (lambda: _core.FlatSegment(
        T.astype(np.int8), OFF, changed("tokens", (7, 0), np.nan)[:, 0].copy()),
        ValueError, "token_scales"),
    "flat int8 no scales": (lambda: _core.FlatSegment(T.astype(np.int8), OFF), ValueError,
                            "token_scales"),
    "flat tokens dtype": (lambda: _core.FlatSegment(T.astype(np.float64), OFF), TypeError,
                          "tokens"),
    "flat_search ids out": (lambda: _core.flat_search(FLAT, Q, QO, 3, IDS_OUT), ValueError,
                            "doc_ids"),
    "flat_search dim": (lambda: _core.flat_search(FLAT, Q[:, :8].copy(), QO, 3), ValueError,
                        "queries"),
    "flat_score_docs ids out": (lambda: _core.flat_score_docs(FLAT, Q, IDS_OUT), ValueError,
                                "doc_ids"),
    "flat_score_docs not a segment": (lambda: _core.flat_score_docs(SEGMENT, Q, IDS_NEG),
                                      TypeError, "flat_score_docs"),
    # k-means and codec
    "kmeans too many centroids": (lambda: _core.kmeans_fit(T, N_TOKENS + 1), ValueError,
                                  "n_centroids"),
    "kmeans NaN x": (lambda: _core.kmeans_fit(changed("tokens", (0, 0), np.nan), 4, 2,
                                              neighbors=2), ValueError, "x"),
    "kmeans NaN init": (lambda: _core.kmeans_fit(T, N_CENTROIDS, 2, init=NAN_CENTROIDS),
                        ValueError, "init"),
    "kmeans negative neighbors": (lambda: _core.kmeans_fit(T, 4, 2, neighbors=-1), ValueError,
                                  "neighbors"),
    "kmeans_assign dim": (lambda: _core.kmeans_assign(T[:, :8].copy(), C), ValueError, "x"),
    "sample count": (lambda: _core.sample_indices(5, 6, 0), ValueError, "count"),
    "fit_buckets codes out": (lambda: _core.codec_fit_buckets(
        T, np.full(N_TOKENS, N_CENTROIDS, np.int32), C, NBITS), ValueError, "codes"),
    "fit_buckets NaN centroids": (lambda: _core.codec_fit_buckets(
        T, np.zeros(N_TOKENS, np.int32), NAN_CENTROIDS, NBITS), ValueError, "centroids"),
    "encode NaN centroids": (lambda: _core.codec_encode(T, NAN_CENTROIDS, CUT, W, NBITS),
                             ValueError, "centroids"),
    "encode NaN cutoffs": (lambda: _core.codec_encode(T, C, NAN_CUTOFFS, W, NBITS),
                           ValueError, "bucket_cutoffs"),
    "encode NaN x": (lambda: _core.codec_encode(changed("tokens", (0, 0), np.nan), C, CUT, W,
                                                NBITS), ValueError, "x"),
    "encode nbits": (lambda: _core.codec_encode(T, C, CUT, W, 3), ValueError, "nbits"),
    "decode codes out": (lambda: _core.codec_decode(BAD_CODES, RES, SC, C, W, NBITS),
                         ValueError, "codes"),
    "decode residuals shape": (lambda: _core.codec_decode(CODES, RES[:, :2].copy(), SC, C, W,
                                                          NBITS), ValueError, "residuals"),
    "decode scales length": (lambda: _core.codec_decode(CODES, RES, SC[:-1].copy(), C, W,
                                                        NBITS), ValueError, "scales"),
    "decode NaN weights": (lambda: _core.codec_decode(CODES, RES, SC, C, NAN_WEIGHTS, NBITS),
                           ValueError, "bucket_weights"),
    "ivf codes out": (lambda: _core.ivf_build(BAD_CODES, OFF, N_CENTROIDS), ValueError,
                      "codes"),
    "ivf offsets decrease": (lambda: _core.ivf_build(CODES, DECREASING, N_CENTROIDS),
                             ValueError, "doc_offsets"),
    "ivf offsets overrun": (lambda: _core.ivf_build(CODES, OVERRUN, N_CENTROIDS), ValueError,
                            "doc_offsets"),
    # native codec and residual segments
    "Codec NaN centroids": (lambda: _core.Codec(NAN_CENTROIDS, CUT, W, NBITS), ValueError,
                            "centroids"),
    "Codec NaN cutoffs": (lambda: _core.Codec(C, NAN_CUTOFFS, W, NBITS), ValueError,
                          "bucket_cutoffs"),
    "Codec NaN weights": (lambda: _core.Codec(C, CUT, NAN_WEIGHTS, NBITS), ValueError,
                          "bucket_weights"),
    "Codec weights shape": (lambda: _core.Codec(C, CUT, W[:, :2].copy(), NBITS), ValueError,
                            "bucket_weights"),
    "Codec dtype": (lambda: _core.Codec(C.astype(np.float64), CUT, W, NBITS), TypeError,
                    "centroids"),
    "segment codes out": (lambda: seg(codes=BAD_CODES), ValueError, "codes"),
    "segment codes dtype": (lambda: seg(codes=CODES.astype(np.int64)), TypeError, "codes"),
    "segment ivf ids out": (lambda: seg(ivf_doc_ids=BAD_IVF_IDS), ValueError, "ivf_doc_ids"),
    "segment ivf ids negative": (lambda: seg(ivf_doc_ids=NEG_IVF_IDS), ValueError,
                                 "ivf_doc_ids"),
    "segment ivf ids dtype": (lambda: seg(ivf_doc_ids=A["ivf_doc_ids"].astype(np.int64)),
                              TypeError, "ivf_doc_ids"),
    "segment ivf offsets decrease": (lambda: seg(ivf_offsets=changed("ivf_offsets", 2, 0)),
                                     ValueError, "ivf_offsets"),
    "segment ivf offsets overrun": (lambda: seg(ivf_offsets=changed("ivf_offsets", -1, 10**6)),
                                    ValueError, "ivf_offsets"),
    "segment ivf offsets length": (lambda: seg(ivf_offsets=A["ivf_offsets"][:-1].copy()),
                                   ValueError, "ivf_offsets"),
    "segment doc offsets decrease": (lambda: seg(doc_offsets=DECREASING), ValueError,
                                     "doc_offsets"),
    "segment doc offsets overrun": (lambda: seg(doc_offsets=OVERRUN), ValueError,
                                    "doc_offsets"),
    "segment residuals shape": (lambda: seg(residuals=RES[:-1].copy()), ValueError,
                                "residuals"),
    "segment NaN scales": (lambda: seg(scales=NAN_SCALES), ValueError, "scales"),
    "segment scales dtype": (lambda: seg(scales=SC.astype(np.float32)), TypeError, "scales"),
    "segment codec": (lambda: _core.ResidualSegment(None, CODES, RES, SC, OFF,
                                                    A["ivf_offsets"], A["ivf_doc_ids"]),
                      ValueError, "codec"),
    # search over residual segments
    "plaid mask length": (lambda: plaid([SEGMENT], [np.ones(3, np.uint8)]), ValueError,
                          "masks"),
    "plaid mask dtype": (lambda: plaid([SEGMENT], [np.ones(N_DOCS, np.int64)]), TypeError,
                         "masks"),
    "plaid mask count": (lambda: plaid([SEGMENT], []), ValueError, "masks"),
    "plaid no segments": (lambda: plaid([]), ValueError, "segments"),
    "plaid other codec": (lambda: plaid([SEGMENT, _core.ResidualSegment(
        _core.Codec(C, CUT, W, NBITS), *[A[n] for n in SEG_NAMES])]), ValueError, "segments"),
    "plaid not a segment": (lambda: plaid([FLAT]), TypeError, "plaid_search"),
    "plaid queries dim": (lambda: plaid([SEGMENT], queries=Q[:, :8].copy()), ValueError,
                          "queries"),
    "plaid query offsets overrun": (lambda: plaid([SEGMENT], offsets=np.array([0, 7], np.int64)),
                                    ValueError, "query_offsets"),
    "plaid k": (lambda: plaid([SEGMENT], k=0), ValueError, "k"),
    "plaid ncells": (lambda: plaid([SEGMENT], ncells=0), ValueError, "ncells"),
    "plaid threshold NaN": (lambda: plaid([SEGMENT], threshold=float("nan")), ValueError,
                            "centroid_score_threshold"),
    "score_docs ids out": (lambda: _core.plaid_score_docs(Q, SEGMENT, IDS_OUT), ValueError,
                           "doc_ids"),
    "score_docs ids negative": (lambda: _core.plaid_score_docs(Q, SEGMENT, IDS_NEG), ValueError,
                                "doc_ids"),
    "score_docs query dim": (lambda: _core.plaid_score_docs(Q[:, :8].copy(), SEGMENT, IDS_NEG),
                             ValueError, "query"),
    "default params k": (lambda: _core.plaid_default_params(0), ValueError, "k"),
    "simd level": (lambda: _core.set_simd_level("sse9"), ValueError, "SIMD level"),
    "threads": (lambda: _core.set_num_threads(0), ValueError, "n_threads"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_arrays_raise_naming_the_argument(name):
    call, error, pattern = CASES[name]
    with pytest.raises(error, match=pattern):
        call()


def test_good_arrays_pass():
    """The unchanged arrays of every case above are accepted (the cases fail for their
    crafted array, not for something else), with results equal to the array-level calls."""
    scores, segs, rows, stats = plaid([SEGMENT], k=5)
    assert scores.shape == segs.shape == rows.shape == (1, 5) and (segs == 0).all()
    assert stats.dtype == np.dtype(_core.plaid_stats_dtype()) and stats.shape == (1,)
    np.testing.assert_array_equal(_core.plaid_score_docs(Q, SEGMENT, rows[0]), scores[0])
    want = _core.exact_search(Q, QO, T, OFF, 4)
    got = _core.flat_search(FLAT, Q, QO, 4)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    ids = np.array([1, 4, 9], np.int64)
    np.testing.assert_array_equal(_core.flat_score_docs(FLAT, Q, ids),
                                  _core.maxsim_scores_subset(Q, T, OFF, ids))
    assert SEGMENT.n_docs == FLAT.n_docs == N_DOCS and CODEC.n_centroids == N_CENTROIDS
    assert _core.Codec(C, None, W, NBITS).bucket_cutoffs is None
    assert (CODEC.nbits, CODEC.dim) == (NBITS, DIM)


def test_segments_hold_views_not_copies():
    assert np.shares_memory(SEGMENT.codes, A["codes"])
    assert np.shares_memory(SEGMENT.doc_offsets, A["doc_offsets"])
    assert np.shares_memory(CODEC.centroids, A["centroids"])
    assert np.shares_memory(FLAT.tokens, A["tokens"])


def test_nan_scores_sort_last():
    """Finite inputs whose sums overflow to inf + -inf score NaN; top-k puts NaN after every
    number (among themselves by id) at every SIMD level, instead of breaking the sort."""
    q = np.array([[3e38, 1.0], [-3e38, 1.0]], np.float32)
    docs = np.array([[0, 1], [2, 0], [0, 2], [-2, 0], [0, 3]], np.float32)  # one token each
    offsets = np.arange(6, dtype=np.int64)
    before = _core.simd_level()
    try:
        for level in _core.supported_simd_levels():
            _core.set_simd_level(level)
            scores = _core.maxsim_scores(q, docs, offsets)
            assert np.isnan(scores[[1, 3]]).all()
            for k in (5, 3, 4):
                got_s, got_i = _core.exact_search(q, np.array([0, 2], np.int64), docs, offsets,
                                                  k)
                assert got_i[0].tolist() == [4, 2, 0, 1, 3][:k]
                np.testing.assert_array_equal(got_s[0][:3], np.float32([6, 4, 2])[:k])
    finally:
        _core.set_simd_level(before)
