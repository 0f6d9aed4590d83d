"""gingham: late-interaction (ColBERT-style) retrieval with a compiled core.

``import gingham`` loads the engine only (numpy and the compiled core). The text layer
(``Retriever``) and the HTTP client (``Client``) load on first attribute access, so an
embeddings-only user never imports them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from ._version import __version__
from .engine.exact import exact_search, maxsim_scores, quantize_int8
from .engine.index import Hit, Index
from .engine.runtime import get_num_threads, set_num_threads, simd_level
from .engine.streaming import csr_batches, sample_tokens

_LAZY = {"Retriever": ".text.retriever", "Client": ".client"}

__all__ = [
    "Client",
    "Hit",
    "Index",
    "Retriever",
    "__version__",
    "csr_batches",
    "exact_search",
    "get_num_threads",
    "maxsim_scores",
    "quantize_int8",
    "sample_tokens",
    "set_num_threads",
    "simd_level",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gingham' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
