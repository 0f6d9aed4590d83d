"""bench/scale.py's own arithmetic: the chunked ground truth, the block sample, the fitted
growth exponents."""
import sys
from pathlib import Path

import numpy as np

from gingham._synthetic import SkewedCorpus
from plaid_data import maxsim_np

# bench/ on the path for this import only: its script names would shadow installed packages
# (and reach every later test and the subprocesses that inherit sys.path)
_BENCH = str(Path(__file__).resolve().parents[1] / "bench")
sys.path.insert(0, _BENCH)
try:
    import scale  # noqa: E402
finally:
    sys.path.remove(_BENCH)


def test_truth_merged_over_chunks_is_the_brute_force_top_k():
    corpus = SkewedCorpus(600, dim=16, n_centers=64, seed=3)
    queries, _ = corpus.queries(4, doc_tokens=6, fresh_tokens=2, seed=2)
    truth = scale.Truth(queries, 25)
    for a in range(0, 600, 170):
        tokens, offsets = corpus.chunk(a, min(600, a + 170))
        truth.update(tokens, offsets, a)
    tokens, offsets = corpus.chunk(0, 600)
    for q, ids, scores in zip(queries, truth.ids, truth.scores):
        ref = maxsim_np(q, tokens, offsets)
        order = np.lexsort((np.arange(600), -ref))[:25]
        np.testing.assert_allclose(scores, ref[order], rtol=1e-5, atol=1e-5)
        assert len(set(ids.tolist()) ^ set(order.tolist())) <= 2  # float ties at the cut


def test_block_sample_rows_come_from_the_corpus():
    corpus = SkewedCorpus(2000, dim=16, n_centers=64, seed=1)
    sample = scale.draw_sample(corpus, 500, seed=4)
    assert sample.shape == (500, 16)
    everything = corpus.chunk(0, 2000)[0]
    rows = {r.tobytes() for r in everything}
    assert all(r.tobytes() in rows for r in sample)
    assert len({r.tobytes() for r in sample}) == 500


def test_growth_exponent_recovers_a_power_law():
    sizes = [{"n_docs": n, "cost": 3.0 * n ** 0.5} for n in (10_000, 100_000, 1_000_000)]
    assert abs(scale.growth(sizes, lambda s: s["cost"]) - 0.5) < 1e-9
    assert scale.growth(sizes[:1], lambda s: s["cost"]) is None
