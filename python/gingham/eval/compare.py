"""Retrieval evaluation: metrics via pytrec_eval, latency, an embedding cache, method runners.

Runs are ``{query_id: [doc_id, ...]}`` ranked best first. Metrics (means over every judged
query; a judged query with no results scores 0): ``ndcg@10`` (graded gains as in the qrels),
``recall@100`` and ``mrr@10`` with relevance = grade >= 1, all computed by pytrec_eval.

The embedding cache keeps CSR token arrays (``tokens.npy`` float32, ``doc_offsets.npy`` int64)
under ``<cache_dir>/<key>/`` where key = sha256(encoder fingerprint, corpus file sha256,
settings), so a second evaluation of the same corpus skips encoding.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Callable, Sequence

import numpy as np

from ..engine.csr import from_csr, to_csr

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def default_cache_dir() -> str:
    """``$GINGHAM_CACHE`` or ``~/.cache/gingham``."""
    return os.environ.get("GINGHAM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "gingham")


# ---------------------------------------------------------------------- metrics
def _trec_run(run: dict[str, Sequence[str]], depth: int) -> dict[str, dict[str, float]]:
    # Scores from ranks, so pytrec_eval's own tie-breaking can never reorder our ranking.
    out = {}
    for qid, docs in run.items():
        docs = list(docs)[:depth]
        out[qid] = {str(d): float(len(docs) - r) for r, d in enumerate(docs)}
    return out


def evaluate_run(run: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]
                 ) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 of a ranked run against qrels, averaged over the judged
    queries (a judged query missing from the run counts 0). Returns {metric: float}."""
    import pytrec_eval

    if not qrels:
        raise ValueError("qrels must judge at least one query")
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    per_full = full.evaluate(_trec_run(run, 100))
    per_top10 = top10.evaluate(_trec_run(run, 10))
    n = len(qrels)
    return {
        "ndcg@10": sum(per_full.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels) / n,
        "recall@100": sum(per_full.get(q, {}).get("recall_100", 0.0) for q in qrels) / n,
        "mrr@10": sum(per_top10.get(q, {}).get("recip_rank", 0.0) for q in qrels) / n,
    }


def p50_ms(seconds: Sequence[float]) -> float:
    """Median of per-query latencies given in seconds, in milliseconds."""
    if len(seconds) == 0:
        raise ValueError("p50_ms needs at least one latency")
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), 50) * 1e3)


def timed(fn: Callable[[object], object], items: Sequence[object]) -> tuple[list, list[float]]:
    """Call ``fn`` on each item one at a time; returns (results, seconds per call)."""
    results, secs = [], []
    for item in items:
        t0 = time.perf_counter()
        results.append(fn(item))
        secs.append(time.perf_counter() - t0)
    return results, secs


# ---------------------------------------------------------------------- embedding cache
class EmbeddingCache:
    """Token embeddings on disk keyed by (encoder fingerprint, corpus hash, settings)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    @staticmethod
    def key(model_fingerprint: str, corpus_hash: str, settings: dict) -> str:
        """Stable hex key of the three parts."""
        blob = json.dumps([model_fingerprint, corpus_hash, settings], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _dir(self, key: str) -> str:
        return os.path.join(self.cache_dir, key)

    def get(self, key: str) -> list[np.ndarray] | None:
        """Cached embeddings (memory-mapped views) or None."""
        d = self._dir(key)
        if not os.path.exists(os.path.join(d, "done")):
            return None
        tokens = np.load(os.path.join(d, "tokens.npy"), mmap_mode="r", allow_pickle=False)
        offsets = np.load(os.path.join(d, "doc_offsets.npy"), allow_pickle=False)
        return from_csr(tokens, offsets)

    def put(self, key: str, embeddings: Sequence[np.ndarray], info: dict | None = None) -> None:
        """Store embeddings under ``key`` (written to a temp folder, then renamed)."""
        final = self._dir(key)
        tmp = final + f".tmp{os.getpid()}"
        os.makedirs(tmp, exist_ok=True)
        tokens, offsets = to_csr(embeddings)
        np.save(os.path.join(tmp, "tokens.npy"), tokens, allow_pickle=False)
        np.save(os.path.join(tmp, "doc_offsets.npy"), offsets, allow_pickle=False)
        with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
            json.dump(info or {}, f)
        open(os.path.join(tmp, "done"), "w").close()
        if os.path.exists(final):
            import shutil
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
        info = dict(info or {}, encode_seconds=time.perf_counter() - t0)
        self.put(key, embeddings, info)
        return self.get(key)  # type: ignore[return-value]

    def info(self, key: str) -> dict:
        """The info stored with ``key`` (includes ``encode_seconds``), or {}."""
        path = os.path.join(self._dir(key), "info.json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def cache_key(encoder, texts: Sequence[str], source_path: str, kind: str) -> str:
    """Cache key of :func:`encode_cached`: (encoder fingerprint, sha256 of ``source_path``,
    kind, number and sha256 of the texts)."""
    from ..text.beir import file_sha256

    if kind not in ("documents", "queries"):
        raise ValueError(f"kind must be 'documents' or 'queries'; got {kind!r}")
    text_hash = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    return EmbeddingCache.key(encoder.fingerprint(), file_sha256(source_path),
                              {"kind": kind, "n": len(texts), "texts": text_hash})


def encode_cached(encoder, texts: Sequence[str], source_path: str, kind: str,
                  cache: EmbeddingCache | None = None) -> list[np.ndarray]:
    """``encoder.encode_documents(texts)`` (kind="documents") or ``encode_queries`` (kind=
    "queries"), cached under (encoder fingerprint, sha256 of ``source_path``, kind, count)."""
    cache = cache or EmbeddingCache()
    texts = list(texts)
    key = cache_key(encoder, texts, source_path, kind)
    fn = encoder.encode_documents if kind == "documents" else encoder.encode_queries
    return cache.get_or_encode(key, lambda: fn(texts),
                               {"source": os.path.abspath(source_path), "kind": kind,
                                "encoder": encoder.config()})


# ---------------------------------------------------------------------- method runners
# Each returns (ranked doc ids per query, scores per query, seconds per query); the CLI's
# `gingham eval` and bench/text_quality.py share them. The PLAID row is added by the Index.
def run_late_interaction(doc_ids: Sequence[str], queries: Sequence[np.ndarray],
                         docs: Sequence[np.ndarray], k: int = 1000, dtype=np.float32
                         ) -> tuple[list[list[str]], list[np.ndarray], list[float]]:
    """Exact MaxSim (gingham.exact_search) of each (Lq, d) query over all documents."""
    from ..engine.exact import exact_search

    tokens, offsets = to_csr(docs, dtype=dtype)
    ids, scores, secs = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        s, idx = exact_search(q, tokens, offsets, k, check_finite=False)
        secs.append(time.perf_counter() - t0)
        ids.append([doc_ids[i] for i in idx[0]])
        scores.append(s[0])
    return ids, scores, secs


def run_single_vector(doc_ids: Sequence[str], query_vecs: np.ndarray, doc_vecs: np.ndarray,
                      k: int = 1000) -> tuple[list[list[str]], list[np.ndarray], list[float]]:
    """Brute-force dot product of (nq, d) query vectors over (n, d) document vectors; ties by
    lower document index."""
    ids, scores, secs = [], [], []
    kk = min(k, doc_vecs.shape[0])
    for q in query_vecs:
        t0 = time.perf_counter()
        s = doc_vecs @ q
        top = np.argpartition(-s, kk - 1)[:kk]
        top = top[np.lexsort((top, -s[top]))]
        secs.append(time.perf_counter() - t0)
        ids.append([doc_ids[i] for i in top])
        scores.append(s[top])
    return ids, scores, secs


def run_bm25(bm25, query_texts: Sequence[str], k: int = 1000
             ) -> tuple[list[list[str]], list[np.ndarray], list[float]]:
    """Search a :class:`gingham.hybrid.BM25Index` one query at a time."""
    ids, scores, secs = [], [], []
    for q in query_texts:
        t0 = time.perf_counter()
        i, s = bm25.search(q, k)[0]
        secs.append(time.perf_counter() - t0)
        ids.append(i)
        scores.append(s)
    return ids, scores, secs


def fuse_runs(dense: tuple[list[list[str]], list[np.ndarray]],
              sparse: tuple[list[list[str]], list[np.ndarray]], *, fusion: str = "rrf",
              alpha: float = 0.5, k: int = 1000) -> list[list[str]]:
    """Per-query fusion of two runs' (ids, scores): ``fusion="rrf"`` (k = 60) or
    ``"weighted"`` (min-max normalized, alpha on the dense side)."""
    from ..text.fusion import rrf, weighted

    if fusion not in ("rrf", "weighted"):
        raise ValueError(f"fusion must be 'rrf' or 'weighted'; got {fusion!r}")
    out = []
    for di, ds_, si, ss in zip(dense[0], dense[1], sparse[0], sparse[1]):
        if fusion == "rrf":
            out.append(rrf([di, si], k)[0])
        else:
            out.append(weighted((di, ds_), (si, ss), k, alpha=alpha)[0])
    return out


# ---------------------------------------------------------------------- method comparison
# `gingham eval`: one table, a row per method. Every late-interaction row uses the default
# Retriever representation (encoder.RECOMMENDED_SETTINGS), derived from one cached encoding pass
# of the model's token states exactly as the Encoder pipeline computes it (normalize, pool,
# PCA fitted on the pooled corpus tokens); the derived tokens are cached too.
METHODS = ("bm25", "bi-encoder", "exact", "plaid", "hybrid")
METHOD_LABELS = {"bm25": "BM25", "bi-encoder": "bi-encoder (mean-pooled)",
                 "exact": "late interaction exact", "plaid": "late interaction PLAID",
                 "hybrid": "hybrid (PLAID + BM25)"}
EVAL_DEPTH = 100


def detect_language(texts: Sequence[str]) -> str:
    """"arabic" when most letters of the texts are Arabic, else "english" (BM25 analyser)."""
    sample = "".join(texts[:200])
    letters = [c for c in sample if c.isalpha()]
    arabic = sum(1 for c in letters if "\u0600" <= c <= "\u06ff")
    return "arabic" if letters and arabic / len(letters) > 0.5 else "english"


def _derived_tokens(cache: EmbeddingCache, states_key: str, states: Sequence[np.ndarray],
                    pool_factor: float, show_progress: bool) -> list[np.ndarray]:
    from ..text.pca import l2_normalize

    normed = [l2_normalize(np.asarray(s)) for s in states]
    if pool_factor <= 1:
        return normed

    def pool() -> list[np.ndarray]:
        import torch
        from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

        from .._progress import progress
        pooler = HierarchicalTokenPooling(pool_factor=pool_factor)
        return [pooler.pool([torch.from_numpy(np.ascontiguousarray(d))])[0].numpy()
                for d in progress(normed, "pooling", show_progress)]

    key = EmbeddingCache.key(states_key, "derived", {"pool_factor": pool_factor})
    return [np.asarray(d) for d in cache.get_or_encode(key, pool, {"pool_factor": pool_factor})]


def compare_methods(folder: str, methods: Sequence[str] = METHODS, *, split: str = "test",
                    cache_dir: str | None = None, nbits: int = 2, alpha: float | None = None,
                    language: str | None = None, show_progress: bool = True) -> list[dict]:
    """Evaluate ``methods`` on a BEIR folder with the default offline model. Returns one dict
    per method: method, label, ndcg@10, recall@100, mrr@10, p50_ms (search only, one query at a
    time, queries pre-encoded), bytes_per_doc (index bytes / documents: BM25 folder,
    fp32 vectors, fp32 token matrix, PLAID index folder, PLAID + BM25)."""
    import tempfile

    from ..text.beir import load_beir
    from ..text.bm25 import BM25Index
    from ..text.encoder import RECOMMENDED_SETTINGS, Encoder, mean_pool
    from ..text.fusion import DEFAULT_ALPHA
    from ..text.pca import PCAReducer, l2_normalize

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {','.join(METHODS)}; got "
                         f"{','.join(methods)}")
    alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
    ds = load_beir(folder, split)
    qids, qtexts = ds.judged_queries
    if not qids:
        raise ValueError(f"{folder}: no query of queries.jsonl has judgments in {split}.tsv")
    cache = EmbeddingCache(cache_dir)
    need_states = any(m in methods for m in ("bi-encoder", "exact", "plaid", "hybrid"))
    need_bm25 = any(m in methods for m in ("bm25", "hybrid"))
    runs: dict[str, tuple] = {}
    sizes: dict[str, float] = {}
    n = len(ds.doc_ids)
    if need_bm25:
        bm = BM25Index(language or detect_language(ds.doc_texts))
        bm.add(ds.doc_ids, ds.doc_texts)
        runs["bm25"] = run_bm25(bm, qtexts, EVAL_DEPTH)
        with tempfile.TemporaryDirectory(prefix="gingham-eval-") as tmp:
            bm.save(tmp)
            sizes["bm25"] = folder_bytes(tmp) / n
    if need_states:
        enc = Encoder(projection="none", skiplist="none", normalize=False,
                      show_progress=show_progress)
        qpath = os.path.join(folder, "queries.jsonl")
        states_q = [np.asarray(s) for s in encode_cached(enc, qtexts, qpath, "queries", cache)]
        states_d = encode_cached(enc, ds.doc_texts, ds.corpus_path, "documents", cache)
        if "bi-encoder" in methods:
            runs["bi-encoder"] = run_single_vector(ds.doc_ids, mean_pool(states_q),
                                                   mean_pool([np.asarray(s) for s in states_d]),
                                                   EVAL_DEPTH)
            sizes["bi-encoder"] = states_d[0].shape[1] * 4.0
        if any(m in methods for m in ("exact", "plaid", "hybrid")):
            skey = cache_key(enc, ds.doc_texts, ds.corpus_path, "documents")
            docs = _derived_tokens(cache, skey, states_d, RECOMMENDED_SETTINGS["pool_factor"],
                                   show_progress)
            pca = PCAReducer.fit(docs, RECOMMENDED_SETTINGS["pca_dim"])
            docs = pca.apply(docs)
            queries = pca.apply([l2_normalize(s) for s in states_q])
            if "exact" in methods:
                runs["exact"] = run_late_interaction(ds.doc_ids, queries, docs, EVAL_DEPTH)
                sizes["exact"] = sum(d.nbytes for d in docs) / n
            if "plaid" in methods or "hybrid" in methods:
                runs["plaid"], sizes["plaid"] = run_plaid(ds.doc_ids, queries, docs, nbits,
                                                          EVAL_DEPTH)
    if "hybrid" in methods:
        dense, sparse = runs["plaid"], runs["bm25"]
        fused = fuse_runs(dense[:2], sparse[:2], fusion="weighted", alpha=alpha, k=EVAL_DEPTH)
        t_fuse = []
        for i in range(len(qids)):
            t0 = time.perf_counter()
            fuse_runs(([dense[0][i]], [dense[1][i]]), ([sparse[0][i]], [sparse[1][i]]),
                      fusion="weighted", alpha=alpha, k=EVAL_DEPTH)
            t_fuse.append(time.perf_counter() - t0)
        secs = [a + b + c for a, b, c in zip(dense[2], sparse[2], t_fuse)]
        runs["hybrid"] = (fused, None, secs)
        sizes["hybrid"] = sizes["plaid"] + sizes["bm25"]
    rows = []
    for m in methods:
        ranked, _, secs = runs[m]
        metrics = evaluate_run(dict(zip(qids, ranked)), ds.qrels)
        label = METHOD_LABELS[m]
        if m == "plaid":
            label += f" nbits={nbits}"
        elif m == "hybrid":
            label += f" weighted alpha={alpha}"
        rows.append({"method": m, "label": label, **metrics, "p50_ms": p50_ms(secs),
                     "bytes_per_doc": sizes[m]})
    return rows


def run_plaid(doc_ids: Sequence[str], queries: Sequence[np.ndarray], docs: Sequence[np.ndarray],
              nbits: int = 2, k: int = EVAL_DEPTH
              ) -> tuple[tuple[list[list[str]], list[np.ndarray], list[float]], float]:
    """Build a compressed gingham.Index over ``docs`` in a temporary folder and search each
    query (PLAID defaults for k). Returns ((ids, scores, seconds) per query, index bytes per
    document)."""
    import tempfile

    from ..engine.index import Index

    with tempfile.TemporaryDirectory(prefix="gingham-eval-") as tmp:
        idx = Index.create(os.path.join(tmp, "index"), dim=int(docs[0].shape[1]), nbits=nbits,
                           seed=0)
        idx.add(list(doc_ids), list(docs))
        ids, scores, secs = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = idx.search(q, k=k)
            secs.append(time.perf_counter() - t0)
            ids.append([h.id for h in hits])
            scores.append(np.asarray([h.score for h in hits], dtype=np.float32))
        size = folder_bytes(os.path.join(tmp, "index")) / max(1, len(idx))
    return (ids, scores, secs), size


def folder_bytes(path: str) -> int:
    """Total size in bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total
