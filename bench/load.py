"""Load test of ``gingham serve`` on loopback: N concurrent clients against a real server process.

    python bench/load.py                      # full run (60 s overload run)
    python bench/load.py --duration 5 --overload-duration 10   # shorter

Builds a seeded synthetic compressed index in a temp folder, then for each scenario starts
``python -m gingham serve`` as a subprocess on 127.0.0.1 and drives it with asyncio httpx
clients (request bodies serialized once up front, in the form ``gingham.Client`` sends:
packed base64 float32 by default, ``--body json`` for nested lists). Each client has its own
connection (its own httpx.AsyncClient): httpcore's shared pool scans every pooled connection
on every request, which made one shared 34-connection pool cost the load generator ~4x more
CPU per request than the server spent answering it. Each run is bounded by a request count and
a time limit. Reports QPS, p50/p95/p99 latency of successful requests, errors, the server's
peak RSS (VmHWM) and the load generator's own event-loop lag (a 10 ms sleep's overshoot:
latency the client process adds by itself); the overload run (tiny queue, many clients)
reports how fast 503 arrives and the server's RSS over time. Numbers are ratios within one run
on a shared machine; the 1-minute load average before and after is printed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import sniffio  # noqa: F401 - without it httpcore re-tries the import on every request
except ImportError:
    print("warning: sniffio is not installed; httpcore's failing import per request slows the "
          "load generator (pip install sniffio)", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, index: str, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Idle OpenMP threads sleep instead of spinning: spinning workers starve the event loop
        # and the other process on a small shared machine (see docs/server.md).
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self.proc = subprocess.Popen([sys.executable, "-m", "gingham", "serve", index,
                                      "--port", str(self.port), "--log-level", "warning",
                                      *options], env=env)

    def wait(self) -> None:
        import httpx
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited")
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class RawConnection:
    """A minimal keep-alive HTTP/1.1 POST client on asyncio streams (``--client raw``): the
    same requests as httpx at a fraction of the load generator's CPU, so on a small machine
    the server gets the cores that httpx would take. Mimics the httpx.AsyncClient calls used
    here (``post(path, content=, headers=)`` -> object with ``status_code``)."""

    class Response:
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code

    def __init__(self, url: str, timeout: float = 60) -> None:
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, content: bytes, headers: dict[str, str]) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
                          f"Content-Length: {len(content)}\r\n\r\n".encode() + content)
        try:
            raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout)
            lines = raw.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as exc:
            await self.aclose()
            raise OSError(f"connection failed: {exc!r}") from None
        return self.Response(int(lines[0].split()[1]))

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def drive(url: str, bodies: list[bytes], clients: int, max_requests: int, duration: float,
                writer_docs: list[bytes] | None = None, sample_rss: int | None = None,
                client_kind: str = "httpx") -> dict:
    """Closed-loop clients: each sends its next request as soon as the previous answered."""
    import httpx
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lat_503: list[float] = []
    errors = 0
    issued = 0
    rss_samples: list[tuple[float, int]] = []
    lags: list[float] = []
    headers = {"content-type": "application/json"}
    # One TLS context for all (unused on http://, but each AsyncClient would otherwise load the
    # CA bundle: ~50 ms of CPU per client).
    tls = ssl.create_default_context()
    https: list = [httpx.AsyncClient(base_url=url, timeout=60, verify=tls)
                   if client_kind == "httpx" else RawConnection(url) for _ in range(clients)]
    https.append(httpx.AsyncClient(base_url=url, timeout=60, verify=tls))  # the writer
    start = time.perf_counter()
    end = start + duration

    try:
        async def client(i: int) -> None:
            nonlocal issued, errors
            http = https[i]
            j = i
            while time.perf_counter() < end and issued < max_requests:
                issued += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/search", content=bodies[j % len(bodies)],
                                        headers=headers)
                    status = r.status_code
                except (httpx.HTTPError, OSError):
                    status = -1
                dt = time.perf_counter() - t0
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(dt)
                elif status == 503:
                    lat_503.append(dt)
                    await asyncio.sleep(0.01)
                else:
                    errors += 1
                j += clients

        async def writer() -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < end and n < len(writer_docs):
                r = await https[-1].post("/documents", content=writer_docs[n], headers=headers)
                if r.status_code != 200:
                    errors += 1
                n += 1
                await asyncio.sleep(0.2)

        async def sampler() -> None:
            while time.perf_counter() < end:
                rss_samples.append((time.perf_counter() - start, rss_kib(sample_rss, "VmRSS")))
                await asyncio.sleep(1.0)

        async def lag_probe() -> None:
            while time.perf_counter() < end and issued < max_requests:
                t0 = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - t0 - 0.01)

        tasks = [client(i) for i in range(clients)] + [lag_probe()]
        if writer_docs:
            tasks.append(writer())
        if sample_rss:
            tasks.append(sampler())
        await asyncio.gather(*tasks)
    finally:
        for http in https:
            await http.aclose()
    elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000.0
    out = {"requests": sum(statuses.values()), "ok": len(latencies), "errors": errors,
           "statuses": statuses, "elapsed_s": elapsed, "qps": len(latencies) / elapsed,
           "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
           "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
           "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None}
    if lags:
        out["client_lag_p50_ms"] = float(np.percentile(lags, 50)) * 1000.0
        out["client_lag_p99_ms"] = float(np.percentile(lags, 99)) * 1000.0
    if lat_503:
        m503 = np.asarray(lat_503) * 1000.0
        out.update({"n_503": len(lat_503), "p50_503_ms": float(np.percentile(m503, 50)),
                    "p99_503_ms": float(np.percentile(m503, 99)), "max_503_ms": float(m503.max())})
    if rss_samples:
        out["rss_mib_samples"] = [(round(t, 1), round(kib / 1024, 1)) for t, kib in rss_samples]
    return out


def probe(url: str, body: bytes, duration: float, interval: float, out) -> None:
    """One extra client in its own process (so the load generator's busy event loop does not
    delay it): a blocking keep-alive connection sending ``body`` every ``interval`` seconds;
    puts [(status, seconds)] on ``out``."""
    import http.client
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    samples = []
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/search", body=body,
                         headers={"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            samples.append((response.status, time.perf_counter() - t0))
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        time.sleep(interval)
    conn.close()
    out.put(samples)


def server_stats(url: str) -> dict:
    import httpx
    return httpx.get(f"{url}/stats", timeout=30).json()["server"]


def run_scenario(index: str, name: str, options: list[str], bodies: list[bytes], args,
                 writer_docs=None, clients=None, duration=None, overload=False) -> dict:
    import multiprocessing
    server = Server(index, *options)
    prober = None
    try:
        server.wait()
        warm = asyncio.run(drive(server.url, bodies, 4, 40, 5.0))  # noqa: F841 - warm-up
        before = server_stats(server.url)
        if overload:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            prober = ctx.Process(target=probe, args=(server.url, bodies[0],
                                                     duration or args.duration, 0.05, queue))
            prober.start()
        cpu0, client_cpu0 = cpu_seconds(server.proc.pid), time.process_time()
        result = asyncio.run(drive(server.url, bodies, clients or args.clients,
                                   args.requests if not overload else 10**9,
                                   duration or args.duration, writer_docs,
                                   sample_rss=server.proc.pid if overload else None,
                                   client_kind=args.client))
        answered = max(1, result["requests"])
        result["server_cpu_ms_per_req"] = 1000.0 * (cpu_seconds(server.proc.pid) - cpu0) / answered
        result["client_cpu_ms_per_req"] = 1000.0 * (time.process_time() - client_cpu0) / answered
        if prober is not None:
            samples = queue.get(timeout=120)
            prober.join(30)
            ms = np.asarray([dt for status, dt in samples if status == 503]) * 1000.0
            result["probe_requests"] = len(samples)
            result["probe_503"] = len(ms)
            if len(ms):
                result["probe_503_p50_ms"] = float(np.percentile(ms, 50))
                result["probe_503_p99_ms"] = float(np.percentile(ms, 99))
                result["probe_503_max_ms"] = float(ms.max())
        after = server_stats(server.url)
        batches = after["batches_run"] - before["batches_run"]
        result["mean_batch"] = (after["requests_batched"] - before["requests_batched"]) / \
            batches if batches else None
        result["peak_rss_mib"] = rss_kib(server.proc.pid, "VmHWM") / 1024
    finally:
        if prober is not None and prober.is_alive():
            prober.terminate()
        server.stop()
    result["scenario"] = name
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--query-tokens", type=int, default=32)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=20000, help="request cap per run")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    p.add_argument("--overload-duration", type=float, default=60.0)
    p.add_argument("--overload-clients", type=int, default=128)
    p.add_argument("--body", choices=["packed", "json"], default="packed",
                   help="how query embeddings are sent: packed base64 float32 (what "
                        "gingham.Client sends; default) or nested JSON lists")
    p.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                   help="load generator's HTTP client: httpx.AsyncClient per simulated client "
                        "(default) or a minimal asyncio-streams HTTP/1.1 client that leaves "
                        "more of a small machine's CPU to the server")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import gingham
    from gingham import _synthetic
    from gingham.client import embedding_json
    docs = _synthetic.clustered_docs(args.docs, dim=args.dim, n_centers=512, seed=0)
    rng = np.random.default_rng(1)
    bodies = []
    for d in rng.integers(0, len(docs), size=256):
        q = docs[d][rng.integers(0, len(docs[d]), size=args.query_tokens)]
        q = np.round(q + 0.03 * rng.standard_normal(q.shape), 5).astype(np.float32)
        bodies.append(json.dumps({"embedding": embedding_json(q, args.body), "k": args.k}).encode())
    load_before = os.getloadavg()
    extra = _synthetic.clustered_docs(400, dim=args.dim, n_centers=512, seed=2)
    writer_docs = [json.dumps({"documents": [
        {"id": f"w{i}_{j}", "embedding": np.round(extra[(5 * i + j) % 400], 5).tolist()}
        for j in range(5)]}).encode() for i in range(400)]

    results = []
    with tempfile.TemporaryDirectory(prefix="gingham-load-") as tmp:
        base = os.path.join(tmp, "index")
        t0 = time.perf_counter()
        idx = gingham.Index.create(base, dim=args.dim, nbits=2)
        idx.add([f"d{i}" for i in range(len(docs))], docs)
        build_s = time.perf_counter() - t0
        del idx
        print(f"index: {args.docs} docs, dim {args.dim}, built in {build_s:.1f}s; queries "
              f"{args.query_tokens}x{args.dim} ({args.body} bodies of ~{len(bodies[0])} "
              f"bytes), k={args.k}; {args.clients} {args.client} clients; {os.cpu_count()} "
              f"CPUs",
              file=sys.stderr)
        off = ["--max-batch", "1", "--batch-window-ms", "0"]
        on = ["--max-batch", "64", "--batch-window-ms", "2"]
        results.append(run_scenario(base, "batching off", off, bodies, args))
        results.append(run_scenario(base, "batching on (2 ms, 64)", on, bodies, args))
        import shutil
        wcopy = os.path.join(tmp, "index-w")
        shutil.copytree(base, wcopy)
        results.append(run_scenario(wcopy, "batching on + writer (5 docs / 0.2 s)", on, bodies,
                                    args, writer_docs=writer_docs))
        results.append(run_scenario(base, f"overload: queue 8, {args.overload_clients} clients",
                                    off + ["--max-queue", "8"], bodies, args,
                                    clients=args.overload_clients,
                                    duration=args.overload_duration, overload=True))
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({"load_before": load_before, "load_after": load_after,
                          "body": args.body, "results": results}, indent=2))
        return 0
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/"
          f"{load_after[2]:.2f}; {args.body} bodies, {args.client} clients\n")
    print("| scenario | requests | ok | errors | QPS | p50 ms | p95 ms | p99 ms | p99/p50 "
          "| peak RSS MiB | mean batch | server CPU ms/req | client CPU ms/req "
          "| client lag p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        def f(x):
            return "-" if x is None else f"{x:.1f}"
        ratio = r["p99_ms"] / r["p50_ms"] if r["p50_ms"] else None
        errors = r["errors"] + (0 if "n_503" in r and r["scenario"].startswith("overload")
                                else r["statuses"].get(503, 0))
        print(f"| {r['scenario']} | {r['requests']} | {r['ok']} | {errors} | {r['qps']:.1f} | "
              f"{f(r['p50_ms'])} | {f(r['p95_ms'])} | {f(r['p99_ms'])} | {f(ratio)} | "
              f"{r['peak_rss_mib']:.0f} | {f(r.get('mean_batch'))} | "
              f"{r['server_cpu_ms_per_req']:.2f} | {r['client_cpu_ms_per_req']:.2f} | "
              f"{f(r.get('client_lag_p99_ms'))} |")
    off_qps, on_qps = results[0]["qps"], results[1]["qps"]
    print(f"\nmicro-batching throughput: {on_qps / off_qps:.2f}x one-request-at-a-time")
    ov = results[-1]
    if "n_503" in ov:
        print(f"overload: {ov['n_503']} answers 503, latency p50 {ov['p50_503_ms']:.1f} ms, "
              f"p99 {ov['p99_503_ms']:.1f} ms, max {ov['max_503_ms']:.1f} ms; "
              f"{ov['ok']} answered 200 (measured by the {args.overload_clients} clients)")
    if ov.get("probe_503"):
        print(f"overload, one probe client in its own process every 50 ms: "
              f"{ov['probe_503']}/{ov['probe_requests']} answered 503, latency p50 "
              f"{ov['probe_503_p50_ms']:.1f} ms, p99 {ov['probe_503_p99_ms']:.1f} ms, max "
              f"{ov['probe_503_max_ms']:.1f} ms")
    samples = ov.get("rss_mib_samples", [])
    if samples:
        print(f"overload RSS (MiB) over {ov['elapsed_s']:.0f}s: first {samples[0][1]}, "
              f"max {max(s[1] for s in samples)}, last {samples[-1][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
