"""The engine: the Index API over segment kinds, exact search, input validation, runtime knobs.

It sits on the compiled core (``gingham._core``) and the storage layer and imports nothing
from the text, eval, serving or CLI layers.
"""
from .exact import exact_search, maxsim_scores, quantize_int8
from .index import Hit, Index, default_n_centroids, default_search_params
from .runtime import get_num_threads, set_num_threads, simd_level
from .streaming import csr_batches, sample_tokens

__all__ = ["Hit", "Index", "csr_batches", "default_n_centroids", "default_search_params",
           "exact_search", "get_num_threads", "maxsim_scores", "quantize_int8", "sample_tokens",
           "set_num_threads", "simd_level"]
