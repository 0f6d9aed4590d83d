"""Loading Stanford ColBERT, PyLate and plain Hugging Face checkpoints (tiny, random, built
here): markers, lengths, query expansion and projection against a manual torch computation,
and the ONNX backend against the torch one."""
from __future__ import annotations

import string

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")

import _tiny_checkpoints as tiny  # noqa: E402
from gingham.text.checkpoints import checkpoint_format, loaded_settings  # noqa: E402
from gingham.text.encoder import Encoder  # noqa: E402

QUERY = "who built the eiffel tower?"
DOC = "the eiffel tower is in paris, france. bees make honey."


def _manual(folder, text: str, prefix: str, weight: np.ndarray | None, *, width=None,
            strip_bert=False, skip_punct=False) -> np.ndarray:
    """Independent oracle: tokenizer.json + BertModel + projection + L2 norm, masked as
    ColBERT does ([MASK] expansion up to ``width``, punctuation dropped from documents)."""
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    words = tiny._vocab()
    # The marker is one token id after [CLS]; truncation keeps [CLS] ... [SEP].
    content = ([words.index(prefix.strip())] if prefix else []) + tok.encode(
        text, add_special_tokens=False).ids
    if width is not None:
        content = content[:width - 2]
    ids = [words.index("[CLS]"), *content, words.index("[SEP]")]
    attention = [1] * len(ids)
    scored = [True] * len(ids)
    if width is not None:
        pad = width - len(ids)
        ids += [words.index("[MASK]")] * pad
        attention += [0] * pad
        scored += [True] * pad
    if skip_punct:
        punct = {words.index(p) for p in string.punctuation}
        scored = [s and i not in punct for s, i in zip(scored, ids)]
    if strip_bert:
        state = {k.removeprefix("bert."): v for k, v in
                 load_file(str(folder / "model.safetensors")).items() if k.startswith("bert.")}
        model = BertModel(BertConfig.from_pretrained(folder))
        model.load_state_dict(state, strict=False)
    else:
        model = BertModel.from_pretrained(folder)
    model.eval()
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention]),
                       token_type_ids=torch.zeros(1, len(ids), dtype=torch.long)
                       ).last_hidden_state[0].numpy()
    if weight is not None:
        hidden = hidden @ weight.T
    hidden = hidden / np.linalg.norm(hidden, axis=1, keepdims=True)
    return hidden[np.asarray(scored)]


def _same_on_onnx(folder, torch_enc: Encoder) -> None:
    onnx_enc = Encoder(str(folder), backend="onnx", show_progress=False)
    for task, text in (("query", QUERY), ("document", DOC)):
        ref = torch_enc._encode([text], task)[0]
        got = onnx_enc._encode([text], task)[0]
        assert got.shape == ref.shape
        assert float((got * ref).sum(axis=1).min()) >= 0.999


def test_stanford_colbert(tmp_path):
    folder = tmp_path / "colbert"
    weight = tiny.stanford_colbert(folder, query_maxlen=12, doc_maxlen=40)
    assert checkpoint_format(str(folder)) == "stanford-colbert"
    enc = Encoder(str(folder), show_progress=False)
    s = loaded_settings(enc)
    assert (s["query_prefix"], s["document_prefix"]) == ("[unused0] ", "[unused1] ")
    assert s["query_expansion"] == {"strategy": "fixed", "attend": False, "length": 12,
                                    "token_id": tiny._vocab().index("[MASK]")}
    assert s["document_max_length"] == 40
    assert s["skiplist_size"] == len(string.punctuation)
    assert s["dim"] == tiny.PROJECTED and enc.projection == "model"
    q = enc.encode_query(QUERY)
    assert q.shape == (12, tiny.PROJECTED)
    np.testing.assert_allclose(q, _manual(folder, QUERY, "[unused0] ", weight, width=12,
                                          strip_bert=True), atol=1e-5)
    d = enc.encode_documents([DOC])[0]
    np.testing.assert_allclose(d, _manual(folder, DOC, "[unused1] ", weight, strip_bert=True,
                                          skip_punct=True), atol=1e-5)
    _same_on_onnx(folder, enc)


def test_pylate(tmp_path):
    folder = tmp_path / "pylate"
    weight = tiny.pylate(folder, query_length=16, document_length=30)
    assert checkpoint_format(str(folder)) == "pylate"
    enc = Encoder(str(folder), show_progress=False)
    s = loaded_settings(enc)
    assert (s["query_prefix"], s["document_prefix"]) == ("[Q] ", "[D] ")
    assert s["query_expansion"]["length"] == 16 and s["query_expansion"]["strategy"] == "fixed"
    assert s["document_max_length"] == 30 and s["dim"] == tiny.PROJECTED
    q = enc.encode_query(QUERY)
    np.testing.assert_allclose(q, _manual(folder, QUERY, "[Q] ", weight, width=16), atol=1e-5)
    d = enc.encode_documents([DOC])[0]
    np.testing.assert_allclose(d, _manual(folder, DOC, "[D] ", weight, skip_punct=True),
                               atol=1e-5)
    _same_on_onnx(folder, enc)


def test_plain_hugging_face(tmp_path):
    folder = tmp_path / "hf"
    tiny.hugging_face(folder)
    assert checkpoint_format(str(folder)) == "hugging-face"
    enc = Encoder(str(folder), show_progress=False)
    s = loaded_settings(enc)
    assert s["query_prefix"] == "" and s["query_expansion"] is None
    assert s["dim"] == tiny.HIDDEN and enc.projection == "none"
    np.testing.assert_allclose(enc.encode_query(QUERY), _manual(folder, QUERY, "", None),
                               atol=1e-5)
    _same_on_onnx(folder, enc)


def test_onnx_export_saved_and_reloaded_without_model_folder(tmp_path):
    import shutil
    folder = tmp_path / "colbert"
    tiny.stanford_colbert(folder)
    enc = Encoder(str(folder), backend="onnx", show_progress=False, pca_dim=None)
    ref = enc.encode_queries([QUERY, "bees"])
    enc.save(tmp_path / "saved")
    shutil.rmtree(folder)  # the saved encoder needs the export only, not the checkpoint
    again = Encoder.load(tmp_path / "saved")
    for a, b in zip(again.encode_queries([QUERY, "bees"]), ref):
        np.testing.assert_array_equal(a, b)
    assert again.dim == tiny.PROJECTED
