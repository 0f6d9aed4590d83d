"""colbert-ai (0.2.22) on precomputed token embeddings: build a PLAID index and search it.

Runs in the peers environment (torch + colbert-ai + faiss-cpu, never gingham's; see
README.md), as a subprocess of compare.py:

    python colbert_ai.py --work DIR --centroids 8192 --nbits 2 --out DIR/colbert.json

DIR holds tokens.npy (T, dim) float32 (memory-mapped), doc_offsets.npy (n_docs + 1,) int64 and
queries.npy (n_queries, Lq, dim) float32. colbert-ai's own indexer runs unchanged
(CollectionIndexer: sampling of passages, faiss k-means, bucket fit on a held-out sample,
ResidualCodec compression, IndexSaver, IVF) except that its CollectionEncoder is replaced by
one that slices the precomputed embeddings (no checkpoint is loaded) and its partition count
is set to --centroids instead of its 2^floor(log2(16 sqrt(T))). Searching uses
Searcher.dense_search (its PLAID defaults per k) on an IndexScorer, without a query encoder.
Writes build times, index bytes, per-preset latencies and the top-k document numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch


class PrecomputedEncoder:
    """Stands in for colbert's CollectionEncoder: passages are document numbers."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray):
        self.tokens, self.offsets = tokens, offsets

    def encode_passages(self, passages):
        pids = [int(p) for p in passages]
        doclens = [int(self.offsets[p + 1] - self.offsets[p]) for p in pids]
        if not pids:
            return torch.zeros(0, self.tokens.shape[1]), []
        embs = np.concatenate([self.tokens[self.offsets[p]:self.offsets[p + 1]] for p in pids])
        return torch.from_numpy(np.ascontiguousarray(embs, dtype=np.float32)), doclens


def build(index_path: str, tokens, offsets, n_centroids: int, nbits: int, seed: int) -> dict:
    from colbert.data.collection import Collection
    from colbert.indexing.collection_indexer import CollectionIndexer
    from colbert.indexing.index_saver import IndexSaver
    from colbert.infra.config import ColBERTConfig

    os.makedirs(index_path, exist_ok=True)
    config = ColBERTConfig(nbits=nbits, dim=tokens.shape[1], index_path=index_path,
                           doc_maxlen=int(np.diff(offsets).max()))
    indexer = CollectionIndexer.__new__(CollectionIndexer)
    indexer.verbose, indexer.config = 1, config
    indexer.rank, indexer.nranks, indexer.use_gpu = config.rank, config.nranks, False
    indexer.collection = Collection(data=list(range(len(offsets) - 1)))
    indexer.encoder = PrecomputedEncoder(tokens, offsets)
    indexer.saver = IndexSaver(config)
    random.seed(seed)  # colbert samples passages with the random module
    times = {}
    with torch.inference_mode():
        clock = time.perf_counter()
        indexer.setup()
        default_partitions = indexer.num_partitions
        indexer.num_partitions = n_centroids
        indexer._save_plan()
        indexer.train([[None]])
        times["kmeans_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        indexer.index()
        indexer.finalize()
        times["encode_s"] = time.perf_counter() - clock
    times["build_s"] = times["kmeans_s"] + times["encode_s"]
    times["default_partitions"] = default_partitions
    times["kmeans_niters"] = config.kmeans_niters
    return times


class _Searcher:
    """colbert's Searcher without its query encoder (dense_search on given query tensors)."""

    def __init__(self, index_path: str):
        from colbert.modeling.colbert import ColBERT
        from colbert.search.index_storage import IndexScorer

        ColBERT.try_load_torch_extensions(use_gpu=False)  # segmented_maxsim: ColBERT() loads it
        self.index_path = index_path
        self.ranker = IndexScorer(index_path, use_gpu=False, load_index_with_mmap=False)

    def preset(self, k: int):
        """A Searcher whose config holds no ncells/threshold/ndocs, so dense_search applies its
        per-k defaults (it stores them in the config on first use)."""
        from colbert import Searcher
        from colbert.infra.config import ColBERTConfig

        searcher = Searcher.__new__(Searcher)
        searcher.verbose = 0
        searcher.config = ColBERTConfig.load_from_index(self.index_path)
        searcher.config.configure(ncells=None, centroid_score_threshold=None, ndocs=None)
        searcher.ranker = self.ranker
        return lambda q: searcher.dense_search(q, k)


def search(index_path: str, queries: np.ndarray, ks, latency_queries: int) -> dict:
    searcher = _Searcher(index_path)
    out = {}
    tensors = [torch.from_numpy(np.ascontiguousarray(q[None])) for q in queries]
    with torch.inference_mode():
        for k in ks:
            run = searcher.preset(k)
            run(tensors[0])  # warm-up
            ids, times = [], []
            for i, q in enumerate(tensors):
                clock = time.perf_counter()
                pids, _, _ = run(q)
                if i < latency_queries:
                    times.append(1000 * (time.perf_counter() - clock))
                ids.append([int(p) for p in pids])
            out[str(k)] = {"p50_ms": float(np.percentile(times, 50)),
                           "p99_ms": float(np.percentile(times, 99)), "ids": ids}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--centroids", type=int, required=True)
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--ks", default="10,100,1000")
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import faiss
    faiss.omp_set_num_threads(args.threads)
    work = Path(args.work)
    tokens = np.load(work / "tokens.npy", mmap_mode="r")
    offsets = np.load(work / "doc_offsets.npy")
    queries = np.load(work / "queries.npy")
    index_path = str(work / "colbert-index")
    result = {"torch": torch.__version__, "threads": args.threads}
    import colbert
    result["colbert"] = getattr(colbert, "__version__", "0.2.22")
    result["build"] = build(index_path, tokens, offsets, args.centroids, args.nbits, args.seed)
    result["index_bytes"] = sum(f.stat().st_size for f in Path(index_path).rglob("*")
                                if f.is_file())
    result["bytes_per_token"] = result["index_bytes"] / int(offsets[-1])
    result["search"] = search(index_path, queries, [int(k) for k in args.ks.split(",")],
                              args.latency_queries)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
