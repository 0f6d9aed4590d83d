"""The encoder's transformer on ONNX Runtime: tokenizers + onnxruntime + numpy, no torch.

:func:`export` (needs torch) writes the transformer of a configured ``MultiVectorEncoder`` to
``model.onnx`` (optionally ``model_int8.onnx``, dynamic int8 weights) and its fast tokenizer to
``tokenizer.json``, and returns the *spec*: everything ``MultiVectorEncoder`` does around the
transformer, read off the loaded model so that :class:`OnnxTextModel` can redo it in numpy:

- the task prompt (query / document marker) prepended to the text, the per-task max length;
- ColBERT query expansion (pads within the expansion length replaced by the expansion token,
  scored, and attended to when ``attend``);
- the scoring mask (``MultiVectorMask``: real tokens, expansion positions, minus skip-list ids
  for the skip-list tasks);
- the modules after the transformer, in order: ``Dense`` (a projection, identity or tanh) and
  ``Normalize``. Any other module is refused at export, so the two backends cannot drift apart.

The projection weights are not in the ONNX file: the encoder stores them as ``.npy`` beside it
(``Encoder.save``), one copy for both backends.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Sequence

import numpy as np

from .pca import l2_normalize

ONNX_FILES = {None: "model.onnx", "int8": "model_int8.onnx"}
TOKENIZER_FILE = "tokenizer.json"
OUTPUT_NAME = "last_hidden_state"
QUANTIZE = (None, "int8")
ACTIVATIONS = ("identity", "tanh")


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the ONNX encoder backend needs onnxruntime (pip install "
                          "'gingham[text]'); or use backend='torch' (--backend torch)") from exc
    return onnxruntime


# ---------------------------------------------------------------------------- export (torch)
def _activation(dense: Any) -> str:
    import torch
    act = getattr(dense, "activation_function", None)
    if act is None or isinstance(act, torch.nn.Identity):
        return "identity"
    if isinstance(act, torch.nn.Tanh):
        return "tanh"
    raise ValueError(f"the ONNX backend supports Dense activations {ACTIVATIONS}; the model has "
                     f"{type(act).__name__}: use backend='torch'")


def _prompt(model: Any, task: str, prefix: str | None) -> str:
    if prefix is not None:
        return prefix
    name = task if task in model.prompts else None
    return model._resolve_prompt(None, name) or ""


def model_spec(model: Any, query_prefix: str | None, document_prefix: str | None
               ) -> dict[str, Any]:
    """The numpy-side settings of a configured ``MultiVectorEncoder`` (see the module
    docstring); raises ValueError for a module the ONNX backend does not reproduce."""
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    backbone = model[0]
    tok = model.tokenizer
    steps: list[list[Any]] = []
    skip_ids: list[int] = []
    skip_tasks: list[str] = ["document"]
    n_dense = 0
    for m in list(model)[1:]:
        if isinstance(m, Dense):
            steps.append(["dense", n_dense, _activation(m)])
            n_dense += 1
        elif isinstance(m, Normalize):
            steps.append(["normalize"])
        elif isinstance(m, MultiVectorMask):
            if m.keep_only_token_ids:
                raise ValueError("the ONNX backend does not support keep_only_token_ids")
            skip_ids = [] if m._skiplist_ids is None else [int(i) for i in m._skiplist_ids]
            skip_tasks = list(m.skiplist_tasks)
        else:
            raise ValueError(f"the ONNX backend does not reproduce module {type(m).__name__}: "
                             "use backend='torch'")
    max_len = int(backbone.max_seq_length)
    expansion = backbone.query_expansion
    if expansion is not None:
        token = expansion.get("token")
        token_id = (tok.convert_tokens_to_ids(token) if token is not None
                    else tok.mask_token_id if tok.mask_token_id is not None
                    else tok.eos_token_id)
        expansion = {"strategy": expansion["strategy"], "attend": bool(expansion["attend"]),
                     "length": int(expansion["length"]), "token_id": int(token_id)}
    sample = backbone.preprocess(["a"], task="document")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    return {
        "input_names": names,
        "hidden_size": int(backbone.get_embedding_dimension()),
        "prompts": {"query": _prompt(model, "query", query_prefix),
                    "document": _prompt(model, "document", document_prefix)},
        "max_length": {"query": int(backbone.query_length or max_len),
                       "document": int(backbone.document_length or max_len)},
        "expansion": expansion,
        "skiplist_ids": skip_ids,
        "skiplist_tasks": skip_tasks,
        "pad_token_id": int(tok.pad_token_id if tok.pad_token_id is not None else 0),
        "steps": steps,
    }


class _LastHiddenState:
    """Positional-argument wrapper of the Hugging Face model for ``torch.onnx.export``."""

    @staticmethod
    def build(hf_model: Any, names: Sequence[str]) -> Any:
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = hf_model

            def forward(self, *args):
                return self.model(**dict(zip(names, args))).last_hidden_state

        return Wrapper().eval()


def export(model: Any, folder: str | os.PathLike, spec: dict[str, Any],
           quantize: str | None = None) -> str:
    """Write the transformer of ``model`` to ``folder``/model.onnx (fp32; plus the int8 copy
    when ``quantize="int8"``) and the tokenizer to tokenizer.json. Returns the file name the
    runtime loads."""
    import torch

    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be None or 'int8'; got {quantize!r}")
    _onnxruntime()  # before the export's minutes, not after
    os.makedirs(folder, exist_ok=True)
    names = spec["input_names"]
    wrapper = _LastHiddenState.build(model[0].model, names)
    sample = model[0].preprocess(["export sample text", "a"], task="document")
    args = tuple(sample[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, OUTPUT_NAME]}
    fp32 = os.path.join(folder, ONNX_FILES[None])
    # The TorchScript exporter is used for its exact, proven graphs of encoder models; its
    # deprecation and tracer notes are not the user's concern.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, args, fp32, input_names=list(names),
                          output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.save(os.path.join(folder, TOKENIZER_FILE))
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        # Per-channel scales: one scale per output row keeps token cosines to the fp32 model
        # near 0.99, where a single scale per tensor falls to about 0.95.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on root
        try:
            quantize_dynamic(fp32, os.path.join(folder, ONNX_FILES["int8"]),
                             weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
    return ONNX_FILES[quantize]


# ---------------------------------------------------------------------------- runtime (numpy)
class OnnxTextModel:
    """Texts -> per-token vectors in model space (before pooling and PCA), with onnxruntime.

    folder: holds ``model_file`` and tokenizer.json; spec: :func:`model_spec`'s dict;
    projections: the Dense layers' (weight (out, in), bias or None), in order.
    num_threads: onnxruntime intra-op threads (None: every core of the machine).
    """

    def __init__(self, folder: str | os.PathLike, model_file: str, spec: dict[str, Any],
                 projections: Sequence[tuple[np.ndarray, np.ndarray | None]],
                 num_threads: int | None = None, batch_size: int = 32,
                 show_progress: bool = False) -> None:
        ort = _onnxruntime()
        from tokenizers import Tokenizer

        self.spec = spec
        self.projections = [(np.asarray(w, np.float32), b) for w, b in projections]
        self.batch_size = int(batch_size)
        self.show_progress = bool(show_progress)
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, TOKENIZER_FILE))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(num_threads or os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(os.path.join(folder, model_file), opts,
                                            providers=["CPUExecutionProvider"])

    def _token_ids(self, texts: Sequence[str], task: str) -> list[np.ndarray]:
        prompt = self.spec["prompts"][task]
        expansion = self.spec["expansion"] if task == "query" else None
        if expansion is not None and expansion["strategy"] == "fixed":
            max_len = expansion["length"]
        else:
            max_len = self.spec["max_length"][task]
            if expansion is not None:
                max_len = max(max_len, expansion["length"])
        self.tokenizer.enable_truncation(max_len)
        texts = [prompt + t for t in texts] if prompt else list(texts)
        encs = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    def _batch(self, ids: Sequence[np.ndarray], task: str
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Padded model inputs of one batch and its (B, T) bool scoring mask."""
        expansion = self.spec["expansion"] if task == "query" else None
        width = max(len(i) for i in ids)
        if expansion is not None:
            width = max(width, expansion["length"])
        input_ids = np.full((len(ids), width), self.spec["pad_token_id"], dtype=np.int64)
        attention = np.zeros((len(ids), width), dtype=np.int64)
        for r, i in enumerate(ids):
            input_ids[r, :len(i)] = i
            attention[r, :len(i)] = 1
        score = attention.astype(bool)
        if expansion is not None:
            positions = (attention == 0) & (np.arange(width) < expansion["length"])
            input_ids[positions] = expansion["token_id"]
            score |= positions
            if expansion["attend"]:
                attention[positions] = 1
        skip = self.spec["skiplist_ids"]
        if skip and task in self.spec["skiplist_tasks"]:
            score &= ~np.isin(input_ids, skip)
        feeds = {"input_ids": input_ids, "attention_mask": attention,
                 "token_type_ids": np.zeros_like(input_ids)}
        return {n: feeds[n] for n in self.spec["input_names"]}, score

    def _post(self, tokens: np.ndarray) -> np.ndarray:
        for step in self.spec["steps"]:
            if step[0] == "dense":
                w, b = self.projections[step[1]]
                tokens = tokens @ w.T
                if b is not None:
                    tokens = tokens + b
                if step[2] == "tanh":
                    tokens = np.tanh(tokens)
            else:
                tokens = l2_normalize(tokens)
        return np.ascontiguousarray(tokens, dtype=np.float32)

    def encode(self, texts: Sequence[str], task: str) -> list[np.ndarray]:
        """Token vectors of ``texts`` for ``task`` ("query" or "document"): a list, in input
        order, of (n_scored_tokens, dim) float32 arrays. Texts are batched longest first, so
        a batch pads to lengths close to its own."""
        ids = self._token_ids(texts, task)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[np.ndarray | None] = [None] * len(ids)
        starts = range(0, len(order), self.batch_size)
        if self.show_progress and len(starts) > 1:  # one batch (a search) is not long work
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f"encoding {task}s", unit="batch")
        for start in starts:
            chunk = order[start:start + self.batch_size]
            feeds, score = self._batch([ids[i] for i in chunk], task)
            hidden = self.session.run([OUTPUT_NAME], feeds)[0]
            for row, i in enumerate(chunk):
                out[i] = self._post(hidden[row][score[row]])
        return out  # type: ignore[return-value]

    def scored_token_ids(self, text: str, task: str) -> tuple[list[int], list[int]]:
        """(model input ids of one text, the positions ``encode`` returns rows for): marker,
        truncation, expansion and the skip list applied as in ``encode``."""
        feeds, score = self._batch(self._token_ids([text], task), task)
        return ([int(i) for i in feeds["input_ids"][0]],
                [int(p) for p in np.flatnonzero(score[0])])
