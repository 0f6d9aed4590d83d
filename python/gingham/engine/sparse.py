"""Scores of one query over a BM25-style term-posting matrix and its best documents, in one
compiled call: the kernel behind ``text.bm25.BM25Index`` (the text layer reaches the compiled
core only through the engine)."""
from __future__ import annotations

import numpy as np

from .. import _core


def posting_top(weights: np.ndarray, doc_ids: np.ndarray, term_offsets: np.ndarray,
                terms: np.ndarray, n_docs: int, k: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Term t occurs in documents doc_ids[p] (int32) with weight weights[p] (float32) for p in
    [term_offsets[t], term_offsets[t + 1]) (int64). For the query terms ``terms`` (int64; a
    repeated term adds again) -> (scores float32 (n_docs,), the summed weights per document;
    rows int64 (k',) of the min(k, positive scores) best documents, best first, ties by lower
    row; their scores float32 (k',)). Only the query's postings are checked and read."""
    return _core.posting_top(weights, doc_ids, term_offsets, terms, int(n_docs), int(k))
