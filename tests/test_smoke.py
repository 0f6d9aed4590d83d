"""Smoke test of the installed package against a hand-computed case."""
import numpy as np

import gingham


def test_hand_computed_maxsim():
    query = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    tokens = np.array([[2.0, 1.0], [0.5, 3.0], [1.0, 1.0]], dtype=np.float32)
    doc_offsets = np.array([0, 2, 2, 3])
    # doc 0: row 0 -> max(2, 0.5) = 2; row 1 -> max(1, 3) = 3; doc 2: 1 + 1 = 2; doc 1 empty
    np.testing.assert_array_equal(gingham.maxsim_scores(query, tokens, doc_offsets),
                                  np.array([5.0, -np.inf, 2.0], dtype=np.float32))
    scores, ids = gingham.exact_search(query, tokens, doc_offsets, k=5)
    np.testing.assert_array_equal(ids, [[0, 2]])
    np.testing.assert_array_equal(scores, [[5.0, 2.0]])
