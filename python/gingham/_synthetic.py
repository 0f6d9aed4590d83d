"""Seeded synthetic late-interaction data: clustered unit token vectors and nearby queries.

The one generator behind ``gingham bench``, the benchmark scripts and the tests (numpy only).

A corpus has ``n_centers`` centers drawn uniformly on the unit sphere. Each document picks
``topics`` of them and has ``min_len..max_len`` tokens (uniform); each token is one of its
document's centers plus Gaussian noise of norm about ``noise``, renormalized to unit length.
Queries are ``n_tokens`` tokens drawn from one random document, perturbed the same way.

Everything is a pure function of the arguments: documents are generated in chunks of ``chunk``
documents, each from its own ``default_rng([seed, first document])``, so a corpus larger than
memory can be written straight into a memory-mapped ``.npy`` file (``out``) and reproduced
bit for bit.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .engine.csr import to_csr  # noqa: F401  (part of this module's API: list <-> CSR)


def sphere_centers(n_centers: int, dim: int, seed: int) -> np.ndarray:
    """The (n_centers, dim) float32 unit centers of ``clustered_corpus(seed=seed)``."""
    return _centers(np.random.default_rng(seed), n_centers, dim)


def _centers(rng: np.random.Generator, n_centers: int, dim: int) -> np.ndarray:
    centers = rng.standard_normal((n_centers, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    return centers


def clustered_corpus(n_docs: int, *, dim: int = 128, n_centers: int = 1024,
                     noise: float = 0.6, min_len: int = 32, max_len: int = 180,
                     topics: int = 4, seed: int = 0, out: str | os.PathLike | None = None,
                     chunk: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """A seeded clustered corpus in CSR layout.

    Returns tokens (n_tokens, dim) float32 with unit rows (an ``np.memmap`` of the ``.npy``
    file ``out`` when given) and doc_offsets (n_docs + 1,) int64; document i is
    ``tokens[doc_offsets[i]:doc_offsets[i + 1]]``, with min_len..max_len tokens.
    """
    for name, value in (("n_docs", n_docs), ("dim", dim), ("n_centers", n_centers),
                        ("min_len", min_len), ("topics", topics), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if not isinstance(max_len, int) or max_len < min_len:
        raise ValueError(f"max_len must be an int >= min_len ({min_len}); got {max_len!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}")
    rng = np.random.default_rng(seed)
    centers = _centers(rng, n_centers, dim)
    lengths = rng.integers(min_len, max_len + 1, size=n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    shape = (int(offsets[-1]), dim)
    tokens = (np.empty(shape, np.float32) if out is None else
              np.lib.format.open_memmap(os.fspath(out), mode="w+", dtype=np.float32,
                                        shape=shape))
    for a in range(0, n_docs, chunk):
        b = min(n_docs, a + chunk)
        crng = np.random.default_rng([seed, a])
        n = int(offsets[b] - offsets[a])
        chosen = crng.integers(0, n_centers, size=(b - a, topics))
        doc_of_token = np.repeat(np.arange(b - a), lengths[a:b])
        t = centers[chosen[doc_of_token, crng.integers(0, topics, size=n)]]
        t += (noise / math.sqrt(dim)) * crng.standard_normal((n, dim), dtype=np.float32)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        tokens[offsets[a]:offsets[b]] = t
    if isinstance(tokens, np.memmap):
        tokens.flush()
    return tokens, offsets


def split(tokens: np.ndarray, doc_offsets: np.ndarray) -> list[np.ndarray]:
    """CSR -> one (n_i, dim) array per document (views into ``tokens`` for an ndarray)."""
    return [np.asarray(tokens[doc_offsets[i]:doc_offsets[i + 1]])
            for i in range(len(doc_offsets) - 1)]


def clustered_docs(n_docs: int, **options) -> list[np.ndarray]:
    """``clustered_corpus(n_docs, **options)`` as one float32 (n_i, dim) array per document."""
    return split(*clustered_corpus(n_docs, **options))


def queries_near(tokens: np.ndarray, doc_offsets: np.ndarray, n_queries: int, *,
                 n_tokens: int = 32, noise: float = 0.3, seed: int = 1) -> list[np.ndarray]:
    """``n_queries`` float32 (n_tokens, dim) unit queries, each made of tokens of one random
    document (drawn with replacement) plus Gaussian noise of norm about ``noise``."""
    if isinstance(n_queries, bool) or not isinstance(n_queries, int) or n_queries < 0:
        raise ValueError(f"n_queries must be an int >= 0; got {n_queries!r}")
    dim = tokens.shape[1]
    rng = np.random.default_rng(seed)
    out = []
    for d in rng.integers(0, len(doc_offsets) - 1, size=n_queries):
        doc = np.asarray(tokens[doc_offsets[d]:doc_offsets[d + 1]])
        q = doc[rng.integers(0, len(doc), size=n_tokens)]
        q = q + (noise / math.sqrt(dim)) * rng.standard_normal(q.shape).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        out.append(q.astype(np.float32))
    return out
