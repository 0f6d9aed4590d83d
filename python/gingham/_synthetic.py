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


# A skewed topical corpus: what real token spaces look like. A few centers are very popular
# (stop-word-like tokens that every document shares), most are rare, and each document stays
# inside a small topic. Documents are generated in fixed blocks of _SKEWED_BLOCK documents, each
# from its own default_rng([seed, 1, block]), so any index range reproduces bit for bit however
# the caller chunks it, and 1M documents can be streamed without holding them.
_SKEWED_BLOCK = 256


class SkewedCorpus:
    """A seeded corpus of ``n_docs`` documents over ``n_centers`` Zipf-popular centers.

    Centers are uniform on the unit sphere of ``dim`` dimensions; center r has popularity
    proportional to 1 / (r + 1) ** ``zipf``. Each document draws a topic of ``topic_size``
    centers (with that popularity, with replacement) and a length from a gamma law of mean
    about ``mean_len`` clipped to ``min_len..max_len``; each token is one of its topic's centers
    (uniform) plus Gaussian noise of norm about ``noise``, renormalized to unit length.
    """

    def __init__(self, n_docs: int, *, dim: int = 128, n_centers: int = 4096,
                 zipf: float = 1.0, topic_size: int = 12, mean_len: float = 80.0,
                 min_len: int = 8, max_len: int = 256, noise: float = 0.6, seed: int = 0):
        for name, value in (("n_docs", n_docs), ("dim", dim), ("n_centers", n_centers),
                            ("topic_size", topic_size), ("min_len", min_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if not isinstance(max_len, int) or max_len < min_len:
            raise ValueError(f"max_len must be an int >= min_len ({min_len}); got {max_len!r}")
        if not mean_len > 0:
            raise ValueError(f"mean_len must be > 0; got {mean_len!r}")
        if not zipf >= 0:
            raise ValueError(f"zipf must be >= 0; got {zipf!r}")
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0; got {noise!r}")
        self.n_docs, self.dim, self.n_centers = n_docs, dim, n_centers
        self.zipf, self.topic_size, self.mean_len = float(zipf), topic_size, float(mean_len)
        self.min_len, self.max_len, self.noise, self.seed = min_len, max_len, float(noise), seed
        self.centers = _centers(np.random.default_rng([seed, 0]), n_centers, dim)
        weights = 1.0 / np.arange(1, n_centers + 1, dtype=np.float64) ** self.zipf
        self.popularity = weights / weights.sum()
        self._cdf = np.cumsum(self.popularity)
        self._cdf[-1] = 1.0

    def _popular(self, rng: np.random.Generator, shape) -> np.ndarray:
        """Center indices drawn with the popularity skew (int64, ``shape``)."""
        return np.minimum(np.searchsorted(self._cdf, rng.random(shape), side="right"),
                          self.n_centers - 1)

    def _block_plan(self, block: int):
        """(rng, lengths, topics) of one block: the rng is positioned after both draws."""
        size = min(_SKEWED_BLOCK, self.n_docs - block * _SKEWED_BLOCK)
        rng = np.random.default_rng([self.seed, 1, block])
        shape_k = 4.0
        raw = rng.gamma(shape_k, self.mean_len / shape_k, size=size)
        lengths = np.clip(np.rint(raw), self.min_len, self.max_len).astype(np.int64)
        topics = self._popular(rng, (size, self.topic_size))
        return rng, lengths, topics

    def _block(self, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, lengths, topics) of one block of documents."""
        rng, lengths, topics = self._block_plan(block)
        n = int(lengths.sum())
        doc_of_token = np.repeat(np.arange(len(lengths)), lengths)
        t = self.centers[topics[doc_of_token, rng.integers(0, self.topic_size, size=n)]]
        t += (self.noise / math.sqrt(self.dim)) * rng.standard_normal((n, self.dim),
                                                                     dtype=np.float32)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        return t, lengths, topics

    def _check_range(self, start: int, stop: int) -> None:
        if not (isinstance(start, int) and isinstance(stop, int)
                and 0 <= start <= stop <= self.n_docs):
            raise ValueError(f"start, stop must be ints with 0 <= start <= stop <= n_docs "
                             f"({self.n_docs}); got {start!r}, {stop!r}")

    def lengths(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Token counts (stop - start,) int64 of documents start..stop, without their tokens."""
        stop = self.n_docs if stop is None else stop
        self._check_range(start, stop)
        first, last = start // _SKEWED_BLOCK, -(-stop // _SKEWED_BLOCK)
        parts = [self._block_plan(b)[1] for b in range(first, last)]
        out = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return out[start - first * _SKEWED_BLOCK:stop - first * _SKEWED_BLOCK]

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Documents start..stop in CSR layout: tokens (n, dim) float32 unit rows and
        doc_offsets (stop - start + 1,) int64."""
        self._check_range(start, stop)
        first, last = start // _SKEWED_BLOCK, -(-stop // _SKEWED_BLOCK)
        tokens_parts, length_parts = [], []
        for b in range(first, last):
            t, lengths, _ = self._block(b)
            tokens_parts.append(t)
            length_parts.append(lengths)
        if not tokens_parts:
            return np.zeros((0, self.dim), np.float32), np.zeros(1, np.int64)
        lengths = np.concatenate(length_parts)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        lo, hi = start - first * _SKEWED_BLOCK, stop - first * _SKEWED_BLOCK
        tokens = np.concatenate(tokens_parts)[offsets[lo]:offsets[hi]]
        return tokens, offsets[lo:hi + 1] - offsets[lo]

    def chunks(self, size: int = 10_000, start: int = 0, stop: int | None = None):
        """Yield (ids (m,) int64 document numbers, docs: m float32 (n_i, dim) arrays) for
        consecutive ranges of ``size`` documents from start to stop (default: all)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int; got {size!r}")
        stop = self.n_docs if stop is None else stop
        self._check_range(start, stop)
        for a in range(start, stop, size):
            b = min(stop, a + size)
            yield np.arange(a, b, dtype=np.int64), split(*self.chunk(a, b))

    def csr(self, out: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The whole corpus in CSR layout (tokens an ``np.memmap`` of the ``.npy`` file ``out``
        when given), built block by block: tokens (n_tokens, dim) float32, doc_offsets int64."""
        lengths = self.lengths()
        offsets = np.zeros(self.n_docs + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        shape = (int(offsets[-1]), self.dim)
        tokens = (np.empty(shape, np.float32) if out is None else
                  np.lib.format.open_memmap(os.fspath(out), mode="w+", dtype=np.float32,
                                            shape=shape))
        for a in range(0, self.n_docs, _SKEWED_BLOCK):
            b = min(self.n_docs, a + _SKEWED_BLOCK)
            tokens[offsets[a]:offsets[b]] = self._block(a // _SKEWED_BLOCK)[0]
        if isinstance(tokens, np.memmap):
            tokens.flush()
        return tokens, offsets

    def queries(self, n_queries: int, *, doc_tokens: int = 24, fresh_tokens: int = 8,
                noise: float = 0.3, seed: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
        """``n_queries`` float32 (doc_tokens + fresh_tokens, dim) unit queries and their source
        documents (n_queries,) int64. A query is ``doc_tokens`` tokens of one random document
        (with replacement) perturbed by noise of norm about ``noise``, plus ``fresh_tokens`` new
        tokens around popularity-drawn centers (words the document does not contain)."""
        for name, value in (("n_queries", n_queries), ("doc_tokens", doc_tokens),
                            ("fresh_tokens", fresh_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0; got {value!r}")
        if doc_tokens + fresh_tokens < 1:
            raise ValueError("doc_tokens + fresh_tokens must be >= 1")
        rng = np.random.default_rng([self.seed, 2, seed])
        sources = rng.integers(0, self.n_docs, size=n_queries)
        scale = noise / math.sqrt(self.dim)
        blocks = {b: self._block(b) for b in np.unique(sources // _SKEWED_BLOCK).tolist()}
        out = []
        for d in sources.tolist():
            tokens, lengths, _ = blocks[d // _SKEWED_BLOCK]
            i = d % _SKEWED_BLOCK
            first = int(lengths[:i].sum())
            doc = tokens[first:first + int(lengths[i])]
            q = doc[rng.integers(0, len(doc), size=doc_tokens)]
            fresh = self.centers[self._popular(rng, fresh_tokens)]
            fresh = fresh + (self.noise / math.sqrt(self.dim)) * rng.standard_normal(
                fresh.shape, dtype=np.float32)
            q = np.concatenate([q, fresh])
            q = q + scale * rng.standard_normal(q.shape, dtype=np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            out.append(q.astype(np.float32))
        return out, sources.astype(np.int64)
