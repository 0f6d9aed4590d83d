"""Where PLAID's staged search loses recall, on the skewed topical corpus, in one run.

    python bench/plaid_recall.py --workdir /tmp/plaid-recall        # 10,000 docs, nbits 2

Corpus: ``gingham._synthetic.SkewedCorpus`` (d = 128, 4,096 Zipf-popular centers, 12-center
topics, ~80 tokens per document); queries: 24 perturbed tokens of one document plus 8 fresh
ones. The corpus, the exact fp32 ground truth and the index are kept in --workdir and reused
when present (delete the folder to rebuild).

Reported per preset (k = 10 and k = 100 with PLAID's default stage parameters): recall@10 /
recall@100 against exact fp32 MaxSim, mean stage counts, single-query p50 (1 thread), and where
each true top-10 document leaves the pipeline, replayed in numpy from the index's own arrays:
not a candidate / cut by the pruned approximate score to ndocs / cut by the unpruned
approximate score to ndocs / 4 / lost in the final top k (scored from codes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import gingham
from _measure import latency_percentiles, recall_at
from gingham._synthetic import SkewedCorpus

PRESETS = {10: (1, 0.5, 256), 100: (2, 0.45, 1024)}


def corpus_and_truth(args):
    """Tokens (memmap), offsets, queries and exact top-100 ids, cached in the workdir."""
    corpus = SkewedCorpus(args.docs, seed=args.seed)
    tok_path = os.path.join(args.workdir, "tokens.npy")
    truth_path = os.path.join(args.workdir, "truth.npz")
    if os.path.exists(truth_path):
        tokens = np.load(tok_path, mmap_mode="r")
        offsets = np.concatenate([[0], np.cumsum(corpus.lengths())]).astype(np.int64)
    else:
        tokens, offsets = corpus.csr(out=tok_path)
    queries, _ = corpus.queries(args.queries, seed=args.seed + 1)
    if os.path.exists(truth_path):
        truth = np.load(truth_path)["ids"]
    else:
        _, truth = gingham.exact_search(queries, tokens, offsets, 100, check_finite=False)
        np.savez(truth_path, ids=truth)
    return tokens, offsets, queries, truth


def build(args, tokens, offsets) -> tuple[gingham.Index, dict]:
    path = os.path.join(args.workdir, f"index-{args.nbits}-{args.centroids}")
    if os.path.exists(os.path.join(path, "catalog.sqlite")):
        return gingham.Index.open(path), {}
    idx = gingham.Index.create(path, dim=tokens.shape[1], nbits=args.nbits,
                               n_centroids=args.centroids, seed=args.seed)
    n = len(offsets) - 1
    t = time.perf_counter()
    idx.add([str(i) for i in range(n)],
            [np.asarray(tokens[offsets[i]:offsets[i + 1]]) for i in range(n)])
    profile = dict(idx.last_add_profile)
    profile["total_s"] = time.perf_counter() - t
    return idx, profile


def segment_arrays(idx_path):
    """The one segment's codes, doc_offsets and IVF, and the codec's centroids (numpy)."""
    segs = sorted(p for p in os.listdir(os.path.join(idx_path, "segments")))
    if len(segs) != 1:
        raise SystemExit("the replay expects a single-segment index")
    seg = os.path.join(idx_path, "segments", segs[0])
    codec_dir = os.path.join(idx_path, "codec")
    codec = os.path.join(codec_dir, sorted(os.listdir(codec_dir))[0])
    load = lambda folder, name: np.load(os.path.join(folder, name + ".npy"))  # noqa: E731
    return {"codes": load(seg, "codes").astype(np.int64),
            "doc_offsets": load(seg, "doc_offsets"),
            "ivf_offsets": load(seg, "ivf_offsets"), "ivf_doc_ids": load(seg, "ivf_doc_ids"),
            "centroids": load(codec, "centroids").astype(np.float32)}


FLOORS = ("threshold", "zero", "colbert")


def replay_losses(arrays, queries, truth, k, ncells, threshold, ndocs, found):
    """Per floor rule, where each true top-10 document leaves the pipeline (numpy replay of
    plaid.h stages 2-3). A query row whose document has no unpruned token counts as: the
    threshold ('threshold'), 0 ('zero') or -9999 ('colbert', colbert-ai's filter_pids)."""
    codes, offsets = arrays["codes"], arrays["doc_offsets"]
    starts = offsets[:-1]
    stages = ("candidates", "pruned_cut", "unpruned_cut", "final", "kept")
    lost = {f: dict.fromkeys(stages, 0) for f in FLOORS}
    for q, t, f in zip(queries, truth, found):
        cs = q @ arrays["centroids"].T                       # (Lq, C)
        cells = np.unique(np.argsort(-cs, axis=1, kind="stable")[:, :ncells])
        cand = np.unique(np.concatenate([arrays["ivf_doc_ids"][arrays["ivf_offsets"][c]:
                                                                arrays["ivf_offsets"][c + 1]]
                                         for c in cells]))
        keep = cs.max(axis=0) >= threshold
        tok_scores = np.ascontiguousarray(cs[:, codes].T)    # (T, Lq)
        mx_all = np.maximum.reduceat(tok_scores, starts, axis=0)
        tok_scores[~keep[codes]] = -np.inf
        mx_pruned = np.maximum.reduceat(tok_scores, starts, axis=0)
        unpruned = mx_all.sum(axis=1)
        final = {int(x) for x in f[:10]}
        for floor in FLOORS:
            if floor == "threshold":
                approx = np.maximum(mx_pruned, threshold).sum(axis=1)
            else:
                empty = 0.0 if floor == "zero" else -9999.0
                approx = np.where(np.isfinite(mx_pruned), mx_pruned, empty).sum(axis=1)
            stage1 = cand[np.argsort(-approx[cand], kind="stable")[:max(ndocs, k)]]
            stage2 = stage1[np.argsort(-unpruned[stage1], kind="stable")[:max(ndocs // 4, k)]]
            cand_set, s1, s2 = set(cand.tolist()), set(stage1.tolist()), set(stage2.tolist())
            for d in t[:10].tolist():
                stage = ("candidates" if d not in cand_set else "pruned_cut" if d not in s1
                         else "unpruned_cut" if d not in s2
                         else "final" if d not in final else "kept")
                lost[floor][stage] += 1
    return lost


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--centroids", type=int, default=8192)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--latency-queries", type=int, default=50)
    p.add_argument("--replay-queries", type=int, default=30,
                   help="queries replayed in numpy to locate the losses (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", required=True)
    p.add_argument("--json", help="also write the report to this file")
    args = p.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    tokens, offsets, queries, truth = corpus_and_truth(args)
    idx, build_profile = build(args, tokens, offsets)
    st = idx.stats()
    report = {"simd_level": gingham.simd_level(), "n_tokens": int(offsets[-1]),
              "build": build_profile, "bytes_per_token": st["bytes_per_token"], "presets": {}}
    hits = idx.search(queries[:20], k=100, mode="exact")
    report["exact_codes_recall@10"] = recall_at([[int(h.id) for h in r] for r in hits], truth, 10)
    arrays = (segment_arrays(os.path.join(args.workdir, f"index-{args.nbits}-{args.centroids}"))
              if args.replay_queries else None)
    for k, (ncells, threshold, ndocs) in PRESETS.items():
        gingham.set_num_threads(2)
        hits, stats = idx.search(queries, k=k, return_stats=True)
        found = [[int(h.id) for h in r] for r in hits]
        entry = {"recall@10": recall_at(found, truth, 10), "counts": stats["counts_mean"]}
        if k >= 100:
            entry["recall@100"] = recall_at(found, truth, 100)
        gingham.set_num_threads(1)
        [entry["p50_ms_1t"]] = latency_percentiles(lambda q: idx.search(q, k=k),
                                                      queries[:args.latency_queries], (50,))
        if arrays is not None:
            n = args.replay_queries
            entry["lost_top10"] = replay_losses(arrays, queries[:n], truth[:n], k, ncells,
                                                threshold, ndocs, found[:n])
        report["presets"][k] = entry
        print(f"k={k}: {json.dumps(entry)}", file=sys.stderr)
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
