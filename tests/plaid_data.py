"""Seeded synthetic data and numpy oracles shared by the compressed-index tests."""
from __future__ import annotations

import os

import numpy as np

from gingham import _synthetic


def clustered_docs(n_docs: int, dim: int, n_centers: int, seed: int, noise: float = 0.25,
                   min_len: int = 4, max_len: int = 30) -> list[np.ndarray]:
    """Documents of unit token vectors around a few centers on the sphere (gingham._synthetic)."""
    return _synthetic.clustered_docs(n_docs, dim=dim, n_centers=n_centers, seed=seed,
                                     noise=noise, min_len=min_len, max_len=max_len)


def queries_from(docs: list[np.ndarray], n_queries: int, n_tokens: int, seed: int,
                 noise: float = 0.1) -> list[np.ndarray]:
    """Queries of ``n_tokens`` perturbed tokens of one random document each."""
    return _synthetic.queries_near(*csr(docs), n_queries, n_tokens=n_tokens, noise=noise,
                                   seed=seed)


csr = _synthetic.to_csr


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


def approx_reference(q, centroids, codes, doc_offsets, doc, threshold):
    """PLAID's approximate score of one document in numpy (csrc/gingham/plaid.h stage 3):
    per query row the best centroid cosine over the document's tokens, skipping tokens whose
    centroid's cosine is below threshold for every row; a row no kept token reaches adds 0."""
    c = centroids.astype(np.float64)
    cos = (q.astype(np.float64) @ c.T) / np.linalg.norm(c, axis=1)  # (Lq, n_centroids)
    mine = codes[doc_offsets[doc]:doc_offsets[doc + 1]].astype(np.int64)
    if threshold > -np.inf:
        mine = mine[cos[:, mine].max(axis=0) >= threshold]
    return float(cos[:, mine].max(axis=1).sum()) if len(mine) else 0.0
