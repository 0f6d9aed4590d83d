"""Sharded index on Ray vs one Index: build throughput, search latency, batch QPS, fan-out
overhead, PLAID agreement, and a scaling model for 10M / 100M documents.

    python bench/distributed.py                      # 100,000 documents, 1 / 2 / 4 shards
    python bench/distributed.py --docs 20000 --shards 1 2

Corpus: gingham._synthetic.clustered_corpus (d = 128, --min-len..--max-len tokens per
document), residual nbits 2 with --centroids centroids (fixed so every build trains the same
codec size). One Index is built with Index.add (the baseline); each sharded index with
gingham.distributed.build (Ray tasks, one per shard, on a local ray.init(num_cpus=cores)); the
build's codec is trained once on a sample across the corpus, and the baseline used for the
equality check holds the same documents with that codec. Searches: --queries single queries
(32 tokens, k = 10, PLAID defaults and exact) through the Ray actor backend (one actor per
shard, 1 OpenMP thread each); fan-out overhead per query = end-to-end wall time minus the
slowest shard's own search time (return_stats: a shard's Index.search wall time, or with PLAID
over several shards the sum of its time in the two phases, distributed/plaid.py). A bare Ray
round trip (a no-op call on as many actors) is measured beside it. Results go to stdout and
to docs/distributed.md (section "bench").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gingham  # noqa: E402
from _report import run_header, write_section  # noqa: E402
from gingham import _synthetic as syn  # noqa: E402
from gingham.distributed import ShardedIndex, build  # noqa: E402
from gingham.distributed.shard import add_with_codec  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def time_queries(search, queries):
    """Per-query wall seconds and the stats of each call."""
    walls, stats = [], []
    for q in queries:
        t = time.perf_counter()
        _, st = search(q)
        walls.append(time.perf_counter() - t)
        stats.append(st)
    return walls, stats


def bare_round_trip(n_actors: int, query: np.ndarray, n_calls: int = 100) -> list[float]:
    """Wall seconds of ray.get over one no-op call per actor (a query in, a small answer
    out): what one fan-out round costs before any search."""
    import ray

    @ray.remote(num_cpus=min(1.0, (os.cpu_count() or 1) / n_actors))
    class Noop:
        def call(self, queries):
            return {"scores": np.zeros(256, np.float32)}

    actors = [Noop.remote() for _ in range(n_actors)]
    ray.get([a.call.remote([query]) for a in actors])
    walls = []
    for _ in range(n_calls):
        t = time.perf_counter()
        ray.get([a.call.remote([query]) for a in actors])
        walls.append(time.perf_counter() - t)
    for a in actors:
        ray.kill(a)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--min-len", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=48)
    ap.add_argument("--centroids", type=int, default=4096)
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--out", default="docs/distributed.md")
    ap.add_argument("--json", default=None, help="also write the measured figures here")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds a shard call may take (exact search of a query chunk)")
    ap.add_argument("--model-from", default=None,
                    help="only rewrite the scaling model from figures saved with --json")
    args = ap.parse_args()
    if args.model_from:
        write_section(args.out, "model", scaling_model(json.loads(Path(args.model_from)
                                                                  .read_text())),
                      title="# Scale-out on Ray")
        return
    load0 = os.getloadavg()
    import ray
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    tokens, offsets = syn.clustered_corpus(args.docs, dim=128, min_len=args.min_len,
                                           max_len=args.max_len, seed=0)
    ids = [f"doc{i}" for i in range(args.docs)]
    queries = syn.queries_near(tokens, offsets, args.queries, n_tokens=32, seed=7)
    n_tokens = int(offsets[-1])
    work = Path(tempfile.mkdtemp(prefix="gingham-dist-"))
    opts = {"n_centroids": args.centroids}
    lines = []
    try:
        # -- the baseline: one Index, one process ---------------------------------------
        t = time.perf_counter()
        single = gingham.Index.create(work / "single", 128, **opts)
        for lo in range(0, args.docs, args.batch_size):
            hi = min(args.docs, lo + args.batch_size)
            single.add(ids[lo:hi], syn.split(tokens[offsets[lo]:offsets[hi]],
                                             offsets[lo:hi + 1] - offsets[lo]))
        single_build = time.perf_counter() - t
        sw, _ = time_queries(lambda q: single.search(q, 10, return_stats=True), queries)
        t = time.perf_counter()
        single.search(queries, 10)
        single_qps = len(queries) / (time.perf_counter() - t)
        single.close()
        rows = [("one Index", args.docs / single_build, pct(sw, 50), pct(sw, 99), single_qps,
                 float("nan"), float("nan"), 1.0, 1.0, "-", "-")]
        per_shard = {}
        codec_oracle = None
        for n in args.shards:
            path = work / f"s{n}"
            t = time.perf_counter()
            out = build(path, ids, dim=128, n_shards=n, embeddings=(tokens, offsets),
                        batch_size=args.batch_size, **opts)
            build_s = time.perf_counter() - t
            sh = ShardedIndex.open(path, backend="ray", threads=1, timeout=args.timeout)
            if codec_oracle is None:  # the baseline with the build's codec (same for every n)
                gingham.Index.create(work / "oracle", 128, **opts).close()
                add_with_codec(str(work / "oracle"), ids, tokens, offsets, None, None,
                               sh.codec())
                codec_oracle = gingham.Index.open(work / "oracle")
                oracle_exact = codec_oracle.search(queries, 10, mode="exact")
                oracle_plaid = codec_oracle.search(queries, 10)
            walls, stats = time_queries(lambda q: sh.search(q, 10, return_stats=True),
                                        queries)
            slowest = [max(s["wall_ms"] for s in st["shards"].values()) / 1e3 for st in stats]
            overhead = [w - s for w, s in zip(walls, slowest)]
            t = time.perf_counter()
            plaid = sh.search(queries, 10)
            qps = len(queries) / (time.perf_counter() - t)
            exact = [h for lo in range(0, len(queries), 20)
                     for h in sh.search(queries[lo:lo + 20], 10, mode="exact")]
            same_exact = all([(h.id, round(h.score, 5)) for h in a] ==
                             [(h.id, round(h.score, 5)) for h in b]
                             for a, b in zip(exact, oracle_exact))
            err = max(abs(h.score - g.score) for a, b in zip(exact, oracle_exact)
                      for h, g in zip(a, b))
            plaid_err = max(abs(h.score - g.score) for a, b in zip(plaid, oracle_plaid)
                            for h, g in zip(a, b))
            same_plaid = all([h.id for h in a] == [h.id for h in b]
                             for a, b in zip(plaid, oracle_plaid)) and plaid_err <= 1e-5
            agree = np.mean([len({h.id for h in a} & {h.id for h in b}) / 10
                             for a, b in zip(plaid, oracle_plaid)])
            recall = np.mean([len({h.id for h in a} & {h.id for h in b}) / 10
                              for a, b in zip(plaid, oracle_exact)])
            st = sh.stats()
            sh.close()  # before the no-op actors: the shard actors hold the CPUs they asked for
            noop = bare_round_trip(n, queries[0])
            per_shard[n] = {"build_s": build_s, "write_s": out["write_s"],
                            "codec_s": out["codec_s"], "p50": pct(slowest, 50),
                            "bytes": st["bytes_on_disk"] / n, "docs": args.docs / n,
                            "overhead_p50": pct(overhead, 50), "noop_p50": pct(noop, 50)}
            rows.append((f"{n} shard(s)", args.docs / build_s, pct(walls, 50), pct(walls, 99),
                         qps, pct(overhead, 50), pct(overhead, 99), agree, recall,
                         f"{'yes' if same_exact else 'NO'} (max err {err:.1e})",
                         f"{'yes' if same_plaid else 'NO'} (max err {plaid_err:.1e})"))
            lines.append(f"- {n} shard(s): build {build_s:.1f} s (encode/spool "
                         f"{out['encode_s']:.1f} s, codec {out['codec_s']:.1f} s, write "
                         f"{out['write_s']:.1f} s); slowest shard's own search p50 "
                         f"{pct(slowest, 50):.2f} ms; bare Ray round trip to {n} no-op "
                         f"actor(s) p50 {pct(noop, 50):.2f} ms; "
                         f"{st['bytes_on_disk'] / 2**20:.1f} MiB")
            shutil.rmtree(path)
        plaid_recall_single = np.mean([len({h.id for h in a} & {h.id for h in b}) / 10
                                       for a, b in zip(oracle_plaid, oracle_exact)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()
    table = ["| index | build docs/s | search p50 ms | p99 ms | batch QPS | fan-out overhead "
             "p50 ms | p99 ms | PLAID top-10 overlap with one Index | PLAID recall@10 vs "
             "exact | exact top-10 identical | PLAID top-10 identical |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r[0]} | {r[1]:,.0f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:,.0f} | "
                     f"{r[5]:.2f} | {r[6]:.2f} | {r[7]:.3f} | {r[8]:.3f} | {r[9]} | {r[10]} |")
    text = "\n".join([
        "## Measured", "", run_header(load0), "",
        f"{args.docs:,} documents, {n_tokens:,} tokens (d = 128, {args.min_len}-{args.max_len} "
        f"tokens each), residual nbits 2, {args.centroids} centroids; {args.queries} queries "
        f"of 32 tokens, k = 10. One Index: PLAID recall@10 vs exact "
        f"{plaid_recall_single:.3f}.", "", *table, "", *lines, "",
        "Per-shard figures for the scaling model (largest shard count measured):", "",
        *(f"- {n} shards: {v['docs']:,.0f} docs/shard, {v['bytes'] / 2**20:.1f} MiB/shard, "
          f"slowest shard search p50 {v['p50']:.2f} ms, fan-out overhead p50 "
          f"{v['overhead_p50']:.2f} ms, build {v['build_s']:.1f} s"
          for n, v in per_shard.items())])
    print(text)
    write_section(args.out, "bench", text, title="# Scale-out on Ray")
    measured = {"n_docs": args.docs, "n_tokens": n_tokens, "cores": cores,
                "shards": {str(n): v for n, v in per_shard.items()}}
    if args.json:
        Path(args.json).write_text(json.dumps(measured, indent=1))
    model = scaling_model(measured)
    print(model)
    write_section(args.out, "model", model, title="# Scale-out on Ray")


#: The node the model plans for (an assumption, not a measurement).
NODE_CORES, NODE_RAM_GB, RTT_MS = 16, 64, 0.2


def scaling_model(m: dict) -> str:
    """10M / 100M documents from the measured per-shard figures (docs/distributed.md)."""
    shards = {int(n): v for n, v in m["shards"].items()}
    # Only runs with at most one shard per core measure a shard's own cost; more shards than
    # cores share cores and measure the contention instead.
    own = {n: v for n, v in shards.items() if n <= m["cores"]} or shards
    ms_per_doc = max(v["p50"] / v["docs"] for v in own.values())
    bytes_per_doc = float(np.mean([v["bytes"] / v["docs"] for v in shards.values()]))
    overhead = max(v["overhead_p50"] for v in own.values())
    per_core = min(v["docs"] / v["write_s"] for v in own.values())
    codec_s = float(np.mean([v["codec_s"] for v in shards.values()]))
    tok = m["n_tokens"] / m["n_docs"]
    out = ["## Scaling model", "",
           f"Inputs, from the runs above with at most one shard per core "
           f"({', '.join(str(n) for n in sorted(own))} shard(s)): a shard's own search p50 "
           f"{ms_per_doc * 1e6:.1f} ms per million documents of the shard (the largest ratio "
           f"measured); {bytes_per_doc:,.0f} bytes per document on disk ({tok:.0f} tokens per "
           f"document); fan-out overhead p50 {overhead:.2f} ms (the largest measured); one "
           f"write task commits {per_core:,.0f} documents/s (the smallest measured); codec "
           f"training {codec_s:.1f} s (fixed sample size, so independent of the corpus).", "",
           f"Assumptions: nodes of {NODE_CORES} cores and {NODE_RAM_GB} GB RAM, one shard "
           f"actor per core with 1 OpenMP thread, every shard's files resident in the page "
           f"cache (RAM per node = shards per node x shard bytes, at most 70% of the node); "
           f"{RTT_MS} ms network round trip added between nodes; shard search time linear in "
           "its documents (PLAID's candidate counts grow with the shard; an upper bound for "
           "its IVF stages, so pessimistic); build = write phase spread over every core "
           "(encoding of text not included: it scales with the encoder's own throughput per "
           "core); documents "
           "of the measured length (scale bytes and times by tokens/document otherwise).", "",
           "| documents | nodes | shards | docs/shard | GB/shard | GB RAM/node | expected p50 "
           "ms | build (write) h |", "|---|---|---|---|---|---|---|---|"]
    for total in (10_000_000, 100_000_000):
        for nodes in (1, 2, 4, 8, 16):
            n = nodes * NODE_CORES
            per = total / n
            gb = per * bytes_per_doc / 1e9
            ram = gb * NODE_CORES
            if ram > 0.7 * NODE_RAM_GB:
                continue
            lat = ms_per_doc * per + overhead + (RTT_MS if nodes > 1 else 0.0)
            build_h = (total / (per_core * n) + codec_s) / 3600
            out.append(f"| {total:,} | {nodes} | {n} | {per:,.0f} | {gb:.2f} | {ram:.1f} | "
                       f"{lat:.1f} | {build_h:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
