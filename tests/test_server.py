"""HTTP server: endpoints against a real uvicorn server on 127.0.0.1, checked against the library.

The oracle for search results is ``gingham.Index.search`` on the same folder, called directly.
"""
from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import gingham  # noqa: E402
from gingham.client import AuthError, InvalidRequest, NotFound, Overloaded, RequestTimeout  # noqa: E402
from gingham.serve.server import create_app  # noqa: E402
from gingham.serve.service import ServiceLimits  # noqa: E402
from server_util import (  # noqa: E402
    DIM,
    build_index,
    live_server,
    queue_held_search,
    random_docs,
    wait_until,
)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("server") / "index")
    build_index(path)
    return path


@pytest.fixture(scope="module")
def server(index_path):
    app = create_app(index_path, batch_window_ms=20, max_batch=64,
                     limits=ServiceLimits(max_k=50, max_queries=8, max_query_tokens=32,
                                          max_text_chars=100),
                     max_body_bytes=200_000)
    with live_server(app) as url:
        yield url, app


def queries(n, seed=7):
    return random_docs(np.random.default_rng(seed), n, lo=2, hi=6)


def expect_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def same_hits(got, expected):
    assert [h["id"] for h in got] == [h.id for h in expected]
    np.testing.assert_allclose([h["score"] for h in got], [h.score for h in expected], rtol=1e-6)
    assert [h["rank"] for h in got] == list(range(len(expected)))


# ---- searching ----------------------------------------------------------------------------------

def test_search_one_and_many_match_the_library(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    qs = queries(3)
    with gingham.Client(url) as client:
        one = client.search(qs[0], k=5)
        many = client.search(qs, k=7, mode="exact")
    same_hits(one, idx.search(qs[0], k=5))
    expected = idx.search(qs, k=7, mode="exact")
    assert len(many) == 3
    for got, exp in zip(many, expected):
        same_hits(got, exp)


def test_concurrent_searches_share_batches_and_get_their_own_results(server, index_path):
    url, app = server
    idx = gingham.Index.open(index_path)
    qs = queries(24, seed=11)
    before = app.state.service.batcher.batches_run

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            bodies = [{"embedding": q.tolist(), "k": 4} for q in qs]
            return await asyncio.gather(*(client.post("/search", json=b) for b in bodies))

    responses = asyncio.run(run())
    batches = app.state.service.batcher.batches_run - before
    for q, r in zip(qs, responses):
        assert r.status_code == 200, r.text
        same_hits(r.json()["results"][0], idx.search(q, k=4))
    assert batches < len(qs)  # 24 concurrent requests in a 20 ms window share calls


def test_different_parameters_are_not_mixed(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    qs = queries(6, seed=5)

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(
                client.post("/search", json={"embedding": q.tolist(), "k": 2 + i % 3,
                                             "mode": ("plaid", "exact")[i % 2]})
                for i, q in enumerate(qs)))

    for i, (q, r) in enumerate(zip(qs, asyncio.run(run()))):
        same_hits(r.json()["results"][0],
                  idx.search(q, k=2 + i % 3, mode=("plaid", "exact")[i % 2]))


def test_rerank_matches_the_library(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    q = queries(1, seed=3)[0]
    ids = ["d5", "d1", "d40", "d7"]
    with gingham.Client(url) as client:
        got = client.rerank(q, ids)
    same_hits(got, idx.rerank(q, ids))


# ---- errors and limits ----------------------------------------------------------------------

def test_invalid_input_answers_422_with_a_stable_code(server):
    url, _ = server
    q = queries(1)[0].tolist()
    with httpx.Client(base_url=url) as http:
        post = lambda body: http.post("/search", json=body)  # noqa: E731
        expect_error(post({"embedding": [row[:5] for row in q]}), 422, "invalid_argument")
        expect_error(post({"embedding": q, "k": 0}), 422, "invalid_request")
        expect_error(post({"embedding": q, "k": 51}), 422, "limit_exceeded")
        expect_error(post({"embeddings": [q] * 9}), 422, "limit_exceeded")
        expect_error(post({"embedding": q * 20}), 422, "limit_exceeded")  # > 32 tokens
        expect_error(post({"embedding": q, "query": "x"}), 422, "invalid_argument")
        expect_error(post({}), 422, "invalid_argument")
        expect_error(post({"embedding": q, "bogus": 1}), 422, "invalid_request")
        expect_error(post({"embedding": [[1.0, 2.0], [3.0]]}), 422, "invalid_argument")
        expect_error(post({"embedding": []}), 422, "invalid_argument")
        expect_error(post({"query": "no encoder here"}), 422, "invalid_argument")
        expect_error(post({"embedding": q, "hybrid": True}), 422, "invalid_argument")
        expect_error(post({"embedding": q, "params": [1]}), 422, "invalid_argument")
        expect_error(post({"embedding": q, "where": " "}), 422, "invalid_argument")
        err = expect_error(post({"embedding": q, "where": "no_such_function(metadata)"}), 422,
                           "invalid_argument")
        assert "no_such_function" in err["message"]
        expect_error(post({"embedding": q, "where": "json_extract(metadata, '$.n') > ?",
                           "params": []}), 422, "invalid_argument")  # a parameter too few
        expect_error(http.post("/rerank", json={"embedding": q, "ids": ["d1", "d1"]}), 422,
                     "invalid_argument")
        expect_error(http.post("/rerank", json={"embedding": q, "ids": [""]}), 422,
                     "invalid_argument")
        expect_error(http.post("/documents", json={"documents": [
            {"id": "x", "embedding": q}, {"id": "x", "embedding": q}]}), 422, "invalid_argument")
        nan = json.dumps({"embedding": [[float("nan")] * DIM]})
        err = expect_error(http.post("/search", content=nan,
                                     headers={"content-type": "application/json"}),
                           422, "invalid_argument")
        assert "non-finite" in err["message"]
        expect_error(http.post("/search", content=b"{not json",
                               headers={"content-type": "application/json"}),
                     422, "invalid_request")
        expect_error(http.get("/nope"), 404, "not_found")
        expect_error(http.get("/search"), 405, "method_not_allowed")


def test_body_size_limit_answers_413_before_reading(server):
    url, _ = server
    big = {"embedding": [[0.5] * DIM] * 4000}
    with httpx.Client(base_url=url) as http:
        expect_error(http.post("/search", json=big), 413, "payload_too_large")

        def chunks():  # no Content-Length: the limit is enforced while reading
            data = json.dumps(big).encode()
            for i in range(0, len(data), 8192):
                yield data[i:i + 8192]

        expect_error(http.post("/search", content=chunks(),
                               headers={"content-type": "application/json"}),
                     413, "payload_too_large")
    with gingham.Client(url) as client, pytest.raises(InvalidRequest) as info:
        client.search(np.full((4000, DIM), 0.5, np.float32))
    assert info.value.status == 413 and info.value.code == "payload_too_large"


def test_full_queue_answers_503_while_the_admitted_search_waits(index_path):
    app = create_app(index_path, max_queue=1, request_timeout_s=60)
    service = app.state.service
    idx = gingham.Index.open(index_path)
    q = queries(1)[0]
    service.batcher.pause()
    with live_server(app) as url:
        first, out = queue_held_search(url, service, {"embedding": q.tolist(), "k": 3})
        with httpx.Client(base_url=url) as http:
            r = http.post("/search", json={"embedding": q.tolist()})
        expect_error(r, 503, "overloaded")
        assert r.headers["retry-after"] == "1"
        # the 503 did not wait for the busy search: that one is still held in the batcher
        assert first.is_alive() and "response" not in out
        with gingham.Client(url, retries=0) as c, pytest.raises(Overloaded) as info:
            c.search(q)
        assert info.value.retry_after == 1.0
        service.batcher.resume()
        first.join(30)
        assert not first.is_alive(), "the held search did not finish after resume()"
        assert out["response"].status_code == 200, out["response"].text
        same_hits(out["response"].json()["results"][0], idx.search(q, k=3))
        wait_until(lambda: service.searches_in_flight == 0, "the slot to be released")


def test_a_search_past_the_request_timeout_answers_504(index_path):
    app = create_app(index_path, request_timeout_s=0.2)
    service = app.state.service
    q = queries(1)[0]
    service.batcher.pause()
    with live_server(app) as url, gingham.Client(url, retries=0) as c:
        with pytest.raises(RequestTimeout) as info:
            c.search(q)
        assert info.value.status == 504 and info.value.code == "timeout"
        assert service.batcher.n_waiting == 0  # the timed-out wait left the queue
        service.batcher.resume()
        assert len(c.search(q, k=2)) == 2


# ---- auth -------------------------------------------------------------------------------------

def test_auth_all_endpoints(index_path):
    app = create_app(index_path, api_key="s3cret", auth="all")
    q = queries(1)[0]
    with live_server(app) as url:
        with httpx.Client(base_url=url) as http:
            assert http.get("/health").status_code == 200  # liveness stays open
            r = http.post("/search", json={"embedding": q.tolist()})
            expect_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
            expect_error(http.get("/stats"), 401, "unauthorized")
            expect_error(http.get("/metrics"), 401, "unauthorized")
            expect_error(http.get("/stats", headers={"Authorization": "Bearer wrong"}),
                         401, "unauthorized")
            expect_error(http.get("/stats", headers={"Authorization": "Basic s3cret"}),
                         401, "unauthorized")
        with gingham.Client(url, api_key="nope") as c, pytest.raises(AuthError):
            c.search(q)
        with gingham.Client(url, api_key="s3cret") as c:
            assert len(c.search(q, k=3)) == 3
            assert c.stats()["index"]["n_docs"] == 60


def test_auth_writes_only(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=20)
    app = create_app(path, api_key="s3cret", auth="writes")
    doc = random_docs(np.random.default_rng(1), 1)[0]
    with live_server(app) as url:
        with gingham.Client(url) as c:
            assert len(c.search(queries(1)[0], k=3)) == 3
            with pytest.raises(AuthError):
                c.add(["new"], [doc])
        with gingham.Client(url, api_key="s3cret") as c:
            assert c.add(["new"], [doc])["n_docs"] == 21


def test_create_app_rejects_bad_settings(index_path, tmp_path):
    with pytest.raises(ValueError, match="auth"):
        create_app(index_path, auth="reads")
    with pytest.raises(ValueError, match="api_key"):
        create_app(index_path, api_key="")
    with pytest.raises(FileNotFoundError):
        create_app(str(tmp_path / "missing"))


# ---- writes -----------------------------------------------------------------------------------

def test_add_then_search_finds_new_documents(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=30)
    app = create_app(path)
    docs = random_docs(np.random.default_rng(99), 3)
    with live_server(app) as url, gingham.Client(url) as c:
        out = c.add(["n0", "n1", "n2"], docs, metadata=[{"lang": "fr"}, None, {"x": 1}])
        assert out == {"added": 3, "ids": ["n0", "n1", "n2"], "n_docs": 33}
        for i, d in enumerate(docs):
            assert c.search(d, k=1, mode="exact")[0]["id"] == f"n{i}"
        with pytest.raises(InvalidRequest) as info:
            c.add(["n0"], [docs[0]])  # existing id without upsert
        assert info.value.code == "invalid_argument"
        with pytest.raises(InvalidRequest):
            c.add(["bad"], [np.zeros((3, DIM + 1), np.float32)])
        with pytest.raises(InvalidRequest):
            c.add(["t"], texts=["an embedding index cannot encode text"])
        assert c.stats()["index"]["n_docs"] == 33


def test_reads_continue_during_writes_and_see_commits(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=40)
    app = create_app(path, batch_window_ms=2)
    rng = np.random.default_rng(5)
    new_docs = random_docs(rng, 40)
    qs = queries(4, seed=21)
    stop = threading.Event()
    failures, counts = [], []

    with live_server(app) as url:
        def reader(q):
            n = 0
            with gingham.Client(url) as c:
                while not stop.is_set():
                    try:
                        hits = c.search(q, k=5)
                        if len(hits) != 5 or len({h["id"] for h in hits}) != 5:
                            failures.append(hits)
                        n += 1
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        failures.append(exc)
            counts.append(n)

        readers = [threading.Thread(target=reader, args=(q,)) for q in qs]
        for t in readers:
            t.start()
        with gingham.Client(url) as c:
            for b in range(8):
                ids = [f"w{b}_{i}" for i in range(5)]
                c.add(ids, new_docs[5 * b:5 * b + 5])
                # visible right after the commit answered
                assert c.search(new_docs[5 * b], k=1, mode="exact")[0]["id"] == ids[0]
        stop.set()
        for t in readers:
            t.join(30)
            assert not t.is_alive(), "a reader did not stop within 30 s of the stop event"
        with gingham.Client(url) as c:
            assert c.stats()["index"]["n_docs"] == 80
    assert not failures, failures[:3]
    assert all(n > 0 for n in counts)


def test_get_and_delete_documents(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=20)
    app = create_app(path)
    with live_server(app) as url, gingham.Client(url) as c:
        assert c.get("d3") == {"id": "d3", "text": None, "metadata": {"lang": "en", "n": 3}}
        doc = random_docs(np.random.default_rng(2), 1)[0]
        c.add(["a/b c"], [doc], texts=["hello"], metadata=[{"k": "v"}])
        assert c.get("a/b c") == {"id": "a/b c", "text": "hello", "metadata": {"k": "v"}}
        with pytest.raises(NotFound) as info:
            c.get("missing")
        assert info.value.code == "not_found"
        assert c.delete(["d3", "d4"]) == 2
        with pytest.raises(NotFound):
            c.delete(["d3"])
        assert c.delete(["d3", "d5"], missing="ignore") == 1
        with httpx.Client(base_url=url) as http:
            expect_error(http.post("/rerank", json={"embedding": doc.tolist(),
                                                    "ids": ["d1", "zz"]}), 404, "not_found")
            assert http.delete("/documents/a%2Fb%20c").json()["deleted"] == 1
            expect_error(http.get("/documents/d4"), 404, "not_found")
            expect_error(http.delete("/documents/d4"), 404, "not_found")
        hits = c.search(doc, k=30, mode="exact")
        assert {h["id"] for h in hits}.isdisjoint({"d3", "d4", "d5", "a/b c"})
        assert c.stats()["index"]["n_docs"] == 17  # 20 + 1 added - 4 deleted
        got = c.search(doc, k=3, with_documents=True)
        assert all(set(h["metadata"]) == {"lang", "n"} for h in got)


def test_where_and_subset_filters_match_the_library(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    q = queries(1, seed=8)[0]
    where = "json_extract(metadata, '$.lang') = ?"
    with gingham.Client(url) as c:
        got = c.search(q, k=5, where=where, params=["de"], mode="exact")
        sub = c.search(q, k=5, subset=["d1", "d2", "d3"])
    same_hits(got, idx.search(q, k=5, where=where, params=["de"], mode="exact"))
    assert {h["id"] for h in sub} == {"d1", "d2", "d3"}


# ---- observability ------------------------------------------------------------------------------

def test_health_stats_metrics_and_openapi(server):
    url, _ = server
    with gingham.Client(url) as c:
        assert c.health() == {"status": "ok"}
        c.search(queries(1)[0])
        stats = c.stats()
        assert stats["index"]["n_docs"] >= 60 and stats["index"]["dim"] == DIM
        assert stats["server"]["batches_run"] >= 1
        text = c.metrics()
    assert 'gingham_http_requests_total{endpoint="/search",method="POST",status="200"}' in text
    assert "gingham_search_batch_queries_bucket" in text
    assert "gingham_search_queue_depth" in text
    assert 'gingham_errors_total{code="' in text
    with httpx.Client(base_url=url) as http:
        schema = http.get("/openapi.json").json()
        assert {"/search", "/rerank", "/documents", "/documents/{doc_id}", "/health", "/stats",
                "/metrics"} <= set(schema["paths"])
        assert "ErrorResponse" in schema["components"]["schemas"]
        assert http.get("/docs").status_code == 200


# ---- errors that are bugs -----------------------------------------------------------------------

def test_an_unexpected_exception_in_a_route_answers_500_and_is_logged(tmp_path, monkeypatch,
                                                                      caplog):
    path = str(tmp_path / "index")
    build_index(path, n_docs=10)
    app = create_app(path)
    service = app.state.service

    def broken_get(doc_id):
        raise TypeError("simulated bug: an unexpected keyword argument")

    def broken_stats():
        raise ValueError("simulated bug: a ValueError that is no validation")

    monkeypatch.setattr(service, "get", broken_get)
    monkeypatch.setattr(service, "stats", broken_stats)
    with caplog.at_level("ERROR", logger="gingham.server"), live_server(app) as url, \
            httpx.Client(base_url=url) as http:
        err = expect_error(http.get("/documents/d1"), 500, "internal")
        assert err["message"] == "internal error (TypeError)"
        err = expect_error(http.get("/stats"), 500, "internal")
        assert err["message"] == "internal error (ValueError)"
        assert http.get("/health").status_code == 200  # the server carries on
        metrics = http.get("/metrics").text
    assert 'gingham_errors_total{code="internal"} 2.0' in metrics
    logged = [r for r in caplog.records if r.name == "gingham.server"]
    assert len(logged) == 2 and all(r.exc_info for r in logged)
    assert "simulated bug" in caplog.text
