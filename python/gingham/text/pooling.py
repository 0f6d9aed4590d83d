"""Hierarchical (Ward) token pooling in numpy + scipy, without torch.

The same clustering as sentence-transformers' ``HierarchicalTokenPooling`` (the first
``protected`` tokens kept as they are, the rest clustered on cosine distance into
``n // pool_factor`` groups, each group replaced by its mean, every row L2-normalized), so the
ONNX backend pools documents the way the torch backend does.
"""
from __future__ import annotations

import numpy as np

from .pca import l2_normalize


def hierarchical_pool(tokens: np.ndarray, pool_factor: float, protected: int = 1
                      ) -> np.ndarray:
    """Pool one document's (n_tokens, d) float32 unit token vectors; returns (m, d) float32
    unit rows, m = protected + max((n_tokens - protected) // pool_factor, 1) at most."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    keep = tokens[:protected]
    rest = tokens[protected:]
    n = len(rest)
    n_clusters = max(int(n // pool_factor), 1)
    if n_clusters < n:
        dist = np.clip(1.0 - rest @ rest.T, 0.0, 2.0)
        linkage = hierarchy.linkage(squareform(dist, checks=False), method="ward")
        labels = hierarchy.fcluster(linkage, t=n_clusters, criterion="maxclust") - 1
        _, inverse = np.unique(labels, return_inverse=True)
        sums = np.zeros((int(inverse.max()) + 1, rest.shape[1]), dtype=np.float32)
        np.add.at(sums, inverse, rest)
        counts = np.bincount(inverse).astype(np.float32)
        tokens = np.concatenate([keep, sums / counts[:, None]], axis=0)
    return l2_normalize(tokens)
