"""``gingham eval``: BM25, a bi-encoder, exact and compressed late interaction and hybrid
fusion, compared on one BEIR folder through the public text and engine APIs.

Every late-interaction row uses the representation ``Retriever.build`` stores by default
(``encoder.RECOMMENDED_SETTINGS``: pooling then PCA fitted on the corpus), encoded by
``Encoder.fit_documents`` / ``encode_queries``; the PLAID row searches a real ``gingham.Index``.
The bi-encoder is the mean of the model's token states (``encoder.mean_pool``), i.e. the
sentence-transformers embedding. Encodings are cached (:mod:`gingham.eval.cache`).
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

from ..engine.csr import to_csr
from .cache import EmbeddingCache, default_cache_dir, encode_cached, fit_cached
from .metrics import METRICS, evaluate_run, p50_ms, per_query_ndcg, win_tie_loss

__all__ = ["METHODS", "METHOD_LABELS", "METRICS", "SINGLE_METHODS", "auto_hybrid_query",
           "compare_methods", "default_cache_dir", "detect_language", "evaluate_run",
           "folder_bytes", "fuse_runs", "method_runs", "p50_ms", "run_bm25",
           "run_late_interaction", "run_plaid", "run_single_vector", "with_win_tie_loss"]


# ---------------------------------------------------------------------- method runners
# Each returns (ranked doc ids per query, scores per query, seconds per query); the CLI's
# `gingham eval` and the bench scripts share them.
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
    """Search a :class:`gingham.text.bm25.BM25Index` one query at a time."""
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
METHODS = ("bm25", "bi-encoder", "exact", "plaid", "hybrid", "hybrid-weighted", "hybrid-rrf")
SINGLE_METHODS = ("bm25", "bi-encoder", "exact", "plaid")
METHOD_LABELS = {"bm25": "BM25", "bi-encoder": "bi-encoder (mean-pooled)",
                 "exact": "late interaction exact", "plaid": "late interaction PLAID",
                 "hybrid": "hybrid (PLAID + BM25) auto",
                 "hybrid-weighted": "hybrid (PLAID + BM25) weighted",
                 "hybrid-rrf": "hybrid (PLAID + BM25) rrf"}
EVAL_DEPTH = 100


def detect_language(texts: Sequence[str]) -> str:
    """"arabic" when most letters of the texts are Arabic, else "english" (BM25 analyser)."""
    sample = "".join(texts[:200])
    letters = [c for c in sample if c.isalpha()]
    arabic = sum(1 for c in letters if "\u0600" <= c <= "\u06ff")
    return "arabic" if letters and arabic / len(letters) > 0.5 else "english"


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {','.join(METHODS)}; got "
                         f"{','.join(methods)}")


def compare_methods(folder: str, methods: Sequence[str] = METHODS, *, split: str = "test",
                    cache_dir: str | None = None, nbits: int = 2, alpha: float | None = None,
                    language: str | None = None, show_progress: bool = True) -> list[dict]:
    """Evaluate ``methods`` on a BEIR folder with the default offline model. Returns one dict
    per method: method, label, ndcg@10, recall@100, mrr@10, p50_ms (search only, one query at a
    time, queries pre-encoded), bytes_per_doc (index bytes / documents: BM25 folder,
    fp32 vectors, fp32 token matrix, PLAID index folder, PLAID + BM25), and vs_best / wins /
    ties / losses: per-query nDCG@10 against the best single method (:func:`with_win_tie_loss`).
    hybrid is the default fusion (``Retriever.search(hybrid=True)``), hybrid-weighted and
    hybrid-rrf the explicit options (alpha: weight of PLAID in hybrid-weighted)."""
    from ..text.beir import load_beir
    from ..text.fusion import DEFAULT_ALPHA

    _check_methods(methods)
    alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
    ds = load_beir(folder, split)
    if not ds.judged_queries[0]:
        raise ValueError(f"{folder}: no query of queries.jsonl has judgments in {split}.tsv")
    runs, sizes = method_runs(ds, methods, cache_dir=cache_dir, nbits=nbits, alpha=alpha,
                              language=language, show_progress=show_progress)
    qids, _ = ds.judged_queries
    rows = []
    for m in methods:
        ranked, _, secs = runs[m]
        run = dict(zip(qids, ranked))
        metrics = evaluate_run(run, ds.qrels)
        label = METHOD_LABELS[m]
        if m == "plaid":
            label += f" nbits={nbits}"
        elif m == "hybrid-weighted":
            label += f" alpha={alpha}"
        rows.append({"method": m, "label": label, **metrics, "p50_ms": p50_ms(secs),
                     "bytes_per_doc": sizes[m], "per_query": per_query_ndcg(run, ds.qrels)})
    return with_win_tie_loss(rows)


def with_win_tie_loss(rows: list[dict]) -> list[dict]:
    """Rows of :func:`compare_methods` (each with "method", "ndcg@10" and "per_query":
    {query_id: nDCG@10}) -> the same rows, "per_query" removed, each with "vs_best" (the single
    method of ``SINGLE_METHODS`` with the highest mean nDCG@10 among the rows; None when no row
    is one) and "wins" / "ties" / "losses": the queries where this method's nDCG@10 is above /
    equal to / below that method's."""
    singles = [r for r in rows if r["method"] in SINGLE_METHODS]
    best = max(singles, key=lambda r: r["ndcg@10"]) if singles else None
    out = []
    for r in rows:
        r = dict(r)
        per = r.pop("per_query")
        wins = ties = losses = None
        if best is not None:
            wins, ties, losses = win_tie_loss(per, best["per_query"])
        out.append({**r, "vs_best": None if best is None else best["method"], "wins": wins,
                    "ties": ties, "losses": losses})
    return out


def method_runs(ds: Any, methods: Sequence[str] = METHODS, *, cache_dir: str | None = None,
                nbits: int = 2, alpha: float = 0.5, language: str | None = None,
                show_progress: bool = True) -> tuple[dict[str, tuple], dict[str, float]]:
    """The runs behind :func:`compare_methods` on a loaded ``BeirDataset`` ``ds``: ({method:
    (ranked ids per judged query, scores per query or None, seconds per query)}, {method:
    index bytes per document}). Runs hold the top ``EVAL_DEPTH`` documents."""
    import tempfile

    from ..text.bm25 import BM25Index
    from ..text.encoder import RECOMMENDED_SETTINGS, Encoder, mean_pool

    _check_methods(methods)
    qids, qtexts = ds.judged_queries
    if not qids:
        raise ValueError(f"{os.path.dirname(ds.corpus_path)}: no query of queries.jsonl has "
                         "judgments in the qrels")
    cache = EmbeddingCache(cache_dir)
    qpath = os.path.join(os.path.dirname(ds.corpus_path), "queries.jsonl")
    runs: dict[str, tuple] = {}
    sizes: dict[str, float] = {}
    n = len(ds.doc_ids)
    if "bm25" in methods or any(m.startswith("hybrid") for m in methods):
        bm = BM25Index(language or detect_language(ds.doc_texts))
        bm.add(ds.doc_ids, ds.doc_texts)
        runs["bm25"] = run_bm25(bm, qtexts, EVAL_DEPTH)
        with tempfile.TemporaryDirectory(prefix="gingham-eval-") as tmp:
            bm.save(tmp)
            sizes["bm25"] = folder_bytes(tmp) / n
    if "bi-encoder" in methods:
        states = Encoder(projection="none", skiplist="none", normalize=False,
                         show_progress=show_progress)
        states_q = encode_cached(states, qtexts, qpath, "queries", cache)
        states_d = encode_cached(states, ds.doc_texts, ds.corpus_path, "documents", cache)
        runs["bi-encoder"] = run_single_vector(ds.doc_ids, mean_pool(states_q),
                                               mean_pool(states_d), EVAL_DEPTH)
        sizes["bi-encoder"] = states_d[0].shape[1] * 4.0
    if any(m in ("exact", "plaid") or m.startswith("hybrid") for m in methods):
        enc = Encoder(pca_dim=RECOMMENDED_SETTINGS["pca_dim"],
                      pool_factor=RECOMMENDED_SETTINGS["pool_factor"],
                      show_progress=show_progress)
        enc, docs = fit_cached(enc, ds.doc_texts, ds.corpus_path, cache)
        queries = encode_cached(enc, qtexts, qpath, "queries", cache)
        if "exact" in methods:
            runs["exact"] = run_late_interaction(ds.doc_ids, queries, docs, EVAL_DEPTH)
            sizes["exact"] = sum(d.nbytes for d in docs) / n
        if any(m == "plaid" or m.startswith("hybrid") for m in methods):
            auto = (bm, qtexts) if "hybrid" in methods else None
            runs["plaid"], sizes["plaid"], hybrid = _plaid_runs(ds.doc_ids, queries, docs,
                                                                nbits, EVAL_DEPTH, auto)
            if hybrid is not None:
                runs["hybrid"] = hybrid
    for m, fusion in (("hybrid-weighted", "weighted"), ("hybrid-rrf", "rrf")):
        if m in methods:
            runs[m] = _fused_run(runs["plaid"], runs["bm25"], fusion, alpha)
    for m in ("hybrid", "hybrid-weighted", "hybrid-rrf"):
        if m in methods:
            sizes[m] = sizes["plaid"] + sizes["bm25"]
    return runs, sizes


def _fused_run(dense: tuple, sparse: tuple, fusion: str, alpha: float) -> tuple:
    """``fuse_runs`` of the PLAID and BM25 runs; seconds per query = both searches plus the
    fusion of that query alone."""
    fused, secs = [], []
    for i in range(len(dense[0])):
        t0 = time.perf_counter()
        fused += fuse_runs(([dense[0][i]], [dense[1][i]]), ([sparse[0][i]], [sparse[1][i]]),
                           fusion=fusion, alpha=alpha, k=EVAL_DEPTH)
        secs.append(dense[2][i] + sparse[2][i] + time.perf_counter() - t0)
    return fused, None, secs


def auto_hybrid_query(index: Any, bm25: Any, text: str, query: np.ndarray,
                      k: int = EVAL_DEPTH) -> tuple[list[str], np.ndarray]:
    """The default hybrid (``fusion.auto_fuse``) of one query, as
    ``Retriever.search(hybrid=True)`` runs it after encoding: the BM25 search, the PLAID search
    that also scores the BM25 hits and the null sample, and the fusion -> (top-k ids, fused
    scores)."""
    from ..text.fusion import auto_fuse, hybrid_scored_ids

    sparse_ids = bm25.search(text, k)[0][0]
    hits, scored = index.search(query, k=k, also_score=hybrid_scored_ids(sparse_ids, bm25.ids))
    return auto_fuse(index, bm25, text, query, ([h.id for h in hits], [h.score for h in hits]),
                     sparse_ids, scored, k)


def run_plaid(doc_ids: Sequence[str], queries: Sequence[np.ndarray], docs: Sequence[np.ndarray],
              nbits: int = 2, k: int = EVAL_DEPTH
              ) -> tuple[tuple[list[list[str]], list[np.ndarray], list[float]], float]:
    """Build a compressed gingham.Index over ``docs`` in a temporary folder and search each
    query (PLAID defaults for k). Returns ((ids, scores, seconds) per query, index bytes per
    document)."""
    run, size, _ = _plaid_runs(doc_ids, queries, docs, nbits, k, None)
    return run, size


def _plaid_runs(doc_ids: Sequence[str], queries: Sequence[np.ndarray],
                docs: Sequence[np.ndarray], nbits: int, k: int, hybrid: tuple | None
                ) -> tuple[tuple, float, tuple | None]:
    """:func:`run_plaid`, and with hybrid = (BM25Index over doc_ids, query texts) also the
    default hybrid over the same Index (else None as the third item). The two are timed query
    by query in turn, so a change of the machine's speed during the run (other jobs, clock
    scaling) weighs on both alike and their latency ratio stays comparable."""
    import tempfile

    from ..engine.index import Index

    with tempfile.TemporaryDirectory(prefix="gingham-eval-") as tmp:
        idx = Index.create(os.path.join(tmp, "index"), dim=int(docs[0].shape[1]), nbits=nbits,
                           seed=0)
        idx.add(list(doc_ids), list(docs))
        ids, scores, secs = [], [], []
        fused: tuple | None = None if hybrid is None else ([], [], [])
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            hits = idx.search(q, k=k)
            secs.append(time.perf_counter() - t0)
            ids.append([h.id for h in hits])
            scores.append(np.asarray([h.score for h in hits], dtype=np.float32))
            if fused is not None:
                t0 = time.perf_counter()
                top, values = auto_hybrid_query(idx, hybrid[0], hybrid[1][i], q, k)
                fused[2].append(time.perf_counter() - t0)
                fused[0].append(top)
                fused[1].append(values)
        run = (ids, scores, secs)
        size = folder_bytes(os.path.join(tmp, "index")) / max(1, len(idx))
        idx.close()
    return run, size, fused


def folder_bytes(path: str) -> int:
    """Total size in bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total
