"""Text on a sharded index: the encoder saved beside the shards (``<index>/encoder``), one
BM25 index over the whole corpus (``<index>/bm25``), a parallel text build (the encoder's PCA
fitted on a sample of the corpus in the driver, the corpus encoded by Ray Data encoder actors),
an in-process build, and ``ShardedRetriever``: ``gingham.Retriever`` over a ShardedIndex (text
search, hybrid fusion, explain, rerank, add, delete).

BM25 is one index over every document, not one per shard: its statistics (document
frequencies, average length) are the corpus's, so its scores, and the hybrid fusion built on
them, are those of one Retriever holding the same documents. It is kept current the
Retriever's way (rewritten after each add / delete, rebuilt at open from the stored texts when
it names another state); the state of a sharded index is the sum of its shards' commit numbers
(``ShardedIndex.stats()["commit"]``), which every commit of any shard increases.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any, Sequence

from ..text.bm25 import BM25Index
from ..text.checks import ids_for, texts_list
from ..text.encoder import RECOMMENDED_SETTINGS, Encoder
from ..text.retriever import ENCODER_DIR, SETTINGS_KEY, Retriever
from . import manifest as mf
from .build import build
from .sharded import ShardedIndex


def text_settings(encoder: Encoder, bm25_language: str | None) -> dict:
    """The Retriever settings every shard records (``Retriever.build``'s)."""
    return {SETTINGS_KEY: {"format_version": 1, "encoder": encoder.config(),
                           "encoder_fingerprint": encoder.fingerprint(),
                           "bm25_language": bm25_language}}


class ShardedRetriever(Retriever):
    """``gingham.Retriever`` over a sharded text index: the same search (dense, hybrid,
    explain), rerank, add and delete, with BM25 over the whole corpus (module docstring)."""

    @classmethod
    def build(cls, path: str | os.PathLike, texts: Sequence[str],
              ids: Sequence[str] | None = None, metadata: Sequence[Any] | None = None,
              model: str | None = None, *, n_shards: int, storage: str = "residual",
              nbits: int = 2, pca_dim: int | None = RECOMMENDED_SETTINGS["pca_dim"],
              pool_factor: float = RECOMMENDED_SETTINGS["pool_factor"],
              bm25_language: str | None = "english", batch_size: int = 32,
              show_progress: bool = False, overwrite: bool = False,
              **backend_options) -> "ShardedRetriever":
        """Encode ``texts`` in this process and write a sharded text index of n_shards shards
        (no Ray needed): the same documents, codec and BM25 as ``Retriever.build`` with these
        options (same defaults). backend_options as ``ShardedIndex.open``."""
        texts = texts_list(texts)
        if not texts:
            raise ValueError("texts must hold at least one document")
        ids = ids_for(texts, ids)
        if bm25_language is not None:
            BM25Index(bm25_language)  # validates the language before any work
        encoder = Encoder(model, pca_dim=pca_dim, pool_factor=pool_factor,
                          batch_size=batch_size, show_progress=show_progress)
        embeddings = encoder.fit_documents(texts)
        index = ShardedIndex.create(path, encoder.dim, n_shards=n_shards, storage=storage,
                                    nbits=nbits, model=encoder.model_name or "all-MiniLM-L6-v2",
                                    settings=text_settings(encoder, bm25_language),
                                    overwrite=overwrite, **backend_options)
        encoder.save(os.path.join(index.path, ENCODER_DIR))
        index.add(ids, embeddings, metadata, texts)
        r = cls(index, encoder, None)
        if bm25_language is not None:
            r.bm25 = BM25Index(bm25_language)
            r.bm25.add(ids, texts)
            r._save_bm25(r.bm25)
        return r

    @classmethod
    def open(cls, path: str | os.PathLike, *, batch_size: int = 32,
             show_progress: bool = False, **backend_options) -> "ShardedRetriever":
        """Open a sharded text index; BM25 is rebuilt from the stored texts when it does not
        match the shards. backend_options as ``ShardedIndex.open``."""
        if not is_text_index(path):
            raise ValueError(f"{path}: a sharded index without an encoder (not built from "
                             "text); search it with embeddings through "
                             "gingham.distributed.ShardedIndex")
        index = ShardedIndex.open(path, **backend_options)
        try:
            encoder = Encoder.load(os.path.join(index.path, ENCODER_DIR),
                                   batch_size=batch_size, show_progress=show_progress)
            r = cls(index, encoder, None)
            r._attach_bm25(((index.settings or {}).get(SETTINGS_KEY) or {}).get("bm25_language"))
        except BaseException:
            index.close()
            raise
        return r


def is_text_index(path: str | os.PathLike) -> bool:
    """True if the sharded index at ``path`` holds its encoder."""
    return (Path(path) / ENCODER_DIR / "encoder.json").is_file()


def build_text(path: str | os.PathLike, texts: Sequence[str], ids: Sequence[str],
               metadata: Sequence[dict] | None = None, *, n_shards: int,
               model: str | None = None, pca_dim: int | None = 128, pool_factor: float = 1.0,
               storage: str = "residual", nbits: int = 2, batch_size: int = 32,
               build_batch: int = 1024, n_encoders: int = 1, fit_sample: int = 2000,
               address: str | None = None, overwrite: bool = False, progress: bool = False,
               bm25_language: str | None = "english") -> dict[str, Any]:
    """Build (or resume) a sharded text index on Ray; -> build()'s summary with bm25_s. The
    encoder (and its PCA, fitted on the first ``fit_sample`` texts spread evenly over the
    corpus) is saved before any document is written, so a resumed build encodes with the same
    one; the corpus-wide BM25 (bm25_language None: none) is written last."""
    root = Path(path)
    enc_dir = root / ENCODER_DIR
    if bm25_language is not None:
        BM25Index(bm25_language)  # validates the language before any work
    if mf.is_sharded(root) and is_text_index(root) and not overwrite:
        encoder = Encoder.load(enc_dir, show_progress=False)
    else:
        encoder = Encoder(model, pca_dim=pca_dim, pool_factor=pool_factor,
                          batch_size=batch_size, show_progress=False)
        if pca_dim is not None:
            step = max(1, len(texts) // max(1, fit_sample))
            encoder.fit_documents(list(texts[::step][:fit_sample]))
        ShardedIndex.create(root, encoder.dim, n_shards=n_shards, storage=storage, nbits=nbits,
                            model=model or "all-MiniLM-L6-v2", overwrite=overwrite,
                            settings=text_settings(encoder, bm25_language)).close()
        encoder.save(enc_dir)
    make = functools.partial(Encoder.load, str(enc_dir), batch_size=batch_size,
                             show_progress=False)
    out = build(root, list(ids), dim=encoder.dim, n_shards=n_shards, texts=list(texts),
                metadata=metadata, encoder=make, batch_size=build_batch,
                n_encoders=n_encoders, address=address, progress=progress)
    clock = time.perf_counter()
    if bm25_language is not None:
        with ShardedRetriever(ShardedIndex.open(root), encoder, None) as r:
            r.bm25 = BM25Index(bm25_language)
            r.bm25.add(list(ids), list(texts))
            r._save_bm25(r.bm25)
    return {**out, "bm25_s": time.perf_counter() - clock}


def search_text(index: ShardedIndex, query: str, k: int = 10, **options) -> list[dict]:
    """Top-k documents of one text query as {"id", "score", "rank", "metadata", "text"};
    options as ShardedIndex.search (mode, where, params, subset)."""
    if not is_text_index(index.path):
        raise ValueError(f"{index.path}: a sharded index without an encoder (not built from "
                         "text); search it with embeddings")
    encoder = Encoder.load(Path(index.path) / ENCODER_DIR, show_progress=False)
    return index.search(encoder.encode_query(query), k, with_documents=True, **options)
