"""Packed float32 embeddings over HTTP and the early 503 (admission before the body is read).

Packed bodies are checked against the nested-JSON path of the same server and against
``gingham.Index.search`` on the same folder.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import gingham
from gingham.client import Overloaded
from gingham.serve.server import create_app
from gingham.serve.service import ServiceLimits
from server_util import DIM, build_index, live_server, queue_held_search, random_docs, wait_until
from test_server import expect_error, same_hits


def packed(x, dtype="<f4"):
    arr = np.asarray(x)
    return {"dtype": "float32", "shape": list(arr.shape),
            "data": base64.b64encode(arr.astype(dtype).tobytes()).decode()}


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("packed") / "index")
    build_index(path)
    return path


@pytest.fixture(scope="module")
def server(index_path):
    app = create_app(index_path, batch_window_ms=5,
                     limits=ServiceLimits(max_query_tokens=32, max_doc_tokens=64))
    with live_server(app) as url:
        yield url, app


def queries(n, seed=21):
    return random_docs(np.random.default_rng(seed), n, lo=2, hi=6)


def test_packed_search_matches_json_and_the_library(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    qs = queries(3)
    with httpx.Client(base_url=url) as http:
        for q in qs:
            by_json = http.post("/search", json={"embedding": q.tolist(), "k": 5})
            by_packed = http.post("/search", json={"embedding": packed(q), "k": 5})
            assert by_json.status_code == by_packed.status_code == 200, by_packed.text
            assert by_packed.json()["results"] == by_json.json()["results"]
            same_hits(by_packed.json()["results"][0], idx.search(q, k=5))
        mixed = http.post("/search", json={"embeddings": [packed(qs[0]), qs[1].tolist()],
                                           "k": 4, "mode": "exact"})
    assert mixed.status_code == 200, mixed.text
    for got, exp in zip(mixed.json()["results"], idx.search(qs[:2], k=4, mode="exact")):
        same_hits(got, exp)


def test_client_sends_packed_by_default_and_json_on_request(server, index_path):
    url, _ = server
    idx = gingham.Index.open(index_path)
    q = queries(1, seed=5)[0]
    sent = []
    with gingham.Client(url) as c:
        c._http.event_hooks["request"].append(lambda r: sent.append(r.read()))
        default = c.search(q, k=6)
        reranked = c.rerank(q, ["d1", "d2", "d3"])
    with gingham.Client(url, embeddings="json") as c:
        c._http.event_hooks["request"].append(lambda r: sent.append(r.read()))
        as_json = c.search(q, k=6)
        reranked_json = c.rerank(q, ["d1", "d2", "d3"])
    assert b'"data"' in sent[0] and b'"data"' in sent[1]
    assert b'"data"' not in sent[2] and b'"data"' not in sent[3]
    assert default == as_json and reranked == reranked_json
    same_hits(default, idx.search(q, k=6))
    with pytest.raises(ValueError, match="embeddings"):
        gingham.Client(url, embeddings="npy")


def test_packed_documents_are_stored_like_json_ones(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=20)
    doc = random_docs(np.random.default_rng(9), 1, lo=5, hi=5)[0]
    with live_server(create_app(path)) as url, httpx.Client(base_url=url) as http:
        r = http.post("/documents", json={"documents": [
            {"id": "p", "embedding": packed(doc)}, {"id": "j", "embedding": doc.tolist()}]})
        assert r.status_code == 200, r.text
        hits = http.post("/search", json={"embedding": packed(doc), "k": 2, "mode": "exact"})
    ids = [h["id"] for h in hits.json()["results"][0]]
    scores = [h["score"] for h in hits.json()["results"][0]]
    assert sorted(ids) == ["j", "p"] and scores[0] == scores[1]
    idx = gingham.Index.open(path)
    np.testing.assert_array_equal(idx.tokens("p"), idx.tokens("j"))


def test_bad_packed_bodies_get_422(server):
    url, _ = server
    q = queries(1)[0]
    good = packed(q)
    raw = base64.b64decode(good["data"])
    cases = [
        ({**good, "shape": [q.shape[0]]}, "invalid_request"),              # one entry
        ({**good, "shape": [q.shape[0], DIM, 1]}, "invalid_request"),      # three entries
        ({**good, "shape": [-1, DIM]}, "invalid_argument"),
        ({**good, "shape": [q.shape[0], "16"]}, "invalid_request"),        # not an int
        ({**good, "dtype": "float16"}, "invalid_request"),
        ({**good, "extra": 1}, "invalid_request"),
        ({**good, "data": good["data"][:-4]}, "invalid_argument"),         # too few bytes
        ({**good, "data": base64.b64encode(raw + b"\0" * 4).decode()}, "invalid_argument"),
        ({**good, "data": "***not base64***"}, "invalid_argument"),
        (packed(np.ones((3, DIM + 1))), "invalid_argument"),               # wrong dim
        (packed(np.zeros((0, DIM))), "invalid_argument"),                  # no tokens
        (packed(np.full((2, DIM), np.nan)), "invalid_argument"),
        (packed(np.ones((33, DIM))), "limit_exceeded"),                    # max_query_tokens
    ]
    with httpx.Client(base_url=url) as http:
        for body, code in cases:
            r = http.post("/search", json={"embedding": body})
            expect_error(r, 422, code)
        r = http.post("/documents", json={"documents": [
            {"id": "x", "embedding": {**good, "shape": [1, DIM]}}]})
        expect_error(r, 422, "invalid_argument")
        r = http.post("/rerank", json={"embedding": {**good, "shape": [2]}, "ids": ["d1"]})
        expect_error(r, 422, "invalid_request")


def test_openapi_documents_the_packed_form(server):
    url, _ = server
    with httpx.Client(base_url=url) as http:
        schema = http.get("/openapi.json").json()
    packed_schema = schema["components"]["schemas"]["PackedMatrix"]
    assert set(packed_schema["properties"]) == {"dtype", "shape", "data"}
    body = schema["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]
    refs = [a.get("$ref") for a in body["schema"]["properties"]["embedding"]["anyOf"]]
    assert "#/components/schemas/PackedMatrix" in refs


# ---- early 503 ----------------------------------------------------------------------------------

def test_full_queue_answers_503_before_reading_the_body(index_path):
    app = create_app(index_path, max_queue=1, batch_window_ms=0)
    service = app.state.service
    q = queries(1)[0]
    service.batcher.pause()
    with live_server(app) as url:
        first, out = queue_held_search(url, service, {"embedding": packed(q)})
        assert service.searches_in_flight == 1
        with httpx.Client(base_url=url) as http:
            r = http.post("/search", json={"embedding": packed(q)})
            expect_error(r, 503, "overloaded")
            assert r.headers["retry-after"] == "1"
            # not even parsed: a body that would be a 422 is refused as 503 too
            r = http.post("/search", content=b"{not json",
                          headers={"content-type": "application/json"})
            expect_error(r, 503, "overloaded")
            assert http.get("/health").status_code == 200  # other routes are not gated
            metrics = http.get("/metrics").text
        assert 'gingham_errors_total{code="overloaded"} 2.0' in metrics
        with gingham.Client(url, retries=0) as c, pytest.raises(Overloaded) as info:
            c.search(q)
        assert info.value.retry_after == 1.0
        service.batcher.resume()
        first.join(30)
        assert not first.is_alive(), "the held search did not finish after resume()"
        assert out["response"].status_code == 200, out["response"].text
        wait_until(lambda: service.searches_in_flight == 0, "the slot to be released")
        with httpx.Client(base_url=url) as http:
            # the slot is free again, also after requests that failed validation
            expect_error(http.post("/search", content=b"{bad"), 422, "invalid_request")
            assert http.post("/search", json={"embedding": packed(q)}).status_code == 200
        wait_until(lambda: service.searches_in_flight == 0, "the slot to be released")
