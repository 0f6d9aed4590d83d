"""schemathesis against the OpenAPI schema of a live server: no generated request gets a 500.

Examples per operation stay few so the run takes seconds; responses must also be JSON errors
with a stable code whenever the status is 4xx/5xx.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from gingham.serve.server import create_app  # noqa: E402
from server_util import build_index, live_server  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("schema") / "index")
    build_index(path, n_docs=20)
    with live_server(create_app(path, max_body_bytes=1 << 20)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_server_errors(api_schema):
    seen = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            assert response.status_code < 500, \
                (case.method, case.path, case.body, response.text[:500])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and isinstance(body["error"]["code"], str), body

        check()
    assert "POST /search" in seen and "DELETE /documents/{doc_id}" in seen
