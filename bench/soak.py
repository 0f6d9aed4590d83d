"""Bounded soak of ``gingham serve`` on loopback: concurrent searches, one writer and a stream
of malformed requests against one server process for a fixed time.

    python bench/soak.py                     # 10 minutes
    python bench/soak.py --seconds 120       # shorter

Builds a seeded synthetic fp32 index in a temp folder, starts ``python -m gingham serve`` on
127.0.0.1 only, and runs for ``--seconds``: ``--searchers`` threads POST /search, one writer
thread adds / upserts / deletes documents, one thread sends malformed requests (bad JSON, wrong
dim, NaN, wrong types, huge k, unknown ids, truncated bodies). Reports per-kind status counts,
the number of 5xx (the target is 0: a malformed request must get a 4xx), p50 / p99 search
latency, the server's RSS and the index's segment count over time (VmRSS and /stats every
``--rss-every`` s) and the load average. The server runs with its default ``--max-segments``
(the writer merges the smallest segments when an add leaves more), or ``--max-segments N``.
Exits 1 if any response was a 5xx or a connection failed.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

DIM = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_index(path: Path, n_docs: int, seed: int) -> None:
    import gingham
    rng = np.random.default_rng(seed)
    docs = [rng.standard_normal((int(rng.integers(4, 40)), DIM)).astype(np.float32)
            for _ in range(n_docs)]
    with gingham.Index.create(path, dim=DIM, storage="fp32") as idx:
        idx.add([f"d{i}" for i in range(n_docs)], docs, metadata=[{"i": i} for i in
                                                                  range(n_docs)])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


MALFORMED = [  # (method, path, body bytes or JSON value)
    ("POST", "/search", b"{not json"),
    ("POST", "/search", {"embedding": [[1.0] * (DIM - 1)]}),
    ("POST", "/search", {"embedding": [[float("nan")] * DIM]}),
    ("POST", "/search", {"embedding": "abc"}),
    ("POST", "/search", {"embedding": [[1.0] * DIM], "k": 10 ** 12}),
    ("POST", "/search", {"embedding": [[1.0] * DIM], "k": -1}),
    ("POST", "/search", {"embedding": [[1.0] * DIM], "subset": [1, 2]}),
    ("POST", "/search", {"embedding": [[1.0] * DIM], "where": "1; DROP TABLE documents"}),
    ("POST", "/search", {}),
    ("POST", "/rerank", {"embedding": [[1.0] * DIM], "ids": ["no-such-id"]}),
    ("POST", "/documents", {"documents": [{"id": "", "embedding": [[1.0] * DIM]}]}),
    ("POST", "/documents", {"documents": [{"id": "x", "embedding": [[1e39] * DIM]}]}),
    ("POST", "/documents", b'{"documents": [{"id": "x", "embedding": [[1.0, '),
    ("DELETE", "/documents/no-such-id", None),
    ("GET", "/documents/no-such-id", None),
    ("GET", "/no-such-path", None),
]


class Soak:
    def __init__(self, base: str, seconds: float, seed: int):
        self.base = base
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.status: dict[str, Counter] = {}
        self.latency_ms: list[float] = []
        self.failures: list[str] = []
        self.rng = np.random.default_rng(seed)

    def record(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.status.setdefault(kind, Counter())[status] += 1

    def call(self, client: httpx.Client, kind: str, method: str, path: str, body) -> int:
        content = body if isinstance(body, bytes) else (None if body is None else
                                                         json.dumps(body).encode())
        try:
            r = client.request(method, self.base + path, content=content,
                               headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            self.record(kind, "connection error")
            with self.lock:
                self.failures.append(f"{kind} {method} {path}: {exc!r}")
            return 0
        self.record(kind, r.status_code)
        return r.status_code

    def n_segments(self, client: httpx.Client) -> int | None:
        """The index's segment count from GET /stats (its status counted as kind "stats")."""
        try:
            r = client.get(self.base + "/stats")
        except httpx.HTTPError as exc:
            self.record("stats", "connection error")
            with self.lock:
                self.failures.append(f"stats GET /stats: {exc!r}")
            return None
        self.record("stats", r.status_code)
        return int(r.json()["index"]["n_segments"]) if r.status_code == 200 else None

    def searcher(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < self.deadline:
                q = rng.standard_normal((int(rng.integers(1, 16)), DIM)).round(4).tolist()
                t0 = time.perf_counter()
                status = self.call(client, "search", "POST", "/search",
                                   {"embedding": q, "k": 10, "mode": "exact"})
                if status == 200:
                    with self.lock:
                        self.latency_ms.append((time.perf_counter() - t0) * 1e3)

    def writer(self) -> None:
        rng = np.random.default_rng(1)
        i = 0
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < self.deadline:
                i += 1
                ids = [f"w{i}-{j}" for j in range(4)]
                docs = [{"id": x, "embedding": rng.standard_normal((8, DIM)).round(4).tolist(),
                         "metadata": {"i": i}} for x in ids]
                self.call(client, "write", "POST", "/documents", {"documents": docs})
                if i % 3 == 0:  # replace the previous batch, then drop one of it
                    prev = [{"id": f"w{i - 1}-0", "embedding": [[0.5] * DIM]}]
                    self.call(client, "write", "POST", "/documents",
                              {"documents": prev, "upsert": True})
                    self.call(client, "write", "DELETE", f"/documents/w{i - 1}-1", None)

    def malformed(self) -> None:
        with httpx.Client(timeout=30) as client:
            k = 0
            while time.monotonic() < self.deadline:
                method, path, body = MALFORMED[k % len(MALFORMED)]
                k += 1
                self.call(client, "malformed", method, path, body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="soak time (default 600)")
    ap.add_argument("--searchers", type=int, default=4, help="search threads (default 4)")
    ap.add_argument("--docs", type=int, default=2000, help="documents at start (default 2000)")
    ap.add_argument("--rss-every", type=float, default=10.0, help="RSS sample period, s")
    ap.add_argument("--max-segments", type=int, default=None,
                    help="the server's --max-segments (default: the server's default)")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idx"
        build_index(path, args.docs, seed=0)
        port = free_port()
        extra = [] if args.max_segments is None else ["--max-segments", str(args.max_segments)]
        server = subprocess.Popen([sys.executable, "-m", "gingham", "serve", str(path),
                                   "--host", "127.0.0.1", "--port", str(port),
                                   "--log-level", "warning", *extra])
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            soak = Soak(base, args.seconds, seed=2)
            threads = [threading.Thread(target=soak.searcher, args=(10 + s,))
                       for s in range(args.searchers)]
            threads += [threading.Thread(target=soak.writer),
                        threading.Thread(target=soak.malformed)]
            start = time.monotonic()
            for t in threads:
                t.start()
            rss = []
            with httpx.Client(timeout=30) as client:
                while any(t.is_alive() for t in threads):
                    rss.append((round(time.monotonic() - start), rss_kib(server.pid) // 1024,
                                soak.n_segments(client)))
                    time.sleep(args.rss_every)
                for t in threads:
                    t.join()
                rss.append((round(time.monotonic() - start), rss_kib(server.pid) // 1024,
                            soak.n_segments(client)))
        finally:
            server.terminate()
            server.wait(30)
    n5xx = sum(n for c in soak.status.values() for s, n in c.items()
               if isinstance(s, int) and s >= 500)
    lat = np.array(soak.latency_ms) if soak.latency_ms else np.zeros(1)
    print(json.dumps({"seconds": args.seconds, "status": {k: {str(s): n for s, n in c.items()}
                                                           for k, c in soak.status.items()},
                      "n_5xx": n5xx, "connection_failures": len(soak.failures),
                      "search_p50_ms": round(float(np.percentile(lat, 50)), 2),
                      "search_p99_ms": round(float(np.percentile(lat, 99)), 2),
                      "n_searches_ok": len(soak.latency_ms)}))
    print("server RSS MiB and segments over time (s: MiB/segments): "
          + ", ".join(f"{t}: {m}/{n}" for t, m, n in rss))
    half = [m for t, m, _ in rss if t >= args.seconds / 2]
    if half:
        print(f"RSS over the second half: {min(half)}-{max(half)} MiB; over the run: "
              f"{min(m for _, m, _ in rss)}-{max(m for _, m, _ in rss)} MiB")
    print(f"load average after: {os.getloadavg()}")
    for f in soak.failures[:5]:
        print("failure:", f)
    return 1 if n5xx or soak.failures else 0


if __name__ == "__main__":
    sys.exit(main())
