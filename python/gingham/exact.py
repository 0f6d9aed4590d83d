"""Exact MaxSim over token embeddings in CSR layout (no index needed).

``tokens`` is (T, dim) float32 or float16; ``doc_offsets`` is (n_docs + 1,) int64 with
document i owning ``tokens[doc_offsets[i]:doc_offsets[i + 1]]``. Scores are raw MaxSim sums:
for each query token the best dot product with any of the document's tokens, summed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, _validate


def _tokens_and_offsets(tokens: Any, doc_offsets: Any, dim: int | None, check_finite: bool
                        ) -> tuple[np.ndarray, np.ndarray]:
    tokens = _validate.float_matrix(tokens, "tokens", dim, allow_float16=True, allow_empty=True,
                                    check_finite=check_finite)
    return tokens, _validate.offsets(doc_offsets, tokens.shape[0], "doc_offsets")


def maxsim_scores(query: Any, tokens: Any, doc_offsets: Any, *,
                  check_finite: bool = True) -> np.ndarray:
    """MaxSim score of one query against every document.

    query: (Lq, dim) float array; tokens: (T, dim) float32/float16; doc_offsets: (n_docs + 1,)
    integers. Returns float32 (n_docs,); a document with no tokens scores -inf.
    ``check_finite=False`` skips the NaN/inf scan of ``tokens`` (for data already checked).
    """
    q = _validate.float_matrix(query, "query")
    tokens, doc_offsets = _tokens_and_offsets(tokens, doc_offsets, q.shape[1], check_finite)
    return _core.maxsim_scores(q, tokens, doc_offsets)


def exact_search(queries: Any, tokens: Any, doc_offsets: Any, k: int, *,
                 check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive top-k MaxSim search.

    queries: one (Lq, dim) float array or a list of them (lengths may differ). Returns
    (scores float32, doc_indices int64), each (n_queries, min(k, n_nonempty_docs)), best first,
    ties broken by the lower document index; documents with no tokens never appear.
    """
    k = _validate.positive_int(k, "k")
    stacked, query_offsets, _ = _validate.query_batch(queries, None)
    tokens, doc_offsets = _tokens_and_offsets(tokens, doc_offsets, stacked.shape[1],
                                              check_finite)
    return _core.exact_search(stacked, query_offsets, tokens, doc_offsets, k)
