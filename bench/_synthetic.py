"""The benchmarks' corpus: ``gingham._synthetic`` at d = 128, 32-token queries, written into a
disk-backed float32 memmap (bench/plaid.py, bench/storage.py, bench/index_ops.py,
bench/codec_gap.py)."""
from __future__ import annotations

import os

import numpy as np

from gingham._synthetic import SkewedCorpus, clustered_corpus, queries_near

DIM = 128
Q_TOKENS = 32


def generate(n_docs: int, n_centers: int, noise: float, seed: int, folder: str,
             chunk: int = 10_000) -> tuple[np.memmap, np.ndarray]:
    """Tokens (memmap of ``folder``/tokens.npy, float32) and doc_offsets of the seeded corpus:
    32-180 tokens per document, 4 of ``n_centers`` centers each."""
    return clustered_corpus(n_docs, dim=DIM, n_centers=n_centers, noise=noise, seed=seed,
                            out=os.path.join(folder, "tokens.npy"), chunk=chunk)


def make_queries(tokens, offsets, n_queries: int, seed: int) -> list[np.ndarray]:
    """``n_queries`` (32, 128) float32 queries near random documents of the corpus."""
    return queries_near(tokens, offsets, n_queries, n_tokens=Q_TOKENS, noise=0.3, seed=seed)


def parse_centroids(text: str) -> dict[int, int | None]:
    """'SIZE:N,SIZE:auto' -> {size: n_centroids or None (the PLAID default)}."""
    out: dict[int, int | None] = {}
    for part in filter(None, text.split(",")):
        size, value = part.split(":")
        out[int(size)] = None if value == "auto" else int(value)
    return out


def skewed(n_docs: int, seed: int = 0) -> SkewedCorpus:
    """The skewed topical corpus of issue 18 at d = 128: 4,096 Zipf-popular centers, 12-center
    topics, ~80 tokens per document (``gingham._synthetic.SkewedCorpus`` defaults)."""
    return SkewedCorpus(n_docs, dim=DIM, seed=seed)
