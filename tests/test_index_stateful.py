"""gingham.Index against a brute-force model under random sequences of writes and searches.

The model is a dict id -> tokens plus the internal-id order (insertion order; an upserted or
re-added document counts as new and goes last). It scores with float64 MaxSim. Searches must
return exactly min(k, live documents) hits, best first, ties by internal-id order, each score
within a tolerance of the model's.

- fp32 (flat) storage keeps the tokens given, so the model holds them exactly.
- residual storage: the model holds ``Index.tokens(id)`` (the decoded codes) read right after
  the add, so exact mode must agree with MaxSim over the decoded tokens, and so must PLAID when
  k covers every document (the index is small: every candidate survives).

The default profile takes about 10 s; ``pytest -m slow`` runs a longer one (minutes).
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import gingham
from gingham._synthetic import clustered_docs, queries_near, to_csr
from gingham.storage import DuplicateIdError, UnknownIdError

DIM = 16
IDS = [f"doc-{i}" for i in range(10)]
# Documents and queries are drawn from fixed seeded pools; two ids may get the same pool entry,
# which makes exact ties that the tie rule must order.
POOL = clustered_docs(40, dim=DIM, n_centers=5, noise=0.5, min_len=1, max_len=5, seed=0)
QUERIES = [q for n in (1, 2, 4) for q in queries_near(*to_csr(POOL), 8, n_tokens=n, seed=n)]
TOLERANCE = {"fp32": 2e-5, "residual": 2e-4}  # per query token

doc_choices = st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, len(POOL) - 1)),
                       min_size=1, max_size=4, unique_by=lambda t: t[0])


def maxsim64(query: np.ndarray, tokens: np.ndarray) -> float:
    """float64 MaxSim of one query against one document."""
    return float((query.astype(np.float64) @ tokens.T).max(axis=1).sum())


class IndexModel(RuleBasedStateMachine):
    """Index vs model; subclasses choose the storage kind."""

    STORAGE = "fp32"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="gingham-stateful-")
        self.path = os.path.join(self.tmp, "index")
        extra = {"nbits": 2, "n_centroids": 8, "seed": 0} if self.STORAGE == "residual" else {}
        self.index = gingham.Index.create(self.path, dim=DIM, storage=self.STORAGE, **extra)
        self.docs: dict[str, np.ndarray] = {}
        self.order: list[str] = []

    # ---- model updates -------------------------------------------------------------------

    def _commit_add(self, ids: list[str], upsert: bool) -> None:
        for doc_id in ids:
            if doc_id in self.docs:
                self.order.remove(doc_id)
            self.order.append(doc_id)
            stored = self.index.tokens(doc_id)
            self.docs[doc_id] = stored.astype(np.float64)

    def _add(self, choice: list[tuple[str, int]], upsert: bool) -> None:
        ids = [doc_id for doc_id, _ in choice]
        embeddings = [POOL[p] for _, p in choice]
        if not upsert and any(doc_id in self.docs for doc_id in ids):
            with pytest.raises(DuplicateIdError):
                self.index.add(ids, embeddings)
            return
        self.index.add(ids, embeddings, upsert=upsert)
        self._commit_add(ids, upsert)
        if self.STORAGE == "fp32":
            for doc_id, p in choice:
                np.testing.assert_array_equal(self.docs[doc_id], POOL[p])

    @initialize(choice=doc_choices)
    def first_add(self, choice):
        self._add(choice, upsert=False)

    @rule(choice=doc_choices)
    def add(self, choice):
        self._add(choice, upsert=False)

    @rule(choice=doc_choices)
    def upsert(self, choice):
        self._add(choice, upsert=True)

    @rule(ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True),
          ignore_missing=st.booleans())
    def delete(self, ids, ignore_missing):
        live = [x for x in ids if x in self.docs]
        if len(live) < len(ids) and not ignore_missing:
            with pytest.raises(UnknownIdError):
                self.index.delete(ids)
            return
        assert self.index.delete(ids, missing="ignore" if ignore_missing else "raise") == \
            len(live)
        for doc_id in live:
            del self.docs[doc_id]
            self.order.remove(doc_id)

    @rule()
    def compact(self):
        self.index.compact()

    @rule()
    def reopen(self):
        self.index.close()
        self.index = gingham.Index.open(self.path)

    # ---- searches ------------------------------------------------------------------------

    def _check(self, hits, query: np.ndarray, k: int) -> None:
        scores = {doc_id: maxsim64(query, t) for doc_id, t in self.docs.items()}
        position = {doc_id: i for i, doc_id in enumerate(self.order)}
        expected = sorted(self.order, key=lambda d: (-scores[d], position[d]))
        n = min(k, len(expected))
        got = [h.id for h in hits]
        assert len(got) == n and len(set(got)) == n
        assert [h.rank for h in hits] == list(range(n))
        tol = TOLERANCE[self.STORAGE] * len(query)
        for h in hits:
            assert abs(h.score - scores[h.id]) <= tol, (h, scores[h.id])
        ranked = [scores[d] for d in expected]
        for g, want in zip(got, ranked):  # the i-th hit has the model's i-th best score
            assert abs(scores[g] - want) <= tol
        near_tie = any(ranked[i] - ranked[i + 1] <= tol for i in range(min(n, len(ranked) - 1)))
        if not near_tie:
            assert got == expected[:n]
        for a, b in zip(hits, hits[1:]):
            assert a.score >= b.score
            if a.score == b.score:  # an exact tie: earlier internal id first
                assert position[a.id] < position[b.id]

    @rule(q=st.integers(0, len(QUERIES) - 1), k=st.integers(1, 12))
    def search_exact(self, q, k):
        self._check(self.index.search(QUERIES[q], k=k, mode="exact"), QUERIES[q], k)

    @precondition(lambda self: self.STORAGE == "residual")
    @rule(q=st.integers(0, len(QUERIES) - 1), extra=st.integers(0, 3))
    def search_plaid_covering(self, q, extra):
        k = len(self.docs) + extra
        if k == 0:
            return
        self._check(self.index.search(QUERIES[q], k=k), QUERIES[q], k)

    @rule(q=st.integers(0, len(QUERIES) - 1),
          ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True))
    def rerank(self, q, ids):
        live = [x for x in ids if x in self.docs]
        if not live:
            return
        hits = self.index.rerank(QUERIES[q], live)
        scores = {doc_id: maxsim64(QUERIES[q], self.docs[doc_id]) for doc_id in live}
        assert sorted(h.id for h in hits) == sorted(live)
        tol = TOLERANCE[self.STORAGE] * len(QUERIES[q])
        for h in hits:
            assert abs(h.score - scores[h.id]) <= tol

    # ---- invariants ----------------------------------------------------------------------

    @invariant()
    def same_documents_in_insertion_order(self):
        assert self.index.ids() == self.order
        assert len(self.index) == len(self.order)

    def teardown(self):
        self.index.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class FlatModel(IndexModel):
    STORAGE = "fp32"


class ResidualModel(IndexModel):
    STORAGE = "residual"


QUICK = settings(max_examples=15, stateful_step_count=20, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=150, stateful_step_count=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("machine", [FlatModel, ResidualModel], ids=["fp32", "residual"])
def test_index_matches_model(machine):
    run_state_machine_as_test(machine, settings=QUICK)


@pytest.mark.slow
@pytest.mark.parametrize("machine", [FlatModel, ResidualModel], ids=["fp32", "residual"])
def test_index_matches_model_long(machine):
    run_state_machine_as_test(machine, settings=LONG)
