"""Parallel build of a sharded index on Ray, resumable after a kill (distributed/spool.py).

Phases: (1) encode: text batches go through Ray Data ``map_batches`` on a pool of encoder
actors, each writing its encoded batch to the spool (batches given as embeddings are spooled
by the driver); (2) codec: trained once on a seeded sample of tokens drawn across the whole
corpus, written beside the manifest; (3) write: one Ray task per shard commits, in batch order,
the part of every batch routed to it (one shard commit per part). Sequence numbers are the
documents' positions in the input, so ties order as in one Index that added the corpus in
input order.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import validate as _validate
from ..engine.csr import token_index
from ..engine.residual import default_n_centroids, train_codec
from . import manifest as mf
from .backends import ensure_ray
from .shard import Shard
from .sharded import ShardedIndex
from .spool import Spool, fingerprint


class _EncodeBatches:
    """Ray Data callable class: encodes whole batches (rows: batch number + docs JSON) and
    writes each to the spool; returns the batch numbers done."""

    def __init__(self, make_encoder: Callable[[], Any], root: str, dim: int, threads: int):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        from ..engine.runtime import set_num_threads
        set_num_threads(threads)
        self.encoder = make_encoder()
        self.spool = Spool(Path(root))
        self.dim = dim

    def __call__(self, batch: dict) -> dict:
        for b, docs_json in zip(batch["batch"].tolist(), batch["docs"].tolist()):
            docs = json.loads(docs_json)
            if self.spool.has_batch(b):
                continue
            tokens, offsets = _validate.embeddings(self.encoder.encode_documents(docs["texts"]),
                                                   len(docs["texts"]), self.dim)
            self.spool.write_batch(b, tokens, offsets, docs)
        return {"batch": batch["batch"]}


def _write_shard(root: str, shard: int, n_batches: int, batch_size: int, base_seq: int,
                 n_shards: int, codec_sha256: str | None, threads: int) -> int:
    """Commit, in batch order, the part of every batch routed to ``shard`` that is not yet
    committed -> number of documents added."""
    spool = Spool(Path(root))
    target = Shard(str(Path(root) / mf.shard_name(shard)), threads)
    added = 0
    try:
        for b in range(n_batches):
            if spool.is_done(b, shard):
                continue
            tokens, offsets, docs = spool.read_batch(b)
            rows = np.flatnonzero(mf.route(docs["ids"], n_shards) == shard)
            ids = [docs["ids"][r] for r in rows]
            if len(rows) and not target.existing(ids[:1]):  # present: committed before a kill
                token_rows, sub = token_index(offsets, rows)
                part = np.asarray(tokens[token_rows])
                meta = None if docs["metadata"] is None else [docs["metadata"][r] for r in rows]
                texts = None if docs["texts"] is None else [docs["texts"][r] for r in rows]
                seqs = (base_seq + b * batch_size + rows).tolist()
                target.add(ids, part, sub, meta, texts, seqs, False, codec_sha256)
                added += len(rows)
            spool.mark_done(b, shard)
    finally:
        target.close()
    return added


def _sample_codec(spool: Spool, n_batches: int, settings: dict) -> dict[str, np.ndarray]:
    """Codec trained on a seeded uniform sample of the tokens of every batch."""
    counts = np.array([int(np.load(spool.batch_folder(b) / "offsets.npy")[-1])
                       for b in range(n_batches)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    total = int(starts[-1])
    n_centroids = settings.get("n_centroids") or default_n_centroids(total)
    n_sample = min(total, n_centroids * int(settings["sample_per_centroid"]))
    picks = np.sort(np.random.default_rng(int(settings["seed"])).choice(total, n_sample,
                                                                         replace=False))
    which = np.searchsorted(starts, picks, side="right") - 1
    parts = []
    for b in np.unique(which).tolist():
        tokens = np.load(spool.batch_folder(b) / "tokens.npy", mmap_mode="r")
        parts.append(np.asarray(tokens[picks[which == b] - starts[b]]))
    sample = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return train_codec(sample, {**settings, "n_centroids": n_centroids}, {})


def build(path: str | os.PathLike, ids: Sequence[str], *, dim: int, n_shards: int,
          embeddings: Sequence[np.ndarray] | tuple | None = None,
          texts: Sequence[str] | None = None, metadata: Sequence[dict] | None = None,
          encoder: Callable[[], Any] | None = None, batch_size: int = 1024,
          n_encoders: int = 1, threads: int = 1, address: str | None = None,
          progress: bool | Callable[[str, int, int], None] = False, keep_spool: bool = False,
          **index_options) -> dict[str, Any]:
    """Build (or resume building) the sharded index at ``path`` from ``ids`` with either
    ``embeddings`` (one (n_i, dim) float array per id, or a CSR pair (tokens (T, dim),
    doc_offsets (n + 1,))) or ``encoder`` (a picklable zero-argument factory of an object with
    ``encode_documents(texts) -> list of (n_i, dim) arrays``, run as ``n_encoders`` Ray Data
    actors over ``texts``). texts / metadata are stored with the documents. index_options as
    ``ShardedIndex.create``. Runs on ``ray.init()`` locally, or on the cluster at address.

    progress: True prints phase lines on stderr; a callable gets (phase, done, total).
    -> {"n_docs", "n_batches", "encoded_batches", "added", "encode_s", "codec_s", "write_s"}.
    """
    ids = _validate.ids_list(ids)
    n = len(ids)
    if not n:
        raise ValueError("ids must hold at least one document")
    if len(set(ids)) != n:
        raise ValueError("ids must be unique")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    if (embeddings is None) == (encoder is None):
        raise ValueError("give exactly one of embeddings= or encoder=")
    if encoder is not None and texts is None:
        raise ValueError("encoder= needs texts=")
    texts = _validate.per_doc(texts, n, "texts", str)
    metadata = _validate.per_doc(metadata, n, "metadata", dict)
    csr = None
    if embeddings is not None:
        csr = (embeddings if isinstance(embeddings, tuple)
               else _validate.embeddings(list(embeddings), len(embeddings), dim))
        if len(csr[1]) != n + 1 or csr[0].ndim != 2 or csr[0].shape[1] != dim:
            raise ValueError(f"embeddings must hold {n} documents of dim {dim}")
    report = _reporter(progress)
    root = Path(path)
    if not mf.is_sharded(root):
        ShardedIndex.create(root, dim, n_shards=n_shards, **index_options).close()
    manifest = mf.read_manifest(root)
    if manifest["n_shards"] != n_shards or manifest["dim"] != dim:
        raise ValueError(f"{root} has {manifest['n_shards']} shards of dim {manifest['dim']}; "
                         f"asked for {n_shards} of dim {dim}")
    n_batches = math.ceil(n / batch_size)
    ray = ensure_ray(address)
    out: dict[str, Any] = {"n_docs": n, "n_batches": n_batches}
    with mf.RootLock(root, 10.0):
        spool = Spool(root)
        state = spool.start({"n_docs": n, "batch_size": batch_size, "dim": dim,
                             "fingerprint": fingerprint(ids),
                             "base_seq": int(manifest["next_seq"])})
        base_seq = int(state["base_seq"])
        if manifest["next_seq"] < base_seq + n:
            manifest["next_seq"] = base_seq + n
            mf.write_manifest(root, manifest)

        def docs_of(b: int) -> dict:
            lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
            return {"ids": ids[lo:hi],
                    "texts": None if texts is None else texts[lo:hi],
                    "metadata": None if metadata is None else metadata[lo:hi]}

        clock = time.perf_counter()
        todo = [b for b in range(n_batches) if not spool.has_batch(b)]
        if csr is not None:
            tokens, offsets = csr
            for i, b in enumerate(todo):
                lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
                t = _validate.float_matrix(tokens[offsets[lo]:offsets[hi]], "embeddings", dim)
                spool.write_batch(b, t, np.asarray(offsets[lo:hi + 1]) - offsets[lo],
                                  docs_of(b))
                report("spool", i + 1, len(todo))
        elif todo:
            import ray.data
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = ray.data.from_items([{"batch": b, "docs": json.dumps(docs_of(b))}
                                      for b in todo])
            ds = ds.map_batches(_EncodeBatches, batch_size=1, concurrency=n_encoders,
                                num_cpus=1, fn_constructor_kwargs={
                                    "make_encoder": encoder, "root": str(root), "dim": dim,
                                    "threads": threads})
            for i, _ in enumerate(ds.iter_rows()):
                report("encode", i + 1, len(todo))
        out["encoded_batches"] = len(todo)
        out["encode_s"] = time.perf_counter() - clock

        clock = time.perf_counter()
        if manifest["storage"] == "residual" and manifest["codec_sha256"] is None:
            codec = _sample_codec(spool, n_batches, manifest["kind_settings"])
            manifest["codec_sha256"] = mf.write_codec(root, codec)
            mf.write_manifest(root, manifest)
        out["codec_s"] = time.perf_counter() - clock

        clock = time.perf_counter()
        task = ray.remote(_write_shard).options(
            num_cpus=1, max_retries=0,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}})
        refs = [task.remote(str(root), s, n_batches, batch_size, base_seq, n_shards,
                            manifest["codec_sha256"], threads) for s in range(n_shards)]
        pending, added = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            report("write", spool.n_done(), n_batches * n_shards)
        added = sum(ray.get(refs))
        out["added"] = added
        out["write_s"] = time.perf_counter() - clock
        if not keep_spool:
            spool.remove()
    return out


def _reporter(progress) -> Callable[[str, int, int], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda phase, done, total: print(f"{phase}: {done}/{total}", file=sys.stderr,
                                                flush=True)
    return lambda phase, done, total: None
