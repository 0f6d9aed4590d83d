"""Helpers for the server tests: a real uvicorn server on 127.0.0.1 in a thread, small indexes."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

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


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.002)


def queue_held_search(url: str, service: Any, body: dict) -> tuple[threading.Thread, dict]:
    """With the service's batcher paused, POST ``body`` to /search from a thread and return
    once the request waits in the batcher -> (the thread, a dict that receives "response")."""
    assert service.batcher.paused, "pause the batcher first"
    before = service.batcher.n_waiting
    out: dict = {}

    def post() -> None:
        import httpx
        out["response"] = httpx.post(f"{url}/search", json=body, timeout=60)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    wait_until(lambda: service.batcher.n_waiting > before, "the search to reach the batcher")
    return thread, out


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
    wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    if not server.started:
        raise RuntimeError("uvicorn exited before it started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
