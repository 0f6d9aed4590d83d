"""Which kind of checkpoint a local folder holds, and what the encoder takes from it.

``MultiVectorEncoder`` reads every supported layout itself; this module names the layout and
reports the settings that matter for an index (markers, lengths, query expansion, projection),
so ``gingham info`` and the docs can say what was detected.

- ``stanford-colbert``: ``config.json`` architectures ``HF_ColBERT``; the projection is
  ``linear.weight`` in the model's state dict; ``artifact.metadata`` gives the markers
  (``query_token_id`` / ``doc_token_id``, default ``[unused0]`` / ``[unused1]``), ``query_maxlen``
  (the [MASK] expansion length), ``doc_maxlen``, ``attend_to_mask_tokens`` and
  ``mask_punctuation``.
- ``pylate``: a sentence-transformers folder whose ``config_sentence_transformers.json`` carries
  the ColBERT keys (``query_prefix``, ``document_prefix``, ``query_length``,
  ``document_length``, ``attend_to_expansion_tokens``) and a Dense projection module.
- ``sentence-transformers``: a ``modules.json`` folder (a native multi-vector save keeps its
  Dense projection; a dense bi-encoder gets no projection with ``projection="auto"``).
- ``hugging-face``: a plain transformer (``config.json`` only): raw hidden states, no markers.
"""
from __future__ import annotations

from typing import Any

from .encoder import Encoder, _read_json, checkpoint_has_projection

FORMATS = ("stanford-colbert", "pylate", "sentence-transformers", "hugging-face")
PYLATE_KEYS = ("query_prefix", "document_prefix", "attend_to_expansion_tokens")


def checkpoint_format(model_path: str) -> str:
    """One of :data:`FORMATS` for a local checkpoint folder (or Hub name, read online)."""
    config = _read_json(model_path, "config.json") or {}
    if "HF_ColBERT" in (config.get("architectures") or []):
        return "stanford-colbert"
    st_config = _read_json(model_path, "config_sentence_transformers.json") or {}
    if st_config.get("model_type") == "ColBERT" or any(k in st_config for k in PYLATE_KEYS):
        return "pylate"
    if _read_json(model_path, "modules.json") is not None:
        return "sentence-transformers"
    return "hugging-face"


def loaded_settings(encoder: Encoder) -> dict[str, Any]:
    """What ``encoder`` applies around its transformer: {"format", "query_prefix",
    "document_prefix", "query_max_length", "document_max_length", "query_expansion" (None or
    {"strategy", "attend", "length", "token_id"}), "skiplist_size", "has_trained_projection",
    "dim"} (model space, before PCA). Loads the torch model unless the encoder holds an ONNX
    export."""
    from .onnx_encoder import model_spec

    if encoder._onnx_spec is not None:
        spec = encoder._onnx_spec
    else:
        spec = model_spec(encoder.model, encoder.query_prefix, encoder.document_prefix)
    return {
        "format": checkpoint_format(encoder.model_path),
        "query_prefix": spec["prompts"]["query"],
        "document_prefix": spec["prompts"]["document"],
        "query_max_length": spec["max_length"]["query"],
        "document_max_length": spec["max_length"]["document"],
        "query_expansion": spec["expansion"],
        "skiplist_size": len(spec["skiplist_ids"]),
        "has_trained_projection": checkpoint_has_projection(encoder.model_path),
        "dim": encoder.model_dim,
    }
