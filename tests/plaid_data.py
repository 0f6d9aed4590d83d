"""Seeded synthetic data and numpy oracles shared by the compressed-index tests."""
from __future__ import annotations

import os

import numpy as np


def clustered_docs(n_docs: int, dim: int, n_centers: int, seed: int, noise: float = 0.25,
                   min_len: int = 4, max_len: int = 30) -> list[np.ndarray]:
    """Documents of unit token vectors around a few centers on the sphere (each document draws
    its tokens from a handful of centers, as real passages cover a few topics)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_centers, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    docs = []
    for _ in range(n_docs):
        topics = rng.integers(0, n_centers, size=4)
        n = int(rng.integers(min_len, max_len + 1))
        t = centers[topics[rng.integers(0, 4, size=n)]]
        t = t + noise * rng.standard_normal((n, dim)) / np.sqrt(dim)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        docs.append(t.astype(np.float32))
    return docs


def queries_from(docs: list[np.ndarray], n_queries: int, n_tokens: int, seed: int,
                 noise: float = 0.1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for d in rng.integers(0, len(docs), size=n_queries):
        doc = docs[d]
        q = doc[rng.integers(0, len(doc), size=n_tokens)]
        q = q + noise * rng.standard_normal(q.shape) / np.sqrt(doc.shape[1])
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        out.append(q.astype(np.float32))
    return out


def csr(docs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    return np.ascontiguousarray(np.concatenate(docs)), offsets


def maxsim_np(query: np.ndarray, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """float64 MaxSim of one query against every document (empty: -inf)."""
    sims = query.astype(np.float64) @ tokens.astype(np.float64).T
    out = np.full(len(offsets) - 1, -np.inf)
    for i in range(len(offsets) - 1):
        if offsets[i + 1] > offsets[i]:
            out[i] = sims[:, offsets[i]:offsets[i + 1]].max(axis=1).sum()
    return out


def unpack_buckets(residuals: np.ndarray, dim: int, nbits: int) -> np.ndarray:
    """Independent decoding of the bit layout of codec.h: MSB-first bucket bits per dimension."""
    bits = np.unpackbits(residuals, axis=1).reshape(len(residuals), dim, nbits)
    return (bits.astype(np.int64) * (1 << np.arange(nbits - 1, -1, -1))).sum(axis=2)


def decode_np(codes: np.ndarray, residuals: np.ndarray, scales: np.ndarray,
              centroids: np.ndarray, weights: np.ndarray, nbits: int) -> np.ndarray:
    """float64 scale * (centroid + bucket weights) per token (csrc/gingham/codec.h)."""
    dim = centroids.shape[1]
    buckets = unpack_buckets(residuals, dim, nbits)
    y = centroids[codes.astype(np.int64)] + weights[np.arange(dim)[None, :], buckets]
    return scales.astype(np.float64)[:, None] * y


def topk_np(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ids, -scores))[:k]
    return scores[order], ids[order]


def file_states(path) -> dict:
    """(size, mtime) of every index file under path; the catalog's WAL/shm files are left out
    (open connections touch them on reads). Equal before and after = nothing was written."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            if f.startswith("catalog.sqlite-"):
                continue
            p = os.path.join(root, f)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out
