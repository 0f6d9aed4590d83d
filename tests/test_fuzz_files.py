"""Hypothesis fuzzing of every reader of on-disk data (.npy headers, manifests, catalog rows and
bytes, codec and segment arrays through Index.open + search + verify; one array of a segment or
codec in memory through the checks at open and a search; the manifest of a real segment or
codec folder; the sharded manifest; the saved encoder and BM25 files) with crafted files.

The contract of each reader is in tests/fuzz/readers.py. The default run uses a small profile;
``-m slow`` runs a larger one. Cases found by fuzzing are kept in tests/fuzz/corpus/ and
replayed first (test_corpus_replays).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.arrays import FolderArraysReader
from fuzz.readers import (
    SEED_ARRAYS,
    CatalogRowReader,
    FolderManifestReader,
    IndexFileReader,
    ManifestReader,
    NpyReader,
    ShardedManifestReader,
    build_index,
    npy_bytes,
)
from fuzz.text_readers import BM25FilesReader, BM25SourceReader, EncoderFilesReader, edited

CORPUS = Path(__file__).parent / "fuzz" / "corpus"
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SLOW = settings(FAST, max_examples=1500, derandomize=False)


@pytest.fixture(autouse=True)
def _slow_only_when_selected(request):
    """Slow tests run only under ``-m slow`` (a plain run does not deselect them)."""
    if request.node.get_closest_marker("slow") and "slow" not in request.config.option.markexpr:
        pytest.skip("large fuzz profile: run with -m slow")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def npy(root):
    return NpyReader(root)


@pytest.fixture(scope="module")
def manifest(root):
    return ManifestReader(root)


@pytest.fixture(scope="module", params=["residual", "fp16", "int8"])
def index_file(root, request):
    return IndexFileReader(root, request.param)


@pytest.fixture(scope="module", params=["residual", "fp32"])
def catalog_row(root, request):
    return CatalogRowReader(root, request.param)


@pytest.fixture(scope="module", params=[("residual", "segment"), ("residual", "codec"),
                                        ("residual", "idmaps"), ("residual", "internal-ids"),
                                        ("fp16", "segment"), ("int8", "segment"),
                                        ("fp32", "idmaps")], ids="-".join)
def folder_arrays(root, request):
    return FolderArraysReader(root, *request.param)


@pytest.fixture(scope="module", params=[("residual", "segment"), ("residual", "codec"),
                                        ("fp16", "segment")], ids="-".join)
def folder_manifest(root, request):
    return FolderManifestReader(root, *request.param)


@pytest.fixture(scope="module")
def sharded_manifest(root):
    return ShardedManifestReader(root)


@pytest.fixture(scope="module", params=["encoder", "bm25"])
def text_folder(root, request):
    return (EncoderFilesReader if request.param == "encoder" else BM25FilesReader)(root)


@pytest.fixture(scope="module")
def bm25_source(root):
    return BM25SourceReader(root)


# ---- .npy headers ------------------------------------------------------------------------------

def _mutated(seed: bytes, edits) -> bytes:
    return edited(seed, edits, None)


npy_edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6)
header_dicts = st.fixed_dictionaries({
    "descr": st.sampled_from(["<f4", "<i8", "|u1", ">f4", "<f2", "|O", "<c8", "V8", "<U3",
                              "[('a', '<f4')]", "'<f4'", "", "<f4<"]),
    "fortran_order": st.sampled_from(["False", "True", "0", "None"]),
    "shape": st.sampled_from(["(3, 4)", "(12,)", "(4, 3)", "()", "(-1, 4)", "(3, 4, 0)",
                              "(99999999999999999999,)", "(3.0, 4)", "[3, 4]", "(3, 4"]),
})


def crafted_header(fields: dict, version: int, pad: int) -> bytes:
    text = ("{'descr': " + (fields["descr"] if fields["descr"].startswith("[") else
                            repr(fields["descr"]))
            + f", 'fortran_order': {fields['fortran_order']}, 'shape': {fields['shape']}, }}")
    text += " " * pad + "\n"
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode("latin1")


def _npy_edits(npy, seed, edits):
    npy(_mutated(npy_bytes(SEED_ARRAYS[seed]), edits), seed)


def _npy_headers(npy, fields, version, pad, tail):
    npy(crafted_header(fields, version, pad) + np.arange(12, dtype=np.float32).tobytes()[:tail],
        "f32")


@FAST
@given(seed=st.sampled_from(sorted(SEED_ARRAYS)), edits=npy_edits)
def test_npy_byte_edits(npy, seed, edits):
    _npy_edits(npy, seed, edits)


@FAST
@given(fields=header_dicts, version=st.sampled_from([1, 2, 3, 7]), pad=st.integers(0, 80),
       tail=st.integers(0, 60))
def test_npy_crafted_headers(npy, fields, version, pad, tail):
    _npy_headers(npy, fields, version, pad, tail)


@FAST
@given(data=st.binary(max_size=300))
def test_npy_random_bytes(npy, data):
    npy(data, "f32")
    npy(b"\x93NUMPY\x01\x00" + data, "i64")


# ---- manifests ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 1 << 63) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3), max_leaves=8)
good_entry = {"file": "a.npy", "dtype": "<f4", "shape": [3, 4], "bytes": 176,
              "sha256": "0" * 64}
entries = st.fixed_dictionaries({}, optional={
    "file": st.sampled_from(["a.npy", "../a.npy", "/etc/passwd", "b.npy", "a"]) | json_values,
    "dtype": st.sampled_from(["<f4", "|O", "<U4", "V4", "float32"]) | json_values,
    "shape": st.sampled_from([[3, 4], [12], [-1], [3.0, 4], [1 << 70]]) | json_values,
    "bytes": st.sampled_from([176, 0, -5, 1 << 70, 176.0]) | json_values,
    "sha256": st.sampled_from(["0" * 64, "x" * 64, "0"]) | json_values})


def manifest_doc(fmt, names_entries) -> bytes:
    return json.dumps({"format": fmt, "kind": "segment",
                       "arrays": dict(names_entries)}).encode()


@FAST
@given(fmt=st.sampled_from([1, 2, "1", None]),
       arrays=st.lists(st.tuples(st.sampled_from(["a", "b", "_a", "A", "a/b", ""]),
                                 st.one_of(entries, st.just(good_entry))), max_size=3))
def test_manifest_crafted_entries(manifest, fmt, arrays):
    manifest(manifest_doc(fmt, arrays))


@FAST
@given(edits=npy_edits, cut=st.integers(0, 400))
def test_manifest_byte_edits(manifest, edits, cut):
    seed = manifest_doc(1, [("a", good_entry)])
    manifest(_mutated(seed, edits)[:cut])


# ---- index files (catalog, codec, segments) through open + search + verify ---------------------

damage = st.binary(min_size=1, max_size=8) | st.sampled_from(
    [b"\x00" * 8, b"\xff" * 8, np.float32(np.nan).tobytes(), np.float32(3e38).tobytes(),
     np.float16(np.inf).tobytes(), b"\x7f\xff\xff\xff"])


@FAST
@given(target=st.integers(0, 1000), pos=st.integers(0, 1 << 20), data=damage,
       large=st.booleans())
def test_index_file_damage(index_file, target, pos, data, large):
    index_file(target, pos, data, large)


sql_values = (st.none() | st.integers(-(1 << 63), (1 << 63) - 1) | st.floats()
              | st.text(max_size=12) | st.binary(max_size=6)
              | st.sampled_from(["{}", "null", "[]", "1", "../x", "codec", "d1", "d2"]))


@FAST
@given(column=st.integers(0, 200), row=st.integers(0, 100), value=sql_values)
def test_catalog_row_values(catalog_row, column, row, value):
    catalog_row(column, row, value)


# ---- one array of a segment or codec, in memory -----------------------------------------------

array_values = st.binary(min_size=1, max_size=8) | st.sampled_from(
    [b"\x00" * 8, b"\xff" * 8, np.float32(np.nan).tobytes(), np.float32(np.inf).tobytes(),
     np.float32(3e38).tobytes(), np.float16(np.inf).tobytes(), b"\xff\xff\xff\x7f"])
array_edits = st.lists(st.tuples(st.integers(0, 1 << 16), array_values), max_size=4)


def _byte_edits(edits):
    return [(pos + i, b) for pos, data in edits for i, b in enumerate(data)]


@FAST
@given(target=st.integers(0, 255), edits=array_edits,
       length=st.none() | st.integers(0, 64))
def test_folder_array_damage(folder_arrays, target, edits, length):
    folder_arrays(target, _byte_edits(edits), length)


# ---- the manifest of a real segment / codec folder, and the sharded manifest -------------------

@FAST
@given(edits=npy_edits, cut=st.none() | st.integers(0, 3000))
def test_folder_manifest_edits(folder_manifest, edits, cut):
    folder_manifest(_mutated(folder_manifest.seed, edits)[:cut])


SHARDED = {"gingham_sharded": 1, "routing": "blake2b-64-mod", "n_shards": 2, "dim": 8,
           "storage": "fp32", "kind_settings": {}, "next_seq": 0, "codec_sha256": None,
           "shards": ["shard-0000", "shard-0001"]}


@FAST
@given(edits=npy_edits, cut=st.none() | st.integers(0, 300))
def test_sharded_manifest_edits(sharded_manifest, edits, cut):
    data = _mutated(json.dumps(SHARDED).encode(), edits)[:cut]
    sharded_manifest(data)


# ---- the text layer's saved files (encoder, BM25, BM25's source.json) ----------------------------

text_edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6)


@FAST
@given(target=st.integers(0, 255), edits=text_edits, cut=st.none() | st.integers(0, 64))
def test_text_folder_damage(text_folder, target, edits, cut):
    text_folder(target, edits, cut)


@FAST
@given(edits=text_edits, cut=st.none() | st.integers(0, 64))
def test_bm25_source_damage(bm25_source, edits, cut):
    bm25_source(edits, cut)


# ---- the corpus of found cases, and the larger profile ----------------------------------------

def _corpus_args(spec: dict) -> list:
    return [bytes.fromhex(a[4:]) if isinstance(a, str) and a.startswith("hex:") else a
            for a in spec["args"]]


def test_corpus_replays(npy, manifest, index_file, sharded_manifest):
    """Every saved case (tests/fuzz/corpus/*.json: reader name + arguments) still holds."""
    cases = sorted(CORPUS.glob("*.json"))
    assert cases, "the corpus folder has no cases"
    for case in cases:
        spec = json.loads(case.read_text())
        args = _corpus_args(spec)
        if spec["reader"] == "npy":
            npy(*args)
        elif spec["reader"] == "manifest":
            manifest(*args)
        elif spec["reader"] == "sharded_manifest":
            sharded_manifest(*args)
        elif spec["reader"] == "index_file" and spec["storage"] == index_file.storage:
            index_file(*args)


def test_fuzzed_index_is_the_same_bytes_every_time(tmp_path):
    """A corpus case names byte offsets, so the index it damages must not change between
    builds (folder names are random outside the harness)."""
    def folder_bytes(path):
        return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix != ".lock"}
    builds = []
    for name in ("a", "b"):
        build_index(tmp_path / name, "fp16")
        builds.append(folder_bytes(tmp_path / name))
    assert builds[0] == builds[1]


def test_array_corpus_replays(root):
    """Saved cases of the in-memory array readers (reader "arrays": storage, group, args)."""
    cases = [json.loads(c.read_text()) for c in sorted(CORPUS.glob("*.json"))]
    cases = [c for c in cases if c["reader"] == "arrays"]
    assert cases
    readers = {}
    for spec in cases:
        key = (spec["storage"], spec["group"])
        if key not in readers:
            readers[key] = FolderArraysReader(root, *key)
        target, edits, length = spec["args"]
        readers[key](target, [tuple(e) for e in edits], length)


def test_catalog_row_corpus_replays(catalog_row):
    """Saved cases of the catalog-row reader (reader "catalog_row": storage, args)."""
    cases = [json.loads(c.read_text()) for c in sorted(CORPUS.glob("*.json"))]
    cases = [c for c in cases if c["reader"] == "catalog_row"]
    assert cases
    for spec in cases:
        if spec["storage"] == catalog_row.storage:
            catalog_row(*spec["args"])


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(target=st.integers(0, 255), edits=array_edits,
       length=st.none() | st.integers(0, 64))
def test_folder_array_damage_slow(folder_arrays, target, edits, length):
    folder_arrays(target, _byte_edits(edits), length)


@pytest.mark.slow
@SLOW
@given(seed=st.sampled_from(sorted(SEED_ARRAYS)), edits=npy_edits)
def test_npy_byte_edits_slow(npy, seed, edits):
    _npy_edits(npy, seed, edits)


@pytest.mark.slow
@SLOW
@given(fields=header_dicts, version=st.sampled_from([1, 2, 3, 7]), pad=st.integers(0, 80),
       tail=st.integers(0, 60))
def test_npy_crafted_headers_slow(npy, fields, version, pad, tail):
    _npy_headers(npy, fields, version, pad, tail)


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(target=st.integers(0, 1000), pos=st.integers(0, 1 << 20), data=damage,
       large=st.booleans())
def test_index_file_damage_slow(index_file, target, pos, data, large):
    index_file(target, pos, data, large)


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(column=st.integers(0, 200), row=st.integers(0, 100), value=sql_values)
def test_catalog_row_values_slow(catalog_row, column, row, value):
    catalog_row(column, row, value)


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(target=st.integers(0, 255), edits=text_edits, cut=st.none() | st.integers(0, 64))
def test_text_folder_damage_slow(text_folder, target, edits, cut):
    text_folder(target, edits, cut)
