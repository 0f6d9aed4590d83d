"""Fusion methods side by side on BEIR folders: nDCG@10 and per-query wins / ties / losses
against the best single method, and the latency of the default hybrid against PLAID.

    python bench/fusion.py FOLDER [FOLDER ...] [--latency] [--halves]

Quality: both retrievers score every document (exact MaxSim over the representation
``Retriever.build`` stores by default, fp32; BM25 over all documents), so every fusion sees
the same candidates: the top 100 of each list. Methods:

    bm25, late            the single lists
    weighted              min-max per list, a missing document imputed 0, alpha 0.5
    rrf                   reciprocal rank, k = 60, missing = absent
    complete-minmax       complete scores over the union, min-max, alpha 0.5
    complete-z            complete scores, z-score, alpha 0.5
    complete-rrf          complete scores, ranks within the union, k = 60
    headroom-weighted     weight = headroom on imputed min-max lists (ablation: no
                          complete scores)
    auto-minmax           complete scores, min-max, weight = headroom (ablation)
    auto-linear           complete scores, z-score, weight = headroom (the previous default)
    auto-null             auto-linear with each side standardized against its corpus null
                          (BM25: every document; MaxSim: the null sample) instead of the union
    auto                  the default (``fusion.auto_fuse``): complete scores, z-score,
                          weight = factor_weight(headroom over the null sample's mean)

--halves also reports each method on the even and the odd queries of every folder. --sweep
prints complete-score z-score fusion at fixed weights alpha = 0.1 .. 0.9 and the mean
weight of the default (to show that no fixed weight holds on every set; nothing is
chosen from it).
--latency builds the compressed Index (nbits=2) and times, query by query and interleaved,
PLAID search (k=100) against PLAID + BM25 search + ``auto_fuse`` (what
``Retriever.search(hybrid=True)`` runs), p50 over 3 rounds, with the p50 of each hybrid stage
(BM25 search, the PLAID search that also scores the listed documents, the fusion).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from gingham.engine.csr import to_csr
from gingham.engine.exact import maxsim_scores
from gingham.eval.cache import EmbeddingCache, encode_cached, fit_cached
from gingham.eval.compare import detect_language
from gingham.eval.metrics import per_query_ndcg, win_tie_loss
from gingham.text import fusion
from gingham.text.beir import load_beir
from gingham.text.bm25 import BM25Index
from gingham.text.encoder import RECOMMENDED_SETTINGS, Encoder

DEPTH = 100
SINGLE = ("bm25", "late")
METHODS = ("bm25", "late", "weighted", "rrf", "complete-minmax", "complete-z", "complete-rrf",
           "headroom-weighted", "auto-minmax", "auto-linear", "auto-null", "auto")


def load(folder: str):
    """(dataset, query texts, query vectors, document vectors, BM25Index)."""
    ds = load_beir(folder)
    _, qtexts = ds.judged_queries
    cache = EmbeddingCache(None)
    enc = Encoder(pca_dim=RECOMMENDED_SETTINGS["pca_dim"],
                  pool_factor=RECOMMENDED_SETTINGS["pool_factor"], show_progress=False)
    enc, docs = fit_cached(enc, ds.doc_texts, ds.corpus_path, cache)
    queries = encode_cached(enc, qtexts, os.path.join(folder, "queries.jsonl"), "queries",
                            cache)
    bm = BM25Index(detect_language(ds.doc_texts))
    bm.add(ds.doc_ids, ds.doc_texts)
    return ds, qtexts, queries, docs, bm


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(-x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    return r


def fuse(method: str, ids: list[str], late: np.ndarray, bm25: np.ndarray, lq: int,
         null: tuple[float, float]) -> list[str]:
    """One query's ranking by ``method``; late / bm25: every document's scores; null: (mean,
    std) of MaxSim over the null sample."""
    dl = np.argsort(-late, kind="stable")[:DEPTH]
    bl = np.argsort(-bm25, kind="stable")[:DEPTH]
    bl = bl[bm25[bl] > 0]
    if method == "late":
        return [ids[i] for i in dl]
    if method == "bm25":
        return [ids[i] for i in bl]
    alpha = fusion.headroom(late[dl[0]], null[0], lq)
    dense = ([ids[i] for i in dl], late[dl])
    sparse = ([ids[i] for i in bl], bm25[bl])
    if method == "weighted":
        return fusion.weighted(dense, sparse, 2 * DEPTH, alpha=0.5)[0]
    if method == "headroom-weighted":
        return fusion.weighted(dense, sparse, 2 * DEPTH, alpha=alpha)[0]
    if method == "rrf":
        return fusion.rrf([dense[0], sparse[0]], 2 * DEPTH)[0]
    union = np.asarray(list(dict.fromkeys([*dl.tolist(), *bl.tolist()])))
    u_ids, d, s = [ids[i] for i in union], late[union], bm25[union]
    if method == "complete-rrf":
        f = 1 / (60 + _ranks(d)) + 1 / (60 + _ranks(s))
        return [u_ids[i] for i in np.argsort(-f, kind="stable")]
    if method == "complete-minmax":
        f = 0.5 * fusion.minmax(d) + 0.5 * fusion.minmax(s)
        return [u_ids[i] for i in np.argsort(-f, kind="stable")]
    if method == "auto-minmax":
        f = alpha * fusion.minmax(d) + (1 - alpha) * fusion.minmax(s)
        return [u_ids[i] for i in np.argsort(-f, kind="stable")]
    if method == "auto-null":
        return fusion.complete_fusion(u_ids, d, s, len(u_ids), alpha=alpha, dense_null=null,
                                      sparse_null=(bm25.mean(), bm25.std()))[0]
    weight = {"complete-z": 0.5, "auto-linear": alpha}.get(method, fusion.factor_weight(alpha))
    return fusion.complete_fusion(u_ids, d, s, len(u_ids), alpha=weight)[0]


def quality(folder: str, halves: bool, sweep: bool) -> None:
    ds, qtexts, queries, docs, bm = load(folder)
    qids, _ = ds.judged_queries
    tokens, offsets = to_csr(docs)
    sample = [ds.doc_ids.index(i) for i in fusion.null_sample(ds.doc_ids)]
    runs = {m: {} for m in METHODS}
    for qid, text, q in zip(qids, qtexts, queries):
        late = maxsim_scores(q, tokens, offsets, check_finite=False).astype(np.float64)
        bm25 = bm._all_scores(text)
        bm25 = np.zeros(len(ds.doc_ids)) if bm25 is None else bm25.astype(np.float64)
        null = (float(late[sample].mean()), float(late[sample].std()))
        for m in METHODS:
            runs[m][qid] = fuse(m, ds.doc_ids, late, bm25, q.shape[0], null)
    per = {m: per_query_ndcg(runs[m], ds.qrels) for m in METHODS}
    if sweep:
        _sweep(folder, ds, qtexts, queries, tokens, offsets, bm, sample)
    parts = [("all", list(per["late"]))]
    if halves:
        parts += [("even", list(per["late"])[0::2]), ("odd", list(per["late"])[1::2])]
    for name, qs in parts:
        sub = {m: {q: per[m][q] for q in qs} for m in METHODS}
        mean = {m: float(np.mean(list(sub[m].values()))) for m in METHODS}
        best = max(SINGLE, key=lambda m: mean[m])
        print(f"\n{folder} ({name}: {len(qs)} queries; {len(ds.doc_ids)} documents); "
              f"best single: {best}")
        print(f"| method | nDCG@10 | W/T/L vs {best} |\n|---|---:|---:|")
        for m in METHODS:
            w, t, ls = win_tie_loss(sub[m], sub[best])
            print(f"| {m} | {mean[m]:.3f} | {w}/{t}/{ls} |")


def _sweep(folder, ds, qtexts, queries, tokens, offsets, bm, sample) -> None:
    qids, _ = ds.judged_queries
    alphas = [round(0.1 * i, 1) for i in range(1, 10)]
    runs: dict[float, dict] = {a: {} for a in alphas}
    weights = []
    for qid, text, q in zip(qids, qtexts, queries):
        late = maxsim_scores(q, tokens, offsets, check_finite=False).astype(np.float64)
        bm25 = bm._all_scores(text)
        bm25 = np.zeros(len(ds.doc_ids)) if bm25 is None else bm25.astype(np.float64)
        dl = np.argsort(-late, kind="stable")[:DEPTH]
        bl = np.argsort(-bm25, kind="stable")[:DEPTH]
        union = np.asarray(list(dict.fromkeys([*dl.tolist(), *bl[bm25[bl] > 0].tolist()])))
        u_ids = [ds.doc_ids[i] for i in union]
        weights.append(fusion.factor_weight(fusion.headroom(late[dl[0]], late[sample].mean(),
                                                            q.shape[0])))
        for a in alphas:
            runs[a][qid] = fusion.complete_fusion(u_ids, late[union], bm25[union], len(u_ids),
                                                  alpha=a)[0]
    cells = " ".join(f"{a}:{np.mean(list(per_query_ndcg(runs[a], ds.qrels).values())):.3f}"
                     for a in alphas)
    print(f"\n{folder} complete-z at fixed alpha: {cells}; mean default weight "
          f"{np.mean(weights):.2f}")


def latency(folder: str, rounds: int = 3) -> None:
    from gingham.engine.index import Index

    ds, qtexts, queries, docs, bm = load(folder)
    with tempfile.TemporaryDirectory(prefix="gingham-bench-") as tmp:
        idx = Index.create(os.path.join(tmp, "index"), dim=int(docs[0].shape[1]), nbits=2,
                           seed=0)
        idx.add(list(ds.doc_ids), list(docs))
        stages = ("plaid", "hybrid", "bm25", "listed_search", "fusion")
        p50: dict[str, list[float]] = {m: [] for m in stages}
        for _ in range(rounds):
            secs: dict[str, list[float]] = {m: [] for m in stages}
            for text, q in zip(qtexts, queries):
                t0 = time.perf_counter()
                idx.search(q, k=DEPTH)
                t1 = time.perf_counter()
                sparse = bm.search(text, DEPTH)[0][0]
                t2 = time.perf_counter()
                hits, scored = idx.search(q, k=DEPTH,
                                          also_score=fusion.hybrid_scored_ids(sparse, bm.ids))
                t3 = time.perf_counter()
                fusion.auto_fuse(idx, bm, text, q, ([h.id for h in hits],
                                                    [h.score for h in hits]), sparse, scored,
                                 DEPTH)
                t4 = time.perf_counter()
                for m, span in zip(stages, (t1 - t0, t4 - t1, t2 - t1, t3 - t2, t4 - t3)):
                    secs[m].append(span)
            for m in p50:
                p50[m].append(1e3 * float(np.median(secs[m])))
        idx.close()
    ms = {m: float(np.median(v)) for m, v in p50.items()}
    print(f"\n{folder}: p50 PLAID {ms['plaid']:.2f} ms, default hybrid {ms['hybrid']:.2f} ms, "
          f"ratio {ms['hybrid'] / ms['plaid']:.2f} (median of {rounds} rounds; load "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")
    print(f"  hybrid stages: BM25 search {ms['bm25']:.3f} ms, PLAID search with the listed "
          f"documents {ms['listed_search']:.3f} ms (+{ms['listed_search'] - ms['plaid']:.3f} "
          f"over PLAID), fusion {ms['fusion']:.3f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--latency", action="store_true")
    p.add_argument("--halves", action="store_true")
    p.add_argument("--sweep", action="store_true")
    a = p.parse_args()
    for folder in a.folders:
        quality(folder, a.halves, a.sweep)
        if a.latency:
            latency(folder)


if __name__ == "__main__":
    main()
