"""Text on a sharded index: the encoder saved beside the shards (``<index>/encoder``), a
parallel text build (the encoder's PCA fitted on a sample of the corpus in the driver, the
corpus encoded by Ray Data encoder actors) and text queries.

Supported on a sharded index: dense search (PLAID / exact) with where / subset filters and
rerank. Not supported: hybrid BM25 fusion and --explain, which need the single-index
Retriever (BM25 statistics are per corpus: per-shard BM25 scores are not comparable).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Sequence

from ..text.encoder import Encoder
from . import manifest as mf
from .build import build
from .sharded import ShardedIndex

ENCODER_DIR = "encoder"


def is_text_index(path: str | os.PathLike) -> bool:
    """True if the sharded index at ``path`` holds its encoder."""
    return (Path(path) / ENCODER_DIR / "encoder.json").is_file()


def build_text(path: str | os.PathLike, texts: Sequence[str], ids: Sequence[str],
               metadata: Sequence[dict] | None = None, *, n_shards: int,
               model: str | None = None, pca_dim: int | None = 128, pool_factor: float = 1.0,
               storage: str = "residual", nbits: int = 2, batch_size: int = 32,
               build_batch: int = 1024, n_encoders: int = 1, fit_sample: int = 2000,
               address: str | None = None, overwrite: bool = False,
               progress: bool = False) -> dict[str, Any]:
    """Build (or resume) a sharded text index; -> build()'s summary. The encoder (and its
    PCA, fitted on the first ``fit_sample`` texts spread evenly over the corpus) is saved
    before any document is written, so a resumed build encodes with the same one."""
    root = Path(path)
    enc_dir = root / ENCODER_DIR
    if mf.is_sharded(root) and is_text_index(root) and not overwrite:
        encoder = Encoder.load(enc_dir, show_progress=False)
    else:
        encoder = Encoder(model, pca_dim=pca_dim, pool_factor=pool_factor,
                          batch_size=batch_size, show_progress=False)
        if pca_dim is not None:
            step = max(1, len(texts) // max(1, fit_sample))
            encoder.fit_documents(list(texts[::step][:fit_sample]))
        ShardedIndex.create(root, encoder.dim, n_shards=n_shards, storage=storage, nbits=nbits,
                            model=model or "all-MiniLM-L6-v2", overwrite=overwrite).close()
        encoder.save(enc_dir)
    make = functools.partial(Encoder.load, str(enc_dir), batch_size=batch_size,
                             show_progress=False)
    return build(root, list(ids), dim=encoder.dim, n_shards=n_shards, texts=list(texts),
                 metadata=metadata, encoder=make, batch_size=build_batch,
                 n_encoders=n_encoders, address=address, progress=progress)


def search_text(index: ShardedIndex, query: str, k: int = 10, **options) -> list[dict]:
    """Top-k documents of one text query as {"id", "score", "rank", "metadata", "text"};
    options as ShardedIndex.search (mode, where, params, subset)."""
    if not is_text_index(index.path):
        raise ValueError(f"{index.path}: a sharded index without an encoder (not built from "
                         "text); search it with embeddings")
    encoder = Encoder.load(Path(index.path) / ENCODER_DIR, show_progress=False)
    return index.search(encoder.encode_query(query), k, with_documents=True, **options)
