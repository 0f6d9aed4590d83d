"""What one request may hold (:class:`ServiceLimits`) and the errors a request gets when it
breaks a rule (:class:`InvalidArgument`, :class:`LimitError`).

These two exception classes are the only ones the HTTP layer answers with 422
``invalid_argument`` / ``limit_exceeded``: the service raises them from its own request checks
and converts the engine's input errors into them where it calls the engine with user input.
Any other ValueError or TypeError is a bug and answers 500. No FastAPI here, so that
``gingham serve --help`` builds its flags from :class:`ServiceLimits` without importing it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["InvalidArgument", "LimitError", "ServiceLimits", "limit_fields"]


class InvalidArgument(ValueError):
    """A request argument that gingham rejects (HTTP 422, code ``invalid_argument``)."""


class LimitError(InvalidArgument):
    """A request exceeds one of :class:`ServiceLimits` (HTTP 422, code ``limit_exceeded``)."""


def _limit(default: int, help: str, scope: str = "request") -> int:
    return field(default=default, metadata={"help": help, "scope": scope})


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds applied to every request, and to the index a long-running server writes to
    (``scope`` "index"). Each field is also a ``gingham serve`` flag (``max_k`` ->
    ``--max-k``) whose help text is the field's ``metadata["help"]``."""

    max_k: int = _limit(1000, "hits per query (k)")
    max_queries: int = _limit(64, "queries per search request")
    max_text_chars: int = _limit(10_000, "characters per query text and per document text")
    max_query_tokens: int = _limit(512, "rows (tokens) of one query embedding")
    max_doc_tokens: int = _limit(8192, "rows (tokens) of one document embedding")
    max_documents: int = _limit(1000, "documents per add, ids per delete or rerank")
    max_subset: int = _limit(100_000, "ids in a subset filter")
    max_where_chars: int = _limit(2000, "characters of a where expression")
    # Every add is a segment with its own mapped files and opened handle: without merging, a
    # stream of small writes grows the server's memory and per-search work without bound.
    max_segments: int = _limit(32, "segments of the index: after an add that leaves more, "
                                   "the writer merges the smallest ones "
                                   "(Index.compact(max_segments=N))", scope="index")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{f.name} must be a positive integer; got {value!r}")


def limit_fields(scope: str | None = None) -> list[tuple[str, int, str]]:
    """(name, default, help) of every :class:`ServiceLimits` field, in declaration order;
    only those of ``scope`` ("request" or "index") when given."""
    return [(f.name, f.default, f.metadata["help"]) for f in fields(ServiceLimits)
            if scope is None or f.metadata["scope"] == scope]
