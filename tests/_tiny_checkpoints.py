"""Tiny randomly initialised checkpoints (2-layer BERT, hidden 32, WordPiece vocab) written in
the Stanford ColBERT, PyLate and plain Hugging Face formats, for the loader tests."""
from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

WORDS = ["the", "a", "of", "is", "in", "paris", "tower", "eiffel", "france", "city", "bees",
         "honey", "make", "chess", "game", "board", "python", "language", "who", "built",
         "what", "capital", "river", "ice", "snow", "##s", "##ed", "##ing"]
SPECIAL = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[Q]", "[D]"]
HIDDEN = 32
PROJECTED = 16


def _vocab() -> list[str]:
    return SPECIAL + list(string.punctuation) + WORDS


def _backbone(folder: Path, seed: int, architectures: list[str] | None = None):
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = _vocab()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    ids = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]",
                                  cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                  mask_token="[MASK]", model_max_length=64)
    tok.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(_vocab()), hidden_size=HIDDEN, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64)
    model = BertModel(config).eval()
    if architectures:
        model.config.architectures = architectures
    return model


def stanford_colbert(folder: Path, seed: int = 0, query_maxlen: int = 12,
                     doc_maxlen: int = 40) -> np.ndarray:
    """An ``HF_ColBERT`` checkpoint (BertModel weights under ``bert.`` and the projection as
    ``linear.weight`` in one state dict, ``artifact.metadata``). Returns the projection
    (PROJECTED, HIDDEN) float32."""
    import torch
    from safetensors.torch import save_file

    model = _backbone(folder, seed, ["HF_ColBERT"])
    model.config.save_pretrained(folder)
    weight = torch.randn(PROJECTED, HIDDEN, generator=torch.Generator().manual_seed(seed + 1))
    state = {f"bert.{k}": v.contiguous() for k, v in model.state_dict().items()}
    state["linear.weight"] = weight
    save_file(state, str(folder / "model.safetensors"))
    (folder / "artifact.metadata").write_text(json.dumps({
        "query_token_id": "[unused0]", "doc_token_id": "[unused1]",
        "query_maxlen": query_maxlen, "doc_maxlen": doc_maxlen, "dim": PROJECTED,
        "attend_to_mask_tokens": False, "mask_punctuation": True, "similarity": "cosine"}),
        encoding="utf-8")
    return weight.numpy()


def pylate(folder: Path, seed: int = 0, query_length: int = 10,
           document_length: int = 30) -> np.ndarray:
    """A PyLate checkpoint (sentence-transformers layout: Transformer + ``1_Dense`` with the
    ColBERT keys in config_sentence_transformers.json). Returns the Dense weight."""
    import torch
    from safetensors.torch import save_file

    model = _backbone(folder, seed)
    model.save_pretrained(folder)
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False}), encoding="utf-8")
    dense = folder / "1_Dense"
    dense.mkdir()
    weight = torch.randn(PROJECTED, HIDDEN, generator=torch.Generator().manual_seed(seed + 1))
    save_file({"linear.weight": weight}, str(dense / "model.safetensors"))
    (dense / "config.json").write_text(json.dumps({
        "in_features": HIDDEN, "out_features": PROJECTED, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity"}), encoding="utf-8")
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"}]),
        encoding="utf-8")
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "model_type": "ColBERT", "query_prefix": "[Q] ", "document_prefix": "[D] ",
        "query_length": query_length, "document_length": document_length,
        "attend_to_expansion_tokens": False, "similarity_fn_name": "MaxSim",
        "skiplist_words": list(string.punctuation)}), encoding="utf-8")
    return weight.numpy()


def hugging_face(folder: Path, seed: int = 0) -> None:
    """A plain Hugging Face BertModel checkpoint (no projection, no markers)."""
    model = _backbone(folder, seed)
    model.save_pretrained(folder)
