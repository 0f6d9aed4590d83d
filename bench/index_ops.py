"""Index-level operations: add 1% vs full rebuild, delete, open, first search.

    python bench/index_ops.py                          # 100,000 documents, residual nbits 2 + fp16
    python bench/index_ops.py --docs 10000 --kinds residual-2

Per storage kind, over the seeded synthetic corpus (gingham._synthetic through
bench/_synthetic.py, d = 128):
- full build: Index.create + add of every document in chunks (k-means and encoding included for
  residual) -- the cost of a rebuild;
- add 1%: one add() of n_docs / 100 new documents to the built index (encoding with the existing
  codec, segment write, fsync, catalog commit); target <= 5% of the full build;
- delete: delete() of 1,000 random ids, --delete-rounds rounds (default 5) of distinct ids, each
  timed from the call to its return (commit included, the deletion visible to this Index's
  searches); target < 50 ms;
- open: in a fresh child process (numpy and gingham already imported), wall time of Index.open
  and the resident memory (VmRSS) it adds, then the wall time and RSS growth of the first search
  (one 32-token query, k = 10) and of a second one.
Results go to stdout and to docs/storage.md (section "index_ops").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gingham
from _report import run_header, write_section
from _synthetic import generate, make_queries

KINDS = {"residual-4": ("residual", 4), "residual-2": ("residual", 2),
         "residual-1": ("residual", 1), "fp32": ("fp32", None), "fp16": ("fp16", None),
         "int8": ("int8", None)}

CHILD = r"""
import json, sys, time
import numpy as np
import gingham

def rss_kib():
    # (VmRSS, RssAnon, RssFile) in KiB: file-backed pages are the memory-mapped index
    got = {}
    for line in open("/proc/self/status"):
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            got[key] = int(line.split()[1])
    return [got.get(k, -1) for k in ("VmRSS", "RssAnon", "RssFile")]


def delta(a, b):
    return [y - x for x, y in zip(a, b)]

path, qfile = sys.argv[1], sys.argv[2]
q = np.load(qfile, allow_pickle=False)
r0 = rss_kib()
t = time.perf_counter()
idx = gingham.Index.open(path)
t_open = time.perf_counter() - t
r1 = rss_kib()
t = time.perf_counter()
idx.search(q[0], k=10)
t_first = time.perf_counter() - t
r2 = rss_kib()
t = time.perf_counter()
idx.search(q[1], k=10)
t_second = time.perf_counter() - t
r3 = rss_kib()
print(json.dumps({"open_s": t_open, "rss_open_kib": delta(r0, r1), "first_search_s": t_first,
                  "rss_first_search_kib": delta(r1, r2), "second_search_s": t_second,
                  "rss_second_search_kib": delta(r2, r3), "rss_before_kib": r0,
                  "n_docs": len(idx)}))
"""


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the report)."""
    print(msg, file=sys.stderr, flush=True)


def drop_page_cache_hint(path: str) -> None:
    """Ask the kernel to drop the index files from the page cache (POSIX_FADV_DONTNEED), so the
    child's first search reads from disk as after a cold start, as far as the kernel allows."""
    for f in Path(path).rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_kind(kind: str, tokens, offsets, n_docs: int, args, work: str, queries) -> dict:
    """Build, add 1%, delete and reopen one storage kind; returns its measurements."""
    storage, nbits = KINDS[kind]
    path = os.path.join(work, f"index-{kind}")
    extra = {} if storage != "residual" else {"nbits": nbits, "n_centroids": args.centroids,
                                              "seed": args.seed}

    def docs(a, b):
        return [np.asarray(tokens[offsets[i]:offsets[i + 1]]) for i in range(a, b)]

    out: dict = {"kind": kind}
    t0 = time.perf_counter()
    idx = gingham.Index.create(path, dim=tokens.shape[1], storage=storage, **extra)
    for a in range(0, n_docs, args.add_chunk):
        b = min(n_docs, a + args.add_chunk)
        idx.add([str(i) for i in range(a, b)], docs(a, b))
    out["build_s"] = time.perf_counter() - t0
    out["n_centroids"] = idx.stats()["n_centroids"]
    log(f"{kind}: full build of {n_docs:,} documents in {out['build_s']:.1f}s")

    n_more = max(1, n_docs // 100)
    more = docs(n_docs, n_docs + n_more)
    t0 = time.perf_counter()
    idx.add([str(i) for i in range(n_docs, n_docs + n_more)], more)
    out["add_s"] = time.perf_counter() - t0
    out["add_docs"] = n_more
    out["add_vs_build"] = out["add_s"] / out["build_s"]
    log(f"{kind}: add {n_more:,} documents in {out['add_s']:.2f}s "
        f"({out['add_vs_build']:.2%} of the build)")

    rng = np.random.default_rng(args.seed + 7)
    victims = rng.permutation(n_docs)[:args.delete_rounds * args.delete]
    out["delete_ms"] = []
    for r in range(args.delete_rounds):
        ids = [str(i) for i in victims[r * args.delete:(r + 1) * args.delete]]
        t0 = time.perf_counter()
        idx.delete(ids)
        out["delete_ms"].append(1000 * (time.perf_counter() - t0))
    log(f"{kind}: delete {args.delete:,} ids: "
        + ", ".join(f"{x:.1f}" for x in out["delete_ms"]) + " ms")
    st = idx.stats()
    out["bytes_on_disk"] = st["bytes_on_disk"]
    out["n_docs_after"] = st["n_docs"]
    out["n_segments"] = st["n_segments"]
    idx.close()
    del idx

    qfile = os.path.join(work, "queries.npy")
    np.save(qfile, np.stack(queries[:2]), allow_pickle=False)
    out["opens"] = []
    for cold in (True, False):
        if cold:
            drop_page_cache_hint(path)
        proc = subprocess.run([sys.executable, "-c", CHILD, path, qfile], capture_output=True,
                              text=True, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["cold_hint"] = cold
        out["opens"].append(res)
        log(f"{kind}: open {1000 * res['open_s']:.1f} ms, +{mib(res['rss_open_kib'])} MiB;"
            f" first search {1000 * res['first_search_s']:.1f} ms "
            f"(+{mib(res['rss_first_search_kib'])} MiB), second "
            f"{1000 * res['second_search_s']:.1f} ms"
            + (" (page cache dropped)" if cold else " (page cache warm)"))
    shutil.rmtree(path, ignore_errors=True)
    return out


def mib(kib: list[int]) -> str:
    """'total (anon + file)' of a (VmRSS, RssAnon, RssFile) KiB triple, in MiB."""
    return f"{kib[0] / 1024:.1f} ({kib[1] / 1024:.1f} + {kib[2] / 1024:.1f})"


def render(report: dict) -> str:
    """The markdown section (table, targets met or missed, notes) of a report."""
    n = report["n_docs"]
    lines = ["## Index operations (bench/index_ops.py)", "", report["header"],
             "", f"{n:,} synthetic documents ({report['n_tokens']:,} tokens, d = 128); "
             + (f"residual with {report['centroids']} centroids (override, as bench/plaid.py)"
                if report["centroids"] else "residual with the default centroid count") + ".",
             "",
             f"| storage | full build s | add 1% ({n // 100:,} docs) s | add / build | "
             f"delete {report['delete']:,} ids ms ({report['delete_rounds']} rounds) | open ms | "
             "RSS after open MiB "
             "(anon + file) | first search ms | RSS first search MiB (anon + file) | "
             "second search ms | on disk MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in report["kinds"]:
        for o in e["opens"]:
            tag = "cold" if o["cold_hint"] else "warm"
            lines.append(
                f"| {e['kind']} ({tag} page cache) | {e['build_s']:.1f} | {e['add_s']:.2f} | "
                f"{e['add_vs_build']:.2%} | "
                + " / ".join(f"{x:.1f}" for x in e["delete_ms"])
                + f" | {1000 * o['open_s']:.1f} | {mib(o['rss_open_kib'])} | "
                f"{1000 * o['first_search_s']:.1f} | {mib(o['rss_first_search_kib'])} | "
                f"{1000 * o['second_search_s']:.1f} | {e['bytes_on_disk'] / 2**20:,.0f} |")
    lines += ["", "Targets: add 1% <= 5% of a full build; delete of 1,000 ids < 50 ms "
              "at 100,000 documents; resident memory after open small.", ""]
    for e in report["kinds"]:
        worst = max(e["delete_ms"])
        lines.append(f"- {e['kind']}: add/build {e['add_vs_build']:.2%} "
                     f"({'met' if e['add_vs_build'] <= 0.05 else 'MISSED'}); delete worst "
                     f"{worst:.1f} ms ({'met' if worst < 50 else 'MISSED'}"
                     + ("" if n >= 100_000 else f", at {n:,} documents") + ")")
    lines += ["", "The full build is that of the base corpus (a rebuild after the add would hold "
              "1% more). Open and searches run in a fresh child process; RSS = VmRSS growth, "
              "split into anonymous memory and file-backed pages (the memory-mapped index "
              "files, which the kernel can drop). "
              "'cold' asked the kernel to drop the index files from the page cache first "
              "(POSIX_FADV_DONTNEED; the corpus generator's pages may still be cached).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the section and write it into --out."""
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--kinds", default="residual-2,fp16")
    p.add_argument("--centroids", type=int, default=8192,
                   help="residual centroids (0 = default count); 8192 as bench/plaid.py at "
                        "100,000 documents")
    p.add_argument("--delete", type=int, default=1000, help="ids per delete() call")
    p.add_argument("--delete-rounds", type=int, default=5, help="delete() calls, distinct ids")
    p.add_argument("--add-chunk", type=int, default=25_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(here, "..", "docs", "storage.md"))
    p.add_argument("--no-out", dest="out", action="store_const", const=None)
    p.add_argument("--section", default="index_ops",
                   help="name of the marked section of --out to (re)write")
    p.add_argument("--workdir")
    args = p.parse_args(argv)
    args.centroids = args.centroids or None
    kinds = [k for k in args.kinds.split(",") if k]
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        p.error(f"unknown kinds {bad}; choose from {', '.join(KINDS)}")
    if args.delete_rounds * args.delete > args.docs:
        p.error("--delete times --delete-rounds must be at most --docs")
    load_start = os.getloadavg()
    work = tempfile.mkdtemp(prefix="gingham-index-ops-", dir=args.workdir)
    report: dict = {"n_docs": args.docs, "delete": args.delete,
                    "delete_rounds": args.delete_rounds, "centroids": args.centroids,
                    "kinds": []}
    try:
        n_more = max(1, args.docs // 100)
        tokens, offsets = generate(args.docs + n_more, 1024, 0.6, args.seed, work)
        report["n_tokens"] = int(offsets[args.docs])
        queries = make_queries(tokens, offsets[:args.docs + 1], 2, args.seed + 1)
        for kind in kinds:
            report["kinds"].append(run_kind(kind, tokens, offsets, args.docs, args, work,
                                            queries))
        del tokens
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["header"] = run_header(load_start)
    text = render(report)
    print(text)
    if args.out:
        write_section(args.out, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
