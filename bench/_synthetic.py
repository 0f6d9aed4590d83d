"""Seeded synthetic late-interaction corpus shared by the benchmarks (bench/plaid.py,
bench/storage.py, bench/index_ops.py).

Token vectors (d = 128) around ``n_centers`` centers on the unit sphere plus noise; each document
(32-180 tokens) draws its tokens from 4 centers. Queries (32 tokens) are perturbed tokens of
random documents. The corpus is generated in chunks into a disk-backed float32 memmap.
"""
from __future__ import annotations

import math
import os

import numpy as np

DIM = 128
Q_TOKENS = 32


def generate(n_docs: int, n_centers: int, noise: float, seed: int, folder: str,
             chunk: int = 10_000) -> tuple[np.memmap, np.ndarray]:
    """Tokens (memmap, float32) and doc_offsets of the seeded corpus, generated in chunks."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_centers, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    lengths = rng.integers(32, 181, size=n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.lib.format.open_memmap(os.path.join(folder, "tokens.npy"), mode="w+",
                                       dtype=np.float32, shape=(int(offsets[-1]), DIM))
    for a in range(0, n_docs, chunk):
        b = min(n_docs, a + chunk)
        crng = np.random.default_rng([seed, a])
        n = int(offsets[b] - offsets[a])
        topics = crng.integers(0, n_centers, size=(b - a, 4))
        doc_of_token = np.repeat(np.arange(b - a), lengths[a:b])
        t = centers[topics[doc_of_token, crng.integers(0, 4, size=n)]]
        t += (noise / math.sqrt(DIM)) * crng.standard_normal((n, DIM), dtype=np.float32)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        tokens[offsets[a]:offsets[b]] = t
    tokens.flush()
    return tokens, offsets


def make_queries(tokens, offsets, n_queries: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for d in rng.integers(0, len(offsets) - 1, size=n_queries):
        doc = np.asarray(tokens[offsets[d]:offsets[d + 1]])
        q = doc[rng.integers(0, len(doc), size=Q_TOKENS)]
        q = q + (0.3 / math.sqrt(DIM)) * rng.standard_normal(q.shape).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        out.append(q.astype(np.float32))
    return out


def parse_centroids(text: str) -> dict[int, int | None]:
    """'SIZE:N,SIZE:auto' -> {size: n_centroids or None (the PLAID default)}."""
    out: dict[int, int | None] = {}
    for part in filter(None, text.split(",")):
        size, value = part.split(":")
        out[int(size)] = None if value == "auto" else int(value)
    return out
