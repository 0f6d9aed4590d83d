"""Hierarchical (Ward) token pooling in numpy + scipy, without torch.

The same clustering as sentence-transformers' ``HierarchicalTokenPooling`` (the first
``protected`` tokens kept as they are, the rest clustered on cosine distance into
``n // pool_factor`` groups, each group replaced by its mean, every row L2-normalized), so the
ONNX backend pools documents the way the torch backend does.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .pca import l2_normalize


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    """(n, n) float32 cosine distances of (n, d) float32 unit rows, clipped to [0, 2]."""
    return np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)


def ward_clusters(distances: np.ndarray, n_clusters: int,
                  linkage: Callable[..., np.ndarray] | None = None) -> np.ndarray:
    """Cluster of each of n points: (n,) int64 in 0..m-1, m <= n_clusters, numbered in
    ascending order of scipy's ``fcluster`` labels (the order of the pooled rows).

    distances: (n, n) symmetric; linkage: a scipy-compatible ``linkage`` (default scipy's)."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    link = (linkage or hierarchy.linkage)(squareform(distances, checks=False), method="ward")
    labels = hierarchy.fcluster(link, t=n_clusters, criterion="maxclust") - 1
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def n_pooled_clusters(n_tokens: int, pool_factor: float) -> int:
    """Clusters the pooling forms from ``n_tokens`` unprotected tokens."""
    return max(int(n_tokens // pool_factor), 1)


def hierarchical_pool(tokens: np.ndarray, pool_factor: float, protected: int = 1
                      ) -> np.ndarray:
    """Pool one document's (n_tokens, d) float32 unit token vectors; returns (m, d) float32
    unit rows, m = protected + max((n_tokens - protected) // pool_factor, 1) at most."""
    keep = tokens[:protected]
    rest = tokens[protected:]
    n_clusters = n_pooled_clusters(len(rest), pool_factor)
    if n_clusters < len(rest):
        inverse = ward_clusters(cosine_distances(rest), n_clusters)
        sums = np.zeros((int(inverse.max()) + 1, rest.shape[1]), dtype=np.float32)
        np.add.at(sums, inverse, rest)
        counts = np.bincount(inverse).astype(np.float32)
        tokens = np.concatenate([keep, sums / counts[:, None]], axis=0)
    return l2_normalize(tokens)
