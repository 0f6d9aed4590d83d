"""engine.sparse.posting_top (the compiled BM25 posting sum and top-k) against a numpy oracle,
and its argument checks."""
import numpy as np
import pytest

from gingham.engine.sparse import posting_top


def random_postings(rng, n_terms, n_docs):
    """A term-posting matrix with unique documents per term and small integer weights (ties)."""
    doc_ids, weights, offsets = [], [], [0]
    for _ in range(n_terms):
        docs = rng.choice(n_docs, size=int(rng.integers(0, n_docs + 1)), replace=False)
        doc_ids.append(np.sort(docs).astype(np.int32))
        weights.append(rng.integers(-1, 4, size=len(docs)).astype(np.float32) / 2)
        offsets.append(offsets[-1] + len(docs))
    return (np.concatenate(weights), np.concatenate(doc_ids),
            np.asarray(offsets, dtype=np.int64))


def oracle(weights, doc_ids, offsets, terms, n_docs, k):
    scores = np.zeros(n_docs, np.float32)
    for t in terms:
        np.add.at(scores, doc_ids[offsets[t]:offsets[t + 1]], weights[offsets[t]:offsets[t + 1]])
    order = np.argsort(-scores, kind="stable")
    return scores, order[scores[order] > 0][:k]


def test_posting_top_equals_numpy():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n_terms, n_docs = int(rng.integers(1, 12)), int(rng.integers(1, 40))
        weights, doc_ids, offsets = random_postings(rng, n_terms, n_docs)
        terms = rng.integers(0, n_terms, size=int(rng.integers(0, 6))).astype(np.int64)
        for k in (1, 3, n_docs, n_docs + 5):
            want_scores, want_rows = oracle(weights, doc_ids, offsets, terms, n_docs, k)
            scores, rows, top = posting_top(weights, doc_ids, offsets, terms, n_docs, k)
            np.testing.assert_array_equal(scores, want_scores)
            np.testing.assert_array_equal(rows, want_rows)
            np.testing.assert_array_equal(top, want_scores[want_rows])


def test_posting_top_hand_computed():
    # term 0 in docs 0 and 2, term 1 in docs 2 and 3; the query repeats term 1
    weights = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    doc_ids = np.array([0, 2, 2, 3], np.int32)
    offsets = np.array([0, 2, 4], np.int64)
    scores, rows, top = posting_top(weights, doc_ids, offsets, np.array([0, 1, 1]), 5, 10)
    np.testing.assert_array_equal(scores, [1.0, 0.0, 3.0, 6.0, 0.0])
    np.testing.assert_array_equal(rows, [3, 2, 0])
    np.testing.assert_array_equal(top, [6.0, 3.0, 1.0])


def test_posting_top_rejects_bad_arguments():
    weights = np.array([1.0, 2.0], np.float32)
    doc_ids = np.array([0, 1], np.int32)
    offsets = np.array([0, 1, 2], np.int64)
    terms = np.array([0, 1], np.int64)
    with pytest.raises(TypeError, match="weights"):
        posting_top(weights.astype(np.float64), doc_ids, offsets, terms, 2, 1)
    with pytest.raises(TypeError, match="doc_ids"):
        posting_top(weights, doc_ids.astype(np.int64), offsets, terms, 2, 1)
    with pytest.raises(ValueError, match="doc_ids must hold one value per weight"):
        posting_top(weights, doc_ids[:1], offsets, terms, 2, 1)
    with pytest.raises(ValueError, match=r"terms\[1\] = 2 is not a term"):
        posting_top(weights, doc_ids, offsets, np.array([0, 2]), 2, 1)
    with pytest.raises(ValueError, match=r"term_offsets\[1:3\] is not a range"):
        posting_top(weights, doc_ids, np.array([0, 1, 5], np.int64), terms, 2, 1)
    with pytest.raises(ValueError, match=r"doc_ids\[1\] is not a document in \[0, 1\)"):
        posting_top(weights, doc_ids, offsets, terms, 1, 1)
    with pytest.raises(ValueError, match="k must be positive"):
        posting_top(weights, doc_ids, offsets, terms, 2, 0)
