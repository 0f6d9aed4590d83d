"""gingham: late-interaction (ColBERT-style) retrieval with a compiled core."""
from ._runtime import get_num_threads, set_num_threads, simd_level
from .exact import exact_search, maxsim_scores
# compressed index
from .index import Hit, Index

# ---- int8 token storage (issue 9) ----
from .exact import quantize_int8

# ---- text facade (issue 6; torch is imported only when encoding) ----
from .retriever import Retriever

# ---- HTTP client of `gingham serve` (issue 8; httpx from gingham[server], imported lazily) ----
from .client import Client

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Hit",
    "Index",
    "Retriever",
    "exact_search",
    "get_num_threads",
    "maxsim_scores",
    "quantize_int8",
    "set_num_threads",
    "simd_level",
]
