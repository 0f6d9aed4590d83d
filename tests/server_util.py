"""Helpers for the server tests: a real uvicorn server on 127.0.0.1 in a thread, small indexes."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

import gingham

DIM = 16


def random_docs(rng: np.random.Generator, n: int, dim: int = DIM, lo: int = 3, hi: int = 12
                ) -> list[np.ndarray]:
    docs = []
    for _ in range(n):
        t = rng.standard_normal((int(rng.integers(lo, hi + 1)), dim)).astype(np.float32)
        docs.append(t / np.linalg.norm(t, axis=1, keepdims=True))
    return docs


def build_index(path: str, n_docs: int = 60, seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """A small compressed index of random unit tokens; ids d0..d{n-1}, metadata lang/n."""
    rng = np.random.default_rng(seed)
    docs = random_docs(rng, n_docs)
    ids = [f"d{i}" for i in range(n_docs)]
    idx = gingham.Index.create(path, dim=DIM, nbits=2, seed=seed)
    idx.add(ids, docs, [{"lang": "en" if i % 2 else "de", "n": i} for i in range(n_docs)])
    return ids, docs


def hold_batches(service: Any, timeout_s: float) -> tuple[threading.Event, Any]:
    """Make the service's search batches wait (at most timeout_s) until the returned event is
    set, then run as usual, so a test can queue requests behind a running one
    -> (release event, the holding run_batch)."""
    release = threading.Event()
    real = service.batcher._run_batch

    def held(key, items):
        release.wait(timeout_s)
        return real(key, items)

    service.batcher._run_batch = held
    return release, held


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
