"""gingham.Client against a real server: bounded retries on 503 after Retry-After, and a
client that needs httpx only."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import gingham
from gingham.client import Overloaded
from gingham.serve.server import create_app
from server_util import build_index, live_server, queue_held_search, random_docs, wait_until


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("client") / "index")
    build_index(path, n_docs=30)
    return path


def test_client_retries_a_503_after_retry_after_and_gets_through(index_path):
    app = create_app(index_path, max_queue=1)
    service = app.state.service
    idx = gingham.Index.open(index_path)
    q = random_docs(np.random.default_rng(3), 1, lo=3, hi=3)[0]
    statuses = []
    service.batcher.pause()
    with live_server(app) as url:
        first, out = queue_held_search(url, service, {"embedding": q.tolist()})

        def on_response(response):
            statuses.append(response.status_code)
            if response.status_code == 503:
                # free the only slot before the Client's retry: resume the held search and
                # wait until it has been answered and released
                service.batcher.resume()
                first.join(30)
                wait_until(lambda: service.searches_in_flight == 0, "the slot to be released")

        with gingham.Client(url, retries=1) as c:
            c._http.event_hooks["response"].append(on_response)
            hits = c.search(q, k=4)
    assert statuses == [503, 200]
    assert out["response"].status_code == 200
    assert [h["id"] for h in hits] == [h.id for h in idx.search(q, k=4)]


def test_client_gives_up_after_its_retries(index_path):
    app = create_app(index_path, max_queue=1)
    service = app.state.service
    q = random_docs(np.random.default_rng(4), 1)[0]
    statuses = []
    service.batcher.pause()
    with live_server(app) as url:
        first, _ = queue_held_search(url, service, {"embedding": q.tolist()})
        with gingham.Client(url, retries=2, max_retry_wait=0) as c, \
                pytest.raises(Overloaded) as info:
            c._http.event_hooks["response"].append(lambda r: statuses.append(r.status_code))
            c.search(q)
        service.batcher.resume()
        first.join(30)
        assert not first.is_alive(), "the held search did not finish after resume()"
    assert statuses == [503, 503, 503]  # the first try and two retries
    assert info.value.status == 503 and info.value.retry_after == 1.0


def test_client_rejects_bad_retry_settings():
    for kwargs in ({"retries": -1}, {"retries": 1.5}, {"connect_retries": -2},
                   {"max_retry_wait": -1.0}):
        with pytest.raises(ValueError):
            gingham.Client("http://127.0.0.1:1", **kwargs)


def test_client_imports_httpx_but_not_the_server():
    code = ("import sys, gingham.client; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'fastapi', 'pydantic', 'starlette', 'uvicorn', 'torch'}), "
            "sorted(m for m in sys.modules if m.startswith('gingham.serve')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[] []"
