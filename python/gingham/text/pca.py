"""Dimension reduction of token vectors by PCA fitted on a corpus's own tokens.

A fitted reducer is two arrays, ``mean`` (d,) float32 and ``components`` (k, d) float32 with
orthonormal rows; ``apply`` maps unit vectors x to ``normalize((x - mean) @ components.T)``, so
MaxSim stays a sum of cosines. Stored as ``pca_mean.npy`` / ``pca_components.npy`` (no pickle).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..storage.errors import CorruptionError
from .saved import load_matrix

MEAN_FILE = "pca_mean.npy"
COMPONENTS_FILE = "pca_components.npy"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, d) scaled to unit L2 norm (zero rows stay zero); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class PCAReducer:
    """PCA projection of token vectors to ``dim`` dimensions, renormalized to unit length."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        mean = np.ascontiguousarray(mean, dtype=np.float32)
        components = np.ascontiguousarray(components, dtype=np.float32)
        if mean.ndim != 1 or components.ndim != 2 or components.shape[1] != mean.shape[0]:
            raise ValueError(f"PCA mean must be (d,) and components (k, d); got {mean.shape} "
                             f"and {components.shape}")
        self.mean = mean
        self.components = components

    @property
    def dim(self) -> int:
        """Output dimension k."""
        return int(self.components.shape[0])

    @property
    def input_dim(self) -> int:
        """Input dimension d."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, embeddings: Sequence[np.ndarray], dim: int, *, max_tokens: int = 200_000,
            seed: int = 0) -> "PCAReducer":
        """Fit on a list of (n_tokens, d) arrays (a seeded sample of at most ``max_tokens`` rows).

        Returns a reducer to ``dim`` <= d dimensions. Components are the top eigenvectors of the
        float64 covariance, each with its largest-magnitude entry made positive so a refit on the
        same tokens gives the same arrays.
        """
        tokens = np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings], axis=0)
        d = tokens.shape[1] if tokens.ndim == 2 else 0
        if tokens.shape[0] < 2 or not 1 <= dim <= d:
            raise ValueError(f"PCA needs >= 2 tokens and 1 <= dim <= {d}; got "
                             f"{tokens.shape[0]} tokens and dim={dim}")
        if tokens.shape[0] > max_tokens:
            rows = np.random.default_rng(seed).choice(tokens.shape[0], max_tokens, replace=False)
            tokens = tokens[np.sort(rows)]
        x = tokens.astype(np.float64)
        mean = x.mean(axis=0)
        x -= mean
        cov = x.T @ x / (x.shape[0] - 1)
        _, vecs = np.linalg.eigh(cov)                # ascending eigenvalues
        comps = vecs[:, ::-1][:, :dim].T.copy()
        signs = np.sign(comps[np.arange(dim), np.argmax(np.abs(comps), axis=1)])
        comps *= signs[:, None]
        return cls(mean.astype(np.float32), comps.astype(np.float32))

    def apply(self, embeddings: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Project each (n_tokens, d) array to (n_tokens, dim) float32 unit rows."""
        out = []
        for e in embeddings:
            e = np.asarray(e, dtype=np.float32)
            if e.ndim != 2 or e.shape[1] != self.input_dim:
                raise ValueError(f"embeddings must be (n_tokens, {self.input_dim}); got {e.shape}")
            out.append(l2_normalize((e - self.mean) @ self.components.T))
        return out

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``pca_mean.npy`` and ``pca_components.npy`` into ``folder``."""
        np.save(os.path.join(folder, MEAN_FILE), self.mean, allow_pickle=False)
        np.save(os.path.join(folder, COMPONENTS_FILE), self.components, allow_pickle=False)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "PCAReducer":
        """Read a reducer written by :meth:`save`: a finite float32 mean (d,) and components
        (k, d), else CorruptionError naming the file."""
        mean = load_matrix(os.path.join(folder, MEAN_FILE), 1)
        components_path = os.path.join(folder, COMPONENTS_FILE)
        components = load_matrix(components_path, 2)
        if components.shape[1] != mean.shape[0] or components.shape[0] == 0:
            raise CorruptionError(components_path, f"expected (k, {mean.shape[0]}) components "
                                  f"for a mean of {mean.shape[0]}; got {components.shape}")
        return cls(mean, components)
