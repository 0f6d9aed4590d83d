"""Storage-layer benchmark: delete, add-1% vs write-all, open time and resident memory.

    python bench/storage_ops.py [--docs 100000] [--tokens 100] [--bytes-per-token 36]

Builds a store of synthetic segment arrays (codes: n_docs * tokens * bytes_per_token uint8,
like nbits=2 residuals at d=128 plus a centroid id), with JSON metadata per document, in a
temporary folder, and prints one table. Open time and resident memory are measured in a fresh
child process (RSS from /proc/self/status before and after Store.open + snapshot()).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gingham.storage import Store


def _segment(rng, n_docs: int, tokens: int, width: int) -> dict:
    offsets = np.arange(n_docs + 1, dtype=np.int64) * tokens
    return {"codes": rng.integers(0, 256, size=(n_docs * tokens, width), dtype=np.uint8),
            "doc_offsets": offsets}


def _meta(i: int) -> dict:
    return {"lang": ("en", "fr", "de")[i % 3], "year": 1990 + i % 40}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def child_open(path: str) -> None:
    """Run in a fresh process: open + snapshot, report time and RSS delta as JSON."""
    import gc
    gc.collect()
    before = _rss_kib()
    t0 = time.perf_counter()
    store = Store.open(path)
    snap = store.snapshot()
    t_open = time.perf_counter() - t0
    after = _rss_kib()
    t0 = time.perf_counter()
    hits = snap.where("json_extract(metadata, '$.lang') = ?", ["fr"])
    t_where = time.perf_counter() - t0
    t0 = time.perf_counter()
    masks = snap.masks(hits)
    t_masks = time.perf_counter() - t0
    ids = [f"doc-{i}" for i in range(0, len(snap), max(1, len(snap) // 1000))][:1000]
    t0 = time.perf_counter()
    snap.resolve(ids, missing="ignore")
    t_resolve = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap2 = snap.refresh()
    t_refresh = time.perf_counter() - t0
    mapped = sum(a.nbytes for s in snap.segments for a in s.files.arrays.values())
    print(json.dumps({"open_s": t_open, "rss_before_kib": before, "rss_after_kib": after,
                      "where_s": t_where, "where_hits": int(hits.size), "masks_s": t_masks,
                      "resolve_1000_s": t_resolve, "refresh_s": t_refresh,
                      "mapped_bytes": int(mapped), "n_live": len(snap),
                      "n_masks": len(masks)}))
    snap2.close()
    snap.close()
    store.close()


def main() -> None:
    """Build the synthetic store, time the operations, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--bytes-per-token", type=int, default=36)
    ap.add_argument("--child-open", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_open:
        child_open(args.child_open)
        return
    rng = np.random.default_rng(0)
    n, extra = args.docs, max(1, args.docs // 100)
    with tempfile.TemporaryDirectory(dir=os.environ.get("GINGHAM_BENCH_DIR")) as tmp:
        path = Path(tmp) / "idx"
        store = Store.create(path, {"dim": 128, "nbits": 2})
        ids = [f"doc-{i}" for i in range(n)]
        arrays = _segment(rng, n, args.tokens, args.bytes_per_token)
        meta = [_meta(i) for i in range(n)]
        t0 = time.perf_counter()
        store.add(ids, arrays, metadata=meta)
        t_all = time.perf_counter() - t0
        del arrays
        more = _segment(rng, extra, args.tokens, args.bytes_per_token)
        t0 = time.perf_counter()
        store.add([f"new-{i}" for i in range(extra)], more,
                  metadata=[_meta(i) for i in range(extra)])
        t_add = time.perf_counter() - t0
        t_del = []
        for rep in range(5):
            victims = ids[rep * 1000 + 7:(rep + 1) * 1000 + 7]
            t0 = time.perf_counter()
            store.delete(victims)
            t_del.append(time.perf_counter() - t0)
        store.close()
        out = subprocess.run([sys.executable, __file__, "--child-open", str(path)],
                             capture_output=True, text=True, check=True)
        o = json.loads(out.stdout)
        store = Store.open(path)
        t0 = time.perf_counter()
        report = store.verify()
        t_verify = time.perf_counter() - t0
        store.close()
        gib = report["bytes_checked"] / 2**30
    rows = [
        ("documents / tokens per doc / bytes per token", f"{n:,} / {args.tokens} / "
                                                         f"{args.bytes_per_token}"),
        ("write all (one segment, fsync, commit)", f"{t_all:.3f} s"),
        (f"add 1% (+{extra:,} docs, new segment)", f"{t_add:.3f} s  = "
                                                    f"{100 * t_add / t_all:.1f}% of write-all"),
        ("delete 1,000 ids (median of 5)", f"{1000 * statistics.median(t_del):.1f} ms  "
                                           f"(min {1000 * min(t_del):.1f}, "
                                           f"max {1000 * max(t_del):.1f})"),
        ("open + snapshot (fresh process)", f"{1000 * o['open_s']:.1f} ms"),
        ("RSS delta after open + snapshot",
         f"{(o['rss_after_kib'] - o['rss_before_kib']) / 1024:.1f}"
                                            f" MiB (RSS {o['rss_after_kib'] / 1024:.0f} MiB; "
                                            f"{o['mapped_bytes'] / 2**20:.0f} MiB mapped)"),
        ("where lang = ? (live docs)", f"{1000 * o['where_s']:.1f} ms, {o['where_hits']:,} hits"),
        ("masks for those hits", f"{1000 * o['masks_s']:.1f} ms"),
        ("resolve 1,000 external ids", f"{1000 * o['resolve_1000_s']:.1f} ms"),
        ("refresh (no change)", f"{1000 * o['refresh_s']:.1f} ms"),
        ("verify (sha256 of every file + rows)", f"{t_verify:.2f} s for {gib:.2f} GiB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"gingham storage benchmark ({sys.platform}, python {sys.version.split()[0]})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
