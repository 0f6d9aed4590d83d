"""Token-level explanations of late-interaction scores: which stored row each query token
matched, and which words of the document that row stands for.

A stored row is one input token of the document (skip-list tokens removed) or, with pooling, the
mean of a Ward cluster of them. The tokens are recovered from the stored text with the encoder's
own tokenizer and skip list; the clusters are recomputed as ``HierarchicalTokenPooling`` forms
them (Ward linkage on cosine distance, first token protected). When the recovered tokens cannot
be aligned with the stored rows (e.g. a text truncated differently), rows are named "#<row>".
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from .encoder import Encoder
from .pooling import cosine_distances, n_pooled_clusters, ward_clusters

Span = tuple[int, int]
TokenGroup = list[tuple[str, Span | None]]


def explain_hits(encoder: Encoder, query: str, qvec: np.ndarray,
                 docs: Sequence[tuple[np.ndarray, str | None]]) -> list[list[dict[str, Any]]]:
    """Explanations of one query against several documents, from an already encoded query.

    qvec: (Lq, dim) float32, the query as the index was searched with. docs: (stored rows
    (n_i, dim) float32, stored text or None) per document. Returns, per document, one dict per
    query token: ``query_token``, ``query_position``, ``doc_position`` (argmax row),
    ``similarity`` (its dot product; these sum to the document's exact MaxSim), ``doc_token``,
    ``doc_tokens`` and ``doc_spans`` (see ``Retriever.explain``). The documents needing their
    pooling clusters recomputed are encoded in one batch.
    """
    q_tokens = token_strings(encoder, query, "query", qvec.shape[0])
    groups = document_token_groups(encoder, [text for _, text in docs],
                                   [rows.shape[0] for rows, _ in docs])
    return [_explain_one(qvec, q_tokens, rows, g) for (rows, _), g in zip(docs, groups)]


def _explain_one(qvec: np.ndarray, q_tokens: list[str] | None, rows: np.ndarray,
                 groups: list[TokenGroup] | None) -> list[dict[str, Any]]:
    sims = np.asarray(qvec, dtype=np.float32) @ np.asarray(rows, dtype=np.float32).T
    best = np.argmax(sims, axis=1)
    out = []
    for i, j in enumerate(best.tolist()):
        g = groups[j] if groups is not None else None
        out.append({"query_token": q_tokens[i] if q_tokens else f"#{i}",
                    "query_position": i, "doc_position": int(j),
                    "similarity": float(sims[i, j]),
                    "doc_token": " ".join(t for t, _ in g) if g else f"#{j}",
                    "doc_tokens": [t for t, _ in g] if g else [],
                    "doc_spans": [list(s) for _, s in g if s is not None] if g else []})
    return out


# ---------------------------------------------------------------------- tokens
def token_strings(encoder: Encoder, text: str, task: str, n_rows: int) -> list[str] | None:
    """Token strings of the ``n_rows`` encoded rows of ``text``, or None if they do not align."""
    view = encoder.tokens
    ids, keep = view.tokenized(text, task)
    if len(keep) != n_rows:
        return None
    return view.strings([ids[p] for p in keep])


def token_spans(encoder: Encoder, text: str, ids: Sequence[int]) -> list[Span | None]:
    """[start, end) character span in ``text`` of each input id, None where unknown (markers,
    prefix, special tokens)."""
    view = encoder.tokens
    text_part = view.text_spans(text, len(ids))
    pos = [p for p, i in enumerate(ids) if i not in view.special_ids]
    out: list[Span | None] = [None] * len(ids)
    # The text's own tokens are the last run of non-special ids (after any prefix/marker).
    for (tid, span), p in zip(reversed(text_part), reversed(pos[-len(text_part):]
                                                            if text_part else [])):
        if ids[p] == tid and span[1] > span[0]:
            out[p] = span
    return out


def document_token_groups(encoder: Encoder, texts: Sequence[str | None],
                          n_rows: Sequence[int]) -> list[list[TokenGroup] | None]:
    """Per document, for each of its ``n_rows[i]`` stored rows the (token string, span) of the
    input tokens it stands for: one token each, or the Ward cluster merged by pooling. None for
    a document whose text is missing or whose rows cannot be aligned. Documents are encoded
    (unpooled, one batch) only when the encoder pools."""
    tokens: list[TokenGroup | None] = []
    for text in texts:
        if not text:
            tokens.append(None)
            continue
        ids, keep = encoder.tokens.tokenized(text, "document")
        strings = encoder.tokens.strings([ids[p] for p in keep])
        spans = token_spans(encoder, text, ids)
        tokens.append([(s, spans[p]) for s, p in zip(strings, keep)])
    if encoder.pool_factor <= 1:
        return [[[t] for t in toks] if toks is not None and len(toks) == n else None
                for toks, n in zip(tokens, n_rows)]
    todo = [i for i, t in enumerate(tokens) if t is not None]
    vectors = dict(zip(todo, encoder.encode_documents_unpooled([texts[i] for i in todo])))
    out: list[list[TokenGroup] | None] = []
    for i, (toks, n) in enumerate(zip(tokens, n_rows)):
        if toks is None or len(vectors[i]) != len(toks):
            out.append(None)
            continue
        groups = pool_groups(vectors[i], encoder.pool_factor, backend=encoder.backend)
        out.append([[toks[p] for p in g] for g in groups] if len(groups) == n else None)
    return out


# ---------------------------------------------------------------------- pooling clusters
@functools.cache
def _ward_linkage() -> Callable[..., np.ndarray]:
    # The backend HierarchicalTokenPooling uses: fastcluster when installed, else scipy (they
    # differ only on exact distance ties).
    try:
        from fastcluster import linkage
    except (ImportError, OSError, RuntimeError):
        from scipy.cluster.hierarchy import linkage
    return linkage


def _torch_cosine_distances(vectors: np.ndarray) -> np.ndarray:
    import torch

    # float32 through torch, as HierarchicalTokenPooling computes them, so ties break alike
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    return (1 - torch.mm(x, x.t())).clamp_(0, 2).numpy()


def pool_groups(vectors: np.ndarray, pool_factor: float, num_protected: int = 1,
                backend: str = "torch") -> list[list[int]]:
    """Input positions merged into each output row by hierarchical token pooling.

    vectors: (n, d) float32 unit rows. The first ``num_protected`` rows stay alone; the rest
    are cut into max(len // pool_factor, 1) Ward clusters on cosine distance, returned in
    ascending cluster label order (the order of the pooled rows). backend: the encoder backend
    whose pooling to reproduce ("torch": sentence-transformers' ``HierarchicalTokenPooling``;
    "onnx": :func:`.pooling.hierarchical_pool`). Returns lists of positions.
    """
    n = vectors.shape[0]
    protected = [[p] for p in range(min(num_protected, n))]
    rest = list(range(num_protected, n))
    n_clusters = n_pooled_clusters(len(rest), pool_factor)
    if n_clusters >= len(rest):
        return protected + [[p] for p in rest]
    if backend == "torch":
        clusters = ward_clusters(_torch_cosine_distances(vectors[num_protected:]), n_clusters,
                                 _ward_linkage())
    else:
        clusters = ward_clusters(cosine_distances(vectors[num_protected:]), n_clusters)
    groups: list[list[int]] = [[] for _ in range(int(clusters.max()) + 1)]
    for p, c in zip(rest, clusters.tolist()):
        groups[c].append(p)
    return protected + groups
