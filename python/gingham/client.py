"""``gingham.Client``: the HTTP API of ``gingham serve`` with the library's call shapes (httpx).

    client = gingham.Client("http://127.0.0.1:8000", api_key="s3cret")
    client.search("what is late interaction?", k=5)     # -> list of hit dicts
    client.search([q1, q2], k=10)                         # embeddings -> one list per query
    client.add(["d1"], texts=["..."], metadata=[{"lang": "en"}])

Every non-2xx answer raises :class:`ServerError` (or a subclass chosen by the HTTP status) with
the server's stable ``code`` and ``message``. A 503 (the server's queue is full) or 429 is
retried a bounded number of times after the server's ``Retry-After``; a refused connection is
retried by the httpx transport. Needs only httpx (``pip install gingham[client]``): nothing
here imports the server, FastAPI or pydantic.
"""
from __future__ import annotations

import base64
import email.utils
import time
from typing import Any, Sequence
from urllib.parse import quote

import numpy as np

__all__ = ["AuthError", "Client", "InvalidRequest", "NotFound", "Overloaded", "RequestTimeout",
           "ServerError", "embedding_json"]


class ServerError(Exception):
    """An error answer: ``status`` (HTTP), ``code`` (stable, e.g. "not_found"), ``message``."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class AuthError(ServerError):
    """401: missing or wrong API key."""


class NotFound(ServerError, KeyError):
    """404: unknown document id (or the index is gone)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class InvalidRequest(ServerError, ValueError):
    """413 / 422: the request was rejected as invalid or too large."""


class Overloaded(ServerError):
    """503 (or 429): the server's queue is full; retry after ``retry_after`` seconds. Raised
    when the Client's own retries did not get through."""


class RequestTimeout(ServerError, TimeoutError):
    """504: the server did not answer within its request timeout."""


_BY_STATUS = {401: AuthError, 404: NotFound, 413: InvalidRequest, 422: InvalidRequest,
              429: Overloaded, 503: Overloaded, 504: RequestTimeout}


EMBEDDING_FORMATS = ("packed", "json")
#: Answers that mean "not done, try again later": the server refused before doing any work.
RETRY_STATUSES = (429, 503)


def embedding_json(x: Any, form: str = "packed") -> Any:
    """One (n_tokens, dim) float array as the API takes it: ``form`` "packed" -> {"dtype",
    "shape", "data": base64 of little-endian float32} (gingham.serve.models.PackedMatrix) or
    "json" -> nested lists. ValueError when ``x`` is not 2-d."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"an embedding must be 2-d (n_tokens, dim); got shape {arr.shape}")
    if form == "json":
        return arr.tolist()
    data = base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode("ascii")
    return {"dtype": "float32", "shape": [int(arr.shape[0]), int(arr.shape[1])], "data": data}


class Client:
    """Talks to one ``gingham serve`` instance. Use as a context manager or call ``close()``.

    base_url: e.g. "http://127.0.0.1:8000"; api_key: sent as a bearer token; timeout: seconds
    per HTTP request (connect + read). embeddings: how arrays are sent — "packed" (default:
    base64 float32, ~4x smaller and much cheaper to encode and parse) or "json" (nested lists).
    retries: how many times an answer 503 / 429 is retried (0: raise :class:`Overloaded` at
    once); each retry waits the answer's Retry-After (seconds or an HTTP date; without one
    0.5 s, 1 s, 2 s, ...), at most ``max_retry_wait`` seconds. connect_retries: how many times
    the transport retries a connection that fails (ignored when ``transport`` is given).
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0,
                 transport: Any = None, embeddings: str = "packed", retries: int = 2,
                 max_retry_wait: float = 10.0, connect_retries: int = 2) -> None:
        import httpx
        if embeddings not in EMBEDDING_FORMATS:
            raise ValueError(f"embeddings must be one of {', '.join(EMBEDDING_FORMATS)}; got "
                             f"{embeddings!r}")
        for name, value in (("retries", retries), ("connect_retries", connect_retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
        if not max_retry_wait >= 0:
            raise ValueError(f"max_retry_wait must be >= 0 seconds; got {max_retry_wait!r}")
        self._form = embeddings
        self._retries, self._max_retry_wait = retries, float(max_retry_wait)
        if transport is None:
            transport = httpx.HTTPTransport(retries=connect_retries)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, transport=transport)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        for attempt in range(self._retries + 1):
            response = self._http.request(method, path, json=json)
            if response.status_code not in RETRY_STATUSES or attempt == self._retries:
                break
            wait = _retry_after(response)
            if wait is None:
                wait = 0.5 * 2 ** attempt
            time.sleep(min(max(wait, 0.0), self._max_retry_wait))
        if response.status_code >= 400:
            raise _error_from(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # ---- reading -------------------------------------------------------------------------

    def search(self, queries: Any, k: int = 10, *, mode: str = "plaid",
               hybrid: bool | None = None, subset: Sequence[str] | None = None,
               where: str | None = None, params: Sequence[Any] | None = None,
               with_documents: bool = False) -> list:
        """Top-k hits for one query -> list of {"id","score","rank","text","metadata"}; for a
        list of queries -> one such list per query.

        queries: a text, a list of texts, one (Lq, dim) float array, or a list of arrays
        (a 3-d array counts as a list)."""
        body: dict[str, Any] = {"k": k, "mode": mode}
        single = True
        if isinstance(queries, str):
            body["query"] = queries
        elif isinstance(queries, np.ndarray) and queries.ndim == 2:
            body["embedding"] = embedding_json(queries, self._form)
        elif isinstance(queries, (list, tuple, np.ndarray)) and len(queries) and \
                all(isinstance(q, str) for q in queries):
            body["queries"], single = list(queries), False
        elif isinstance(queries, (list, tuple, np.ndarray)) and len(queries) and \
                all(isinstance(q, (list, tuple, np.ndarray)) for q in queries) and \
                np.ndim(queries[0]) == 2:
            body["embeddings"], single = [embedding_json(q, self._form) for q in queries], False
        elif isinstance(queries, (list, tuple)) and len(queries) and np.ndim(queries) == 2:
            body["embedding"] = embedding_json(queries, self._form)
        else:
            raise TypeError("queries must be a text, a list of texts, a (Lq, dim) array or a "
                            "list of them")
        for name, value in (("hybrid", hybrid), ("where", where)):
            if value is not None:
                body[name] = value
        if subset is not None:
            body["subset"] = list(subset)
        if params is not None:
            body["params"] = list(params)
        if with_documents:
            body["with_documents"] = True
        results = self._call("POST", "/search", body)["results"]
        return [_clean(h) for h in results[0]] if single else \
            [[_clean(h) for h in per_query] for per_query in results]

    def rerank(self, query: Any, ids: Sequence[str], k: int | None = None) -> list[dict]:
        """Exact MaxSim of one query (text or (Lq, dim) array) against ``ids``, best first."""
        body: dict[str, Any] = {"ids": list(ids)}
        if isinstance(query, str):
            body["query"] = query
        else:
            body["embedding"] = embedding_json(query, self._form)
        if k is not None:
            body["k"] = k
        return [_clean(h) for h in self._call("POST", "/rerank", body)["results"]]

    def get(self, id: str) -> dict:
        """{"id", "text", "metadata"} of one document; NotFound (a KeyError) if unknown."""
        return self._call("GET", f"/documents/{quote(id, safe='')}")

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def health(self) -> dict:
        return self._call("GET", "/health")

    def metrics(self) -> str:
        """The server's Prometheus metrics, as text."""
        return self._call("GET", "/metrics")

    # ---- writing -------------------------------------------------------------------------

    def add(self, ids: Sequence[str], embeddings: Sequence[Any] | None = None, *,
            texts: Sequence[str | None] | None = None,
            metadata: Sequence[dict | None] | None = None, upsert: bool = False) -> dict:
        """Add documents: texts (a text index encodes them) or embeddings (one (n_i, dim) array
        each; texts are then stored beside them). Returns {"added", "ids", "n_docs"}."""
        ids = list(ids)
        docs: list[dict[str, Any]] = [{"id": x} for x in ids]
        for name, values in (("embedding", embeddings), ("text", texts),
                             ("metadata", metadata)):
            if values is None:
                continue
            if len(values) != len(ids):
                raise ValueError(f"{name}s must hold one entry per id: {len(ids)} ids, "
                                 f"{len(values)} {name}s")
            for doc, value in zip(docs, values):  # noqa: B905 (lengths checked)
                if value is not None:
                    doc[name] = embedding_json(value, self._form) if name == "embedding" else value
        return self._call("POST", "/documents", {"documents": docs, "upsert": upsert})

    def delete(self, ids: Sequence[str] | str, *, missing: str = "raise") -> int:
        """Delete documents -> number deleted; NotFound for unknown ids unless missing="ignore"."""
        if isinstance(ids, str):
            ids = [ids]
        return self._call("DELETE", "/documents", {"ids": list(ids), "missing": missing})["deleted"]


def _clean(hit: dict) -> dict:
    return {"id": hit["id"], "score": hit["score"], "rank": hit["rank"],
            "text": hit.get("text"), "metadata": hit.get("metadata")}


def _error_from(response: Any) -> ServerError:
    status = response.status_code
    try:
        err = response.json()["error"]
        code, message = str(err["code"]), str(err["message"])
    except Exception:
        code, message = "http_error", response.text[:500]
    return _BY_STATUS.get(status, ServerError)(status, code, message, _retry_after(response))


def _retry_after(response: Any) -> float | None:
    """Seconds from the answer's Retry-After header (delay or HTTP date); None without one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
