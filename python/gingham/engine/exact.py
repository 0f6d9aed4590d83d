"""Exact MaxSim over token embeddings in CSR layout (no index needed).

``tokens`` is (T, dim) float32 or float16, or int8 storage given as ``tokens=(values,
scales)`` or ``tokens=values, token_scales=scales`` (values int8 (T, dim), scales float32 (T,),
token j = scales[j] * values[j]; see :func:`quantize_int8`); ``doc_offsets`` is (n_docs + 1,)
int64 with document i owning ``tokens[doc_offsets[i]:doc_offsets[i + 1]]``. Scores are raw
MaxSim sums: for each query token the best dot product with any of the document's tokens, summed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from . import validate as _validate


def _tokens_and_offsets(tokens: Any, token_scales: Any, doc_offsets: Any, dim: int | None,
                        check_finite: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Validated (tokens, token_scales or None, doc_offsets).

    Float tokens are not scanned for NaN / inf here: the _core call does it only when its
    kernels met a non-finite similarity, which such a token always causes (csrc/gingham/maxsim.h),
    so validation costs ~1/dim of the scoring instead of a second pass over the tokens.
    """
    if isinstance(tokens, tuple):
        if token_scales is not None:
            raise ValueError("token_scales given twice: pass tokens=(values, scales) or "
                             "token_scales=, not both")
        if len(tokens) != 2:
            raise ValueError("tokens given as a tuple must be (int8 values, float32 scales); "
                             f"got {len(tokens)} items")
        tokens, token_scales = tokens
    if token_scales is not None:
        tokens, token_scales = _validate.int8_tokens(tokens, token_scales, dim,
                                                     check_finite=check_finite)
    else:
        if isinstance(tokens, np.ndarray) and tokens.dtype == np.int8:
            raise TypeError("int8 tokens need their per-token scales: pass tokens=(values, "
                            "scales) or token_scales= (see gingham.quantize_int8)")
        tokens = _validate.float_matrix(tokens, "tokens", dim, allow_float16=True,
                                        allow_empty=True, check_finite=False)
    return tokens, token_scales, _validate.offsets(doc_offsets, tokens.shape[0], "doc_offsets")


def quantize_int8(tokens: Any) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-token int8 quantization.

    tokens: (T, dim) finite float array. Returns (values int8 (T, dim), scales float32 (T,))
    with ``tokens[j] ~= scales[j] * values[j]``, values in [-127, 127] and
    ``scales[j] = max|tokens[j]| / 127`` (0 for an all-zero row). Pass the pair as ``tokens=``
    to :func:`maxsim_scores` / :func:`exact_search`.
    """
    arr = _validate.float_matrix(tokens, "tokens", allow_empty=True)
    return _core.quantize_int8(arr)


def maxsim_scores(query: Any, tokens: Any, doc_offsets: Any, *, token_scales: Any = None,
                  check_finite: bool = True) -> np.ndarray:
    """MaxSim score of one query against every document.

    query: (Lq, dim) float array; tokens: (T, dim) float32/float16, or int8 values with
    ``token_scales`` (T,) (or the pair ``(values, scales)`` as ``tokens``); doc_offsets:
    (n_docs + 1,) integers. Returns float32 (n_docs,); a document with no tokens scores -inf.
    With ``check_finite`` (the default) a NaN/inf in ``query``, ``tokens`` or ``token_scales``
    raises ValueError naming the argument and position; the tokens are scanned only when the
    kernels met a non-finite similarity (~1% of their time otherwise). ``check_finite=False``
    skips even that, for data already checked.
    """
    q = _validate.float_matrix(query, "query")
    tokens, token_scales, doc_offsets = _tokens_and_offsets(tokens, token_scales, doc_offsets,
                                                            q.shape[1], check_finite)
    return _core.maxsim_scores(q, tokens, doc_offsets, token_scales, check_finite)


def exact_search(queries: Any, tokens: Any, doc_offsets: Any, k: int, *,
                 token_scales: Any = None, check_finite: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive top-k MaxSim search.

    queries: one (Lq, dim) float array or a list of them (lengths may differ). Returns
    (scores float32, doc_indices int64), each (n_queries, min(k, n_nonempty_docs)), best first,
    ties broken by the lower document index; documents with no tokens never appear.
    ``tokens``/``token_scales``/``check_finite`` as in :func:`maxsim_scores`.
    """
    k = _validate.positive_int(k, "k")
    stacked, query_offsets, _ = _validate.query_batch(queries, None)
    tokens, token_scales, doc_offsets = _tokens_and_offsets(tokens, token_scales, doc_offsets,
                                                            stacked.shape[1], check_finite)
    return _core.exact_search(stacked, query_offsets, tokens, doc_offsets, k, token_scales,
                              check_finite)
