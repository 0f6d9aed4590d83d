"""What the CLI asks of a sharded folder: build from text, search by text, info, verify.

The CLI detects a sharded folder by its manifest (``is_sharded``) and calls these; they take
and return plain values so the commands keep one printing path for both kinds of index.
"""
from __future__ import annotations

import time
from typing import Any

from .manifest import is_sharded
from .sharded import ShardedIndex

__all__ = ["index_texts", "info", "is_sharded", "search", "verify"]


def index_texts(path: str, ids: list[str], texts: list[str], metadata: list | None, *,
                n_shards: int, address: str | None, model: str | None, storage: str,
                nbits: int, pca_dim: int | None, pool_factor: float, batch_size: int,
                overwrite: bool, progress: bool) -> dict[str, Any]:
    """Build a sharded text index on Ray -> the report of ``gingham index``."""
    from .text import build_text

    t0 = time.perf_counter()
    out = build_text(path, texts, ids, metadata, n_shards=n_shards, model=model,
                     pca_dim=pca_dim, pool_factor=pool_factor, storage=storage, nbits=nbits,
                     batch_size=batch_size, address=address, overwrite=overwrite,
                     progress=progress)
    total = time.perf_counter() - t0
    return {"index": str(path), "n_docs": out["n_docs"], "n_shards": n_shards,
            "encode_s": out["encode_s"], "engine_s": out["codec_s"] + out["write_s"],
            "bm25_s": 0.0, "total_s": total, "docs_per_s": out["n_docs"] / max(total, 1e-9)}


def search(path: str, query: str, k: int, *, hybrid: Any, explain: bool, where: str | None,
           params: list | None, exact: bool) -> tuple[list[dict], float, float]:
    """Text search of a sharded text index -> (hits, model load s, latency ms)."""
    from ..text.encoder import Encoder
    from .text import ENCODER_DIR, is_text_index

    if hybrid:
        raise ValueError("--hybrid is not supported on a sharded index (BM25 is per corpus; "
                         "docs/distributed.md)")
    if explain:
        raise ValueError("--explain is not supported on a sharded index")
    if not is_text_index(path):
        raise ValueError(f"{path}: a sharded index without an encoder (not built from text); "
                         "search it with embeddings through gingham.distributed.ShardedIndex")
    with ShardedIndex.open(path) as idx:
        t0 = time.perf_counter()
        encoder = Encoder.load(f"{path}/{ENCODER_DIR}", show_progress=False)
        _ = encoder.model
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = idx.search(encoder.encode_query(query), k, with_documents=True, where=where,
                          params=params, mode="exact" if exact else "plaid")
        return hits, load_s, 1000 * (time.perf_counter() - t0)


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
