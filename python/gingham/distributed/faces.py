"""What the CLI and the server ask of a sharded folder: build from text, search by text
(dense, hybrid, explain), info, verify, and the objects ``gingham serve`` serves.

The CLI and the server detect a sharded folder by its manifest (``is_sharded``) and call
these; they take and return plain values so the commands keep one printing path for both
kinds of index.
"""
from __future__ import annotations

import time
from typing import Any

from .manifest import is_sharded
from .sharded import ShardedIndex

__all__ = ["index_texts", "info", "is_sharded", "open_served", "search", "verify"]


def index_texts(path: str, ids: list[str], texts: list[str], metadata: list | None, *,
                n_shards: int, address: str | None, model: str | None, storage: str,
                nbits: int, pca_dim: int | None, pool_factor: float, batch_size: int,
                overwrite: bool, progress: bool,
                bm25_language: str | None = "english") -> dict[str, Any]:
    """Build a sharded text index on Ray -> the report of ``gingham index``."""
    from .text import build_text

    t0 = time.perf_counter()
    out = build_text(path, texts, ids, metadata, n_shards=n_shards, model=model,
                     pca_dim=pca_dim, pool_factor=pool_factor, storage=storage, nbits=nbits,
                     batch_size=batch_size, address=address, overwrite=overwrite,
                     progress=progress, bm25_language=bm25_language)
    total = time.perf_counter() - t0
    return {"index": str(path), "n_docs": out["n_docs"], "n_shards": n_shards,
            "encode_s": out["encode_s"], "engine_s": out["codec_s"] + out["write_s"],
            "bm25_s": out["bm25_s"], "total_s": total,
            "docs_per_s": out["n_docs"] / max(total, 1e-9)}


def search(path: str, query: str, k: int, *, hybrid: Any, explain: bool, where: str | None,
           params: list | None, exact: bool, alpha: float | None = None
           ) -> tuple[list[dict], float, float]:
    """Text search of a sharded text index (as ``Retriever.search``: dense, hybrid with the
    corpus-wide BM25, explain) -> (hits, model load s, latency ms)."""
    from .text import ShardedRetriever

    with ShardedRetriever.open(path) as r:
        t0 = time.perf_counter()
        r.encoder.ready()  # load the model first: the latency below is encoding + search
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        extra = {} if alpha is None else {"alpha": alpha}
        hits = r.search(query, k=k, hybrid=hybrid, where=where, params=params,
                        mode="exact" if exact else "plaid", explain=explain, **extra)
        return hits, load_s, 1000 * (time.perf_counter() - t0)


def open_served(path: str) -> tuple[Any, Any]:
    """What ``gingham serve`` serves for a sharded folder -> (ShardedIndex, ShardedRetriever
    or None): the retriever when the folder holds its encoder (text queries, hybrid)."""
    from .text import ShardedRetriever, is_text_index

    if not is_text_index(path):
        return ShardedIndex.open(path), None
    r = ShardedRetriever.open(path)
    return r.index, r


def info(path: str) -> dict[str, Any]:
    """{"index", "n_docs", "stats", "settings"} of a sharded index."""
    with ShardedIndex.open(path) as idx:
        stats = idx.stats()
        return {"index": idx.path, "n_docs": stats["n_docs"], "stats": stats,
                "settings": idx.settings}


def verify(path: str) -> dict[str, Any]:
    """Full verification -> {"index", "ok", "n_docs", "n_shards"} (raises otherwise)."""
    with ShardedIndex.open(path) as idx:
        summary = idx.verify()
    return {"index": str(path), "ok": True, "n_docs": summary["n_docs"],
            "n_shards": summary["n_shards"]}
