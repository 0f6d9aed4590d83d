"""The text layer's saved files (encoder, BM25, BM25's source.json) checked when read back:
every damaged file is a CorruptionError naming it (or, for derived BM25 data under a
Retriever, a warning and a rebuild), and files written before the digests existed still load.
The oracle for "still loads" is the pristine object's output on the same inputs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from _tiny_checkpoints import pylate
from gingham.storage import CorruptionError, FormatVersionError
from gingham.text import saved
from gingham.text.bm25 import BM25Index
from gingham.text.encoder import Encoder
from gingham.text.retriever import Retriever

TEXTS = ["the eiffel tower is in paris", "bees make honey", "chess is a board game",
         "python is a language", "paris is the capital of france", "ice and snow",
         "the river in paris", "honey and snow"]
QUERIES = ["paris tower", "honey", "board game"]


def _flip(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x20
    path.write_bytes(bytes(data))


#: The damages of the index's damage table (docs/hardening.md) that apply to one file alone.
DAMAGES = ["truncate", "flip header", "flip data", "zero-fill", "delete"]


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif how == "flip header":
        path.write_bytes(data[:20] + bytes([data[20] ^ 0x01]) + data[21:])
    elif how == "flip data":
        _flip(path, 0.75)
    elif how == "zero-fill":
        path.write_bytes(bytes(len(data)))
    else:
        path.unlink()


def _legacy(path) -> None:
    """Rewrite a saved JSON file as it was written before digests existed."""
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj.pop("sha256")
    obj.pop("files", None)
    path.write_text(json.dumps(obj), encoding="utf-8")


# ---------------------------------------------------------------------- saved.read_json

FIELDS = {"n": saved.COUNT, "name": saved.TEXT, "flag": saved.optional(saved.BOOL)}


def test_read_json_round_trip_and_digest(tmp_path):
    path = tmp_path / "x.json"
    saved.write_json(path, {"n": 3, "name": "é", "flag": None, "files": {}})
    assert saved.read_json(path, FIELDS) == {"n": 3, "name": "é", "flag": None, "files": {}}
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"n": 3', '"n": 4'), encoding="utf-8")
    with pytest.raises(CorruptionError, match="x.json.*does not match"):
        saved.read_json(path, FIELDS)
    with pytest.raises(ValueError, match="sha256"):
        saved.write_json(path, {"sha256": "0"})


@pytest.mark.parametrize("body, reason", [
    (b"\xff\xfe{}", "not a JSON file"),
    (b'{"n": NaN, "name": "a"}', "not a JSON file"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"n": 1}', "missing key 'name'"),
    (b'{"n": -1, "name": "a"}', "'n': expected an integer >= 0"),
    (b'{"n": true, "name": "a"}', "'n': expected an integer >= 0"),
    (b'{"n": 1, "name": "a", "other": 0}', "unexpected keys"),
    (b'{"n": 1, "name": "a", "sha256": "00"}', "does not match"),
])
def test_read_json_names_the_file_and_the_problem(tmp_path, body, reason):
    path = tmp_path / "x.json"
    path.write_bytes(body)
    with pytest.raises(CorruptionError, match=f"x.json.*{reason}"):
        saved.read_json(path, FIELDS, may_lack=("flag",))


def test_read_json_without_digest_reads_as_written(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"n": 7, "name": "b"}', encoding="utf-8")
    assert saved.read_json(path, FIELDS, may_lack=("flag",)) == {"n": 7, "name": "b"}


def test_read_json_of_a_newer_format_says_upgrade(tmp_path):
    path = tmp_path / "x.json"
    fields = {"format_version": saved.one_of(1), **FIELDS}
    saved.write_json(path, {"format_version": 2, "n": 1, "name": "a", "new_key": 0,
                            "files": {}})
    with pytest.raises(FormatVersionError, match="x.json has format version 2.*up to 1.*Upgrade"):
        saved.read_json(path, fields, may_lack=("flag",), newest_version=1)
    # without newest_version a newer file is only a wrong value
    with pytest.raises(CorruptionError, match="unexpected keys"):
        saved.read_json(path, fields, may_lack=("flag",))
    saved.write_json(path, {"format_version": 1, "n": 1, "name": "a", "files": {}})
    assert saved.read_json(path, fields, may_lack=("flag",), newest_version=1)["n"] == 1


def _as_newer(path) -> None:
    """Rewrite a saved JSON file as a newer gingham might: format version 2, one more key."""
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj.pop("sha256")
    obj.update(format_version=obj["format_version"] + 1, added_later=True)
    saved.write_json(path, obj)


def test_check_files_names_the_damaged_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    listed = {"files": saved.file_digests(tmp_path, ["a.bin"])}
    saved.check_files(tmp_path, listed, ["a.bin"], tmp_path / "x.json")
    (tmp_path / "a.bin").write_bytes(b"abd")
    with pytest.raises(CorruptionError, match="a.bin: sha256 does not match x.json"):
        saved.check_files(tmp_path, listed, ["a.bin"], tmp_path / "x.json")
    with pytest.raises(CorruptionError, match="does not list b.bin"):
        saved.check_files(tmp_path, listed, ["b.bin"], tmp_path / "x.json")


# ---------------------------------------------------------------------- encoder

@pytest.fixture(scope="module")
def saved_encoder(tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("ckpt")
    pylate(checkpoint)
    enc = Encoder(str(checkpoint), pca_dim=4, show_progress=False)
    enc.fit_documents(TEXTS)
    folder = tmp_path_factory.mktemp("encoder")
    enc.save(folder)
    return folder, enc.encode_queries(QUERIES)


ENCODER_FILES = ["encoder.json", "projection_0_weight.npy", "pca_mean.npy",
                 "pca_components.npy"]


@pytest.mark.parametrize("name", ENCODER_FILES)
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_encoder_file_is_named(saved_encoder, tmp_path, name, how):
    folder = tmp_path / "enc"
    shutil.copytree(saved_encoder[0], folder)
    _damage(folder / name, how)
    with pytest.raises(CorruptionError, match=name):
        Encoder.load(folder, show_progress=False)


def test_newer_encoder_files_say_upgrade(saved_encoder, tmp_path):
    folder = tmp_path / "enc"
    shutil.copytree(saved_encoder[0], folder)
    _as_newer(folder / "encoder.json")
    with pytest.raises(FormatVersionError, match="encoder.json has format version 2.*Upgrade"):
        Encoder.load(folder, show_progress=False)


def test_legacy_encoder_files_load_and_encode_the_same(saved_encoder, tmp_path):
    folder = tmp_path / "enc"
    shutil.copytree(saved_encoder[0], folder)
    _legacy(folder / "encoder.json")
    got = Encoder.load(folder, show_progress=False).encode_queries(QUERIES)
    for a, b in zip(got, saved_encoder[1]):
        np.testing.assert_array_equal(a, b)
    # without digests the arrays are still checked for what they must be
    np.save(folder / "pca_components.npy", np.zeros((3, 16), np.float32))
    with pytest.raises(CorruptionError, match="encoder.json.*PCA components"):
        Encoder.load(folder, show_progress=False)
    np.save(folder / "pca_components.npy", np.full((4, 16), np.nan, np.float32))
    with pytest.raises(CorruptionError, match="pca_components.npy.*finite float32"):
        Encoder.load(folder, show_progress=False)


# ---------------------------------------------------------------------- BM25

@pytest.fixture(scope="module")
def saved_bm25(tmp_path_factory):
    bm = BM25Index("english")
    bm.add([f"d{i}" for i in range(len(TEXTS))], TEXTS)
    folder = tmp_path_factory.mktemp("bm25")
    bm.save(folder)
    return folder, [bm.search(q, k=3) for q in QUERIES]


def _bm25_files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_every_bm25_file_is_listed(saved_bm25):
    folder, _ = saved_bm25
    listed = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))["files"]
    assert sorted([*listed, "bm25.json"]) == _bm25_files(folder)


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_bm25_file_is_named(saved_bm25, tmp_path, how):
    for name in _bm25_files(saved_bm25[0]):
        folder = tmp_path / f"bm25-{name.replace('/', '-')}"
        shutil.copytree(saved_bm25[0], folder)
        _damage(folder / name, how)
        with pytest.raises(CorruptionError, match=name.split("/")[-1]):
            BM25Index.load(folder)


def test_newer_bm25_files_say_upgrade(saved_bm25, tmp_path):
    folder = tmp_path / "bm25"
    shutil.copytree(saved_bm25[0], folder)
    _as_newer(folder / "bm25.json")
    with pytest.raises(FormatVersionError, match="bm25.json has format version 2.*Upgrade"):
        BM25Index.load(folder)


def test_legacy_bm25_files_load_and_score_the_same(saved_bm25, tmp_path):
    folder = tmp_path / "bm25"
    shutil.copytree(saved_bm25[0], folder)
    _legacy(folder / "bm25.json")
    bm = BM25Index.load(folder)
    for q, [(want_ids, want_scores)] in zip(QUERIES, saved_bm25[1]):
        [(ids, scores)] = bm.search(q, k=3)
        assert ids == want_ids
        np.testing.assert_array_equal(scores, want_scores)
    # a terms file of the wrong length is still refused without a digest
    terms = folder / "bm25_terms.jsonl"
    terms.write_text("".join(terms.read_text(encoding="utf-8").splitlines(True)[:-1]),
                     encoding="utf-8")
    with pytest.raises(CorruptionError, match="bm25_terms.jsonl.*term rows"):
        BM25Index.load(folder)


# ---------------------------------------------------------------------- Retriever

@pytest.fixture(scope="module")
def retriever_index(tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("rckpt")
    pylate(checkpoint)
    path = tmp_path_factory.mktemp("retriever") / "index"
    with Retriever.build(path, TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))],
                         model=str(checkpoint), pca_dim=None, storage="fp32",
                         show_progress=False) as r:
        want = [[(h["id"], h["score"]) for h in r.search(q, k=4, hybrid=True)]
                for q in QUERIES]
    return path, want


@pytest.mark.parametrize("damage", ["source.json", "bm25s/vocab.index.json", "bm25.json"])
def test_retriever_rebuilds_damaged_bm25_with_a_warning(retriever_index, tmp_path, damage):
    path = tmp_path / "index"
    shutil.copytree(retriever_index[0], path)
    _flip(path / "bm25" / damage)
    with pytest.warns(UserWarning, match=f"{damage.split('/')[-1]}.*rebuil"):
        with Retriever.open(path, show_progress=False) as r:
            got = [[(h["id"], h["score"]) for h in r.search(q, k=4, hybrid=True)]
                   for q in QUERIES]
    assert got == retriever_index[1]
    # the rebuilt BM25 was written back: the next open is silent and scores the same
    with Retriever.open(path, show_progress=False) as r:
        again = [[(h["id"], h["score"]) for h in r.search(q, k=4, hybrid=True)]
                 for q in QUERIES]
    assert again == retriever_index[1]


def test_retriever_keeps_a_newer_bm25_and_says_upgrade(retriever_index, tmp_path):
    path = tmp_path / "index"
    shutil.copytree(retriever_index[0], path)
    state = path / "bm25" / "bm25.json"
    _as_newer(state)
    newer = state.read_bytes()
    with Retriever.open(path, show_progress=False) as r:
        with pytest.raises(FormatVersionError, match="bm25.json.*Upgrade"):
            r.search(QUERIES[0], k=4, hybrid=True)
        # dense search does not need BM25
        assert len(r.search(QUERIES[0], k=4)) == 4
    assert state.read_bytes() == newer
