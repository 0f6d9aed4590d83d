"""Encoded corpora on disk, so a second evaluation of the same data skips encoding.

An entry is a folder ``<cache_dir>/<key>/`` holding CSR token arrays (``tokens.npy`` float32
(T, d), ``doc_offsets.npy`` int64 (n + 1,)), ``info.json`` and, for a corpus encoded while
fitting the encoder's PCA, the fitted encoder (``encoder/``, ``Encoder.save``). Keys are
sha256 of (encoder fingerprint, sha256 of the source file, what was encoded): equal keys mean
equal encoder settings, model files, projection and PCA, and equal texts. An entry is written
to a temporary folder and renamed, so a reader never sees half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..engine.csr import from_csr, to_csr

KINDS = ("documents", "queries", "fitted documents")
ENCODER_DIR = "encoder"


def default_cache_dir() -> str:
    """``$GINGHAM_CACHE`` or ``~/.cache/gingham``."""
    return os.environ.get("GINGHAM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "gingham")


class EmbeddingCache:
    """Token embeddings on disk keyed by (encoder fingerprint, corpus hash, settings)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    @staticmethod
    def key(model_fingerprint: str, corpus_hash: str, settings: dict) -> str:
        """Stable 32-hex-digit key of the three parts."""
        blob = json.dumps([model_fingerprint, corpus_hash, settings], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def folder(self, key: str) -> str:
        """The entry folder of ``key`` (it may not exist)."""
        return os.path.join(self.cache_dir, key)

    def get(self, key: str) -> list[np.ndarray] | None:
        """Cached embeddings (read-only memory-mapped (n_i, d) float32 views) or None."""
        d = self.folder(key)
        if not os.path.exists(os.path.join(d, "done")):
            return None
        tokens = np.load(os.path.join(d, "tokens.npy"), mmap_mode="r", allow_pickle=False)
        offsets = np.load(os.path.join(d, "doc_offsets.npy"), allow_pickle=False)
        return from_csr(tokens, offsets)

    def put(self, key: str, embeddings: Sequence[np.ndarray], info: dict | None = None,
            extra: Callable[[str], None] | None = None) -> None:
        """Store a list of (n_i, d) arrays under ``key``; ``extra(folder)`` may write more
        files into the entry before it is published."""
        final = self.folder(key)
        tmp = final + f".tmp{os.getpid()}"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        tokens, offsets = to_csr(embeddings)
        np.save(os.path.join(tmp, "tokens.npy"), tokens, allow_pickle=False)
        np.save(os.path.join(tmp, "doc_offsets.npy"), offsets, allow_pickle=False)
        with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
            json.dump(info or {}, f)
        if extra is not None:
            extra(tmp)
        open(os.path.join(tmp, "done"), "w").close()
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)

    def get_or_encode(self, key: str, encode: Callable[[], Sequence[np.ndarray]],
                      info: dict | None = None) -> list[np.ndarray]:
        """Cached embeddings for ``key``, computing and storing them with ``encode()`` first
        when absent."""
        hit = self.get(key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        embeddings = list(encode())
        self.put(key, embeddings, dict(info or {}, encode_seconds=time.perf_counter() - t0))
        return self.get(key)  # type: ignore[return-value]

    def info(self, key: str) -> dict:
        """The info stored with ``key`` (includes ``encode_seconds``), or {}."""
        path = os.path.join(self.folder(key), "info.json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def cache_key(encoder: Any, texts: Sequence[str], source_path: str, kind: str) -> str:
    """Cache key of :func:`encode_cached` / :func:`fit_cached`: (encoder fingerprint, sha256
    of ``source_path``, kind, number and sha256 of the texts). kind: one of ``KINDS``."""
    from ..storage.files import sha256_file

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    text_hash = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    return EmbeddingCache.key(encoder.fingerprint(), sha256_file(source_path),
                              {"kind": kind, "n": len(texts), "texts": text_hash})


def encode_cached(encoder: Any, texts: Sequence[str], source_path: str, kind: str,
                  cache: EmbeddingCache | None = None) -> list[np.ndarray]:
    """``encoder.encode_documents(texts)`` (kind="documents") or ``encode_queries`` (kind=
    "queries"), cached under :func:`cache_key`. Returns (n_i, d) float32 arrays."""
    if kind not in ("documents", "queries"):
        raise ValueError(f"kind must be 'documents' or 'queries'; got {kind!r}")
    cache = cache or EmbeddingCache()
    texts = list(texts)
    key = cache_key(encoder, texts, source_path, kind)
    fn = encoder.encode_documents if kind == "documents" else encoder.encode_queries
    return cache.get_or_encode(key, lambda: fn(texts),
                               {"source": os.path.abspath(source_path), "kind": kind,
                                "encoder": encoder.config()})


def fit_cached(encoder: Any, texts: Sequence[str], source_path: str,
               cache: EmbeddingCache | None = None) -> tuple[Any, list[np.ndarray]]:
    """``encoder.fit_documents(texts)`` cached together with the fitted encoder (its PCA).

    encoder: a ``gingham.text.encoder.Encoder`` not fitted yet. Returns (the fitted encoder,
    (n_i, dim) float32 document arrays): ``encoder`` itself after a fit, or on a cache hit the
    encoder saved in the entry (with ``encoder``'s device, threads, batch size and progress
    setting), whose queries then match the documents exactly as after the fit.
    """
    from ..text.encoder import Encoder

    cache = cache or EmbeddingCache()
    texts = list(texts)
    key = cache_key(encoder, texts, source_path, "fitted documents")
    docs = cache.get(key)
    if docs is None:
        t0 = time.perf_counter()
        fitted = list(encoder.fit_documents(texts))
        info = {"source": os.path.abspath(source_path), "kind": "fitted documents",
                "encoder": encoder.config(), "encode_seconds": time.perf_counter() - t0}
        cache.put(key, fitted, info,
                  extra=lambda folder: encoder.save(os.path.join(folder, ENCODER_DIR)))
        return encoder, cache.get(key)  # type: ignore[return-value]
    loaded = Encoder.load(os.path.join(cache.folder(key), ENCODER_DIR), device=encoder.device,
                          num_threads=encoder.num_threads, batch_size=encoder.batch_size,
                          show_progress=encoder.show_progress)
    return loaded, docs
