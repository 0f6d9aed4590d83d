"""Input checks shared by every public entry point.

Each function converts what can be converted safely (float64 -> float32, non-contiguous ->
contiguous copy) and raises ``TypeError`` / ``ValueError`` naming the argument otherwise, before
anything is computed or written.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any, Sequence

import numpy as np

from .. import _core


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return type(x).__name__


def float_matrix(x: Any, name: str, dim: int | None = None, *, allow_float16: bool = False,
                 allow_empty: bool = False, check_finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous (n, dim) float32 array (float16 kept if allowed)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 2-d float array; got {_describe(x)}")
    arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if arr.dtype == object or arr.dtype.kind not in "f":
        raise TypeError(f"{name} must hold floating-point values; got {_describe(arr)}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_tokens, dim); got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have dim {dim}; got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column; got shape {arr.shape}")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one token; got shape {arr.shape}")
    target = np.float16 if (allow_float16 and arr.dtype == np.float16) else np.float32
    arr = np.ascontiguousarray(arr, dtype=target)
    if check_finite:
        bad = _core.first_nonfinite(arr)
        if bad >= 0:
            row, col = divmod(int(bad), arr.shape[1])
            raise ValueError(f"{name} holds a non-finite value (NaN or inf) at [{row}, {col}]")
    return arr


def offsets(x: Any, n_rows: int, name: str = "doc_offsets") -> np.ndarray:
    """Return ``x`` as a contiguous int64 CSR offsets array ending at ``n_rows``."""
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (int64); got {_describe(arr)}")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"{name} must be 1-d with n_docs + 1 values; got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has values beyond int64")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr[0] != 0:
        raise ValueError(f"{name}[0] must be 0; got {arr[0]}")
    falling = arr[1:] < arr[:-1]  # compared, not subtracted: a difference can wrap around
    if falling.any():
        i = int(np.argmax(falling)) + 1
        raise ValueError(f"{name} must be non-decreasing; {name}[{i}] = {arr[i]} < {arr[i - 1]}")
    if arr[-1] != n_rows:
        raise ValueError(f"{name} must end at {n_rows} (the number of token rows); got {arr[-1]}")
    return arr


def positive_int(x: Any, name: str) -> int:
    """Return ``x`` as a Python int > 0."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {_describe(x)}")
    if x <= 0:
        raise ValueError(f"{name} must be a positive integer; got {x}")
    return int(x)


def query_batch(queries: Any, dim: int | None, name: str = "queries"
                ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Normalize one (Lq, dim) query or a sequence of them.

    Returns (stacked float32 rows, int64 query_offsets, single) where ``single`` tells whether
    one bare query was given.
    """
    single = isinstance(queries, np.ndarray) and queries.ndim == 2
    if single:
        items: Sequence[Any] = [queries]
    elif isinstance(queries, np.ndarray) and queries.ndim == 3:
        items = list(queries)
    elif isinstance(queries, (list, tuple)):
        if len(queries) == 0:
            raise ValueError(f"{name} must hold at least one query; got an empty sequence")
        items = queries
    else:
        raise TypeError(f"{name} must be a (Lq, dim) float array or a list of them; "
                        f"got {_describe(queries)}")
    mats = []
    for i, q in enumerate(items):
        mat = float_matrix(q, f"{name}[{i}]" if not single else name, dim)
        if dim is None:
            dim = mat.shape[1]
        mats.append(mat)
    lengths = np.fromiter((m.shape[0] for m in mats), dtype=np.int64, count=len(mats))
    query_offsets = np.zeros(len(mats) + 1, dtype=np.int64)
    np.cumsum(lengths, out=query_offsets[1:])
    return np.ascontiguousarray(np.concatenate(mats, axis=0)), query_offsets, single


def int8_tokens(values: Any, scales: Any, dim: int | None, *, check_finite: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """Return int8 token storage as C-contiguous (values int8 (T, dim), scales float32 (T,)).

    Token j is ``scales[j] * values[j]`` (see :func:`gingham.quantize_int8`).
    """
    vals = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if vals.dtype != np.int8:
        raise TypeError(f"tokens must be int8 when token scales are given; got {_describe(vals)}")
    if vals.ndim != 2:
        raise ValueError(f"tokens must be 2-d (n_tokens, dim); got shape {vals.shape}")
    if dim is not None and vals.shape[1] != dim:
        raise ValueError(f"tokens must have dim {dim}; got shape {vals.shape}")
    sc = np.asarray(scales) if not isinstance(scales, np.ndarray) else scales
    if sc.dtype == object or sc.dtype.kind != "f":
        raise TypeError(f"token_scales must hold floating-point values; got {_describe(sc)}")
    if sc.ndim != 1 or sc.shape[0] != vals.shape[0]:
        raise ValueError(f"token_scales must have shape ({vals.shape[0]},), one per token row; "
                         f"got shape {sc.shape}")
    sc = np.ascontiguousarray(sc, dtype=np.float32)
    if check_finite and sc.size and not np.isfinite(sc).all():
        raise ValueError(f"token_scales holds a non-finite value (NaN or inf) at "
                         f"[{int(np.argmin(np.isfinite(sc)))}]")
    return np.ascontiguousarray(vals), sc


def non_negative_int(x: Any, name: str) -> int:
    """Return ``x`` as a Python int >= 0."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0:
        raise TypeError(f"{name} must be a non-negative integer; got {x!r}")
    return int(x)


def ids_list(ids: Any, name: str = "ids") -> list[str]:
    """Return ``ids`` as a list of distinct non-empty strings."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"{name} must be a list of strings; got {type(ids).__name__}")
    out = list(ids)
    if set(map(type, out)) <= {str}:  # the common case in C loops
        distinct = set(out)
        if len(distinct) == len(out) and "" not in distinct:
            return out
    seen: set[str] = set()
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{name}[{i}] must be a string; got {type(x).__name__}")
        if not x:
            raise ValueError(f"{name}[{i}] must be a non-empty string")
        if x in seen:
            raise ValueError(f"{name} holds {x!r} more than once")
        seen.add(x)
    return out


def ids_per_query(x: Any, n_queries: int, single: bool, name: str) -> list[list[str]]:
    """One :func:`ids_list` per query: ``x`` itself for a single query, else a list holding
    one list of ids per query."""
    if single:
        return [ids_list(x, name)]
    lists = sequence(x, name, "id lists (one per query)")
    if len(lists) != n_queries:
        raise ValueError(f"{name} must hold one list of ids per query ({n_queries}); got "
                         f"{len(lists)}")
    return [ids_list(ids, f"{name}[{q}]") for q, ids in enumerate(lists)]


def sequence(x: Any, name: str, what: str = "ids") -> list:
    """Return a list or tuple (not a string) ``x`` as a list."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{name} must be a list of {what}; got {type(x).__name__}")
    return list(x)


def per_doc(values: Any, n: int, name: str, kind: type) -> list | None:
    """Return ``values`` (None, or one ``kind`` or None per document; dicts JSON-serializable)
    as a list of length n."""
    if values is None:
        return None
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence) \
            or len(values) != n:
        raise ValueError(f"{name} must be a list with one entry per id ({n})")
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, kind):
            raise TypeError(f"{name}[{i}] must be a {kind.__name__} or None; "
                            f"got {type(v).__name__}")
        if kind is dict:
            json_value(v, f"{name}[{i}]")
    return list(values)


def json_value(v: Any, name: str) -> None:
    """TypeError unless ``v`` is JSON-serializable (no NaN / inf)."""
    try:
        json.dumps(v, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serializable: {exc}") from None


def user_settings(settings: Any, reserved: Sequence[str]) -> dict:
    """Return the user's settings dict (string keys, JSON values, no reserved key)."""
    user = {} if settings is None else settings
    if not isinstance(user, dict) or not all(isinstance(k, str) for k in user):
        raise TypeError("settings must be a dict with string keys")
    clash = sorted(set(user) & set(reserved))
    if clash:
        raise ValueError(f"settings keys {clash} are reserved by the index")
    json_value(user, "settings")
    return user


def search_params(k: int, mode: str, modes: Sequence[str], ncells: Any,
                  centroid_score_threshold: Any, ndocs: Any) -> dict[str, Any]:
    """PLAID's defaults for k (``_core.plaid_default_params``) with the given overrides."""
    if mode not in modes:
        raise ValueError(f"mode must be one of {', '.join(modes)}; got {mode!r}")
    params = default_search_params(k)
    if ncells is not None:
        params["ncells"] = positive_int(ncells, "ncells")
    if ndocs is not None:
        params["ndocs"] = positive_int(ndocs, "ndocs")
    if centroid_score_threshold is not None:
        if isinstance(centroid_score_threshold, bool) or \
                not isinstance(centroid_score_threshold, numbers.Real):
            raise TypeError("centroid_score_threshold must be a number (or -inf to disable "
                            f"pruning); got {type(centroid_score_threshold).__name__}")
        if math.isnan(centroid_score_threshold):
            raise ValueError("centroid_score_threshold must not be NaN")
        params["centroid_score_threshold"] = float(centroid_score_threshold)
    return params


def default_search_params(k: int) -> dict[str, Any]:
    """PLAID's per-k defaults: k <= 10: 1/0.5/256; k <= 100: 2/0.45/1024; else 4/0.4/4096."""
    ncells, threshold, ndocs = _core.plaid_default_params(k)
    return {"ncells": int(ncells), "centroid_score_threshold": float(threshold),
            "ndocs": int(ndocs)}


def embeddings(x: Any, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One (n_i, dim) finite float array per document (a list, or a 3-d array) -> CSR
    (tokens float32 (sum n_i, dim), doc_offsets int64 (n + 1,))."""
    if isinstance(x, np.ndarray) and x.ndim == 3:
        x = list(x)
    if not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        raise TypeError("embeddings must be a list of (n_tokens, dim) float arrays")
    if len(x) != n:
        raise ValueError(f"embeddings must hold one array per id: {n} ids, "
                         f"{len(x)} embeddings")
    mats = [float_matrix(e, f"embeddings[{i}]", dim) for i, e in enumerate(x)]
    doc_offsets = np.zeros(len(mats) + 1, dtype=np.int64)
    np.cumsum([m.shape[0] for m in mats], out=doc_offsets[1:])
    tokens = np.concatenate(mats, axis=0) if len(mats) > 1 else mats[0]
    return tokens, doc_offsets


def add_batch(ids: Any, embeddings_: Any, metadata: Any, texts: Any, dim: int
              ) -> tuple[list[str], np.ndarray, np.ndarray, list | None, list | None]:
    """The arguments of ``Index.add`` checked together -> (ids, tokens float32 (T, dim),
    doc_offsets int64 (n + 1,), metadata list of dict or None, texts list of str or None)."""
    ids = ids_list(ids)
    if not ids:
        raise ValueError("ids must hold at least one document")
    tokens, doc_offsets = embeddings(embeddings_, len(ids), dim)
    return (ids, tokens, doc_offsets, per_doc(metadata, len(ids), "metadata", dict),
            per_doc(texts, len(ids), "texts", str))
