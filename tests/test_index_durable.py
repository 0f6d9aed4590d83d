"""gingham.Index on the durable store: equivalence with a rebuild, ids, upsert, metadata,
texts, refresh, reopen in another process, compaction."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gingham
from gingham.storage import CorruptionError
from plaid_data import clustered_docs, file_states, queries_from


@pytest.fixture(scope="module")
def corpus():
    docs = clustered_docs(400, 32, 30, seed=21)
    return docs, queries_from(docs, 8, 8, seed=22)


def rebuilt_with_same_codec(path, first_ids, first_docs, ids, docs, **kw):
    """An index over exactly (ids, docs) in one segment whose codec is the one trained on
    first_docs (same seed -> same codec): train, drop everything, add the survivors."""
    idx = gingham.Index.create(path, dim=32, **kw)
    idx.add(first_ids, first_docs)
    idx.delete(first_ids)
    idx.compact()
    assert len(idx) == 0 and idx.stats()["n_segments"] == 0
    idx.add(ids, docs)
    return idx


def test_equivalence_with_rebuild_after_adds_deletes_and_compact(tmp_path, corpus):
    docs, queries = corpus
    kw = dict(nbits=2, n_centroids=64, seed=5)
    idx = gingham.Index.create(tmp_path / "a", dim=32, **kw)
    first = [f"d{i}" for i in range(150)]
    idx.add(first, docs[:150])
    vec = {f"d{i}": docs[i] for i in range(400)}
    rng = np.random.default_rng(0)
    for a in range(150, 400, 50):
        idx.add([f"d{i}" for i in range(a, a + 50)], docs[a:a + 50])
        live = idx.ids()
        idx.delete(list(rng.choice(live, size=15, replace=False)))
    idx.add(["d3"], [docs[3]], upsert=True) if "d3" in idx.ids() else None
    survivors = idx.ids()
    assert len(survivors) == len(idx) == 400 - 5 * 15
    assert idx.stats()["n_segments"] == 6 + ("d3" in survivors)
    ref = rebuilt_with_same_codec(tmp_path / "b", first, docs[:150], survivors,
                                  [vec[i] for i in survivors], **kw)
    for k in (1, 10, 500):
        assert idx.search(queries, k=k, mode="exact") == ref.search(queries, k=k, mode="exact")
    idx.compact()
    st = idx.stats()
    assert st["n_segments"] == 1 and st["n_deleted"] == 0 and idx.ids() == survivors
    for mode in ("exact", "plaid"):
        for k in (3, 10, 100):
            assert idx.search(queries, k=k, mode=mode) == ref.search(queries, k=k, mode=mode)
    again = gingham.Index.open(tmp_path / "a")
    assert again.search(queries, k=10) == ref.search(queries, k=10)
    again.verify()


def test_string_ids_survive_delete_compact_reopen(tmp_path, corpus):
    docs, queries = corpus
    names = ["plain", "with space", "ünïcødé", "emoji 🙂", "a/b\\c", "quote'\"", "x" * 300,
             "0", "-1", "tab\there"]
    for storage in ("residual", "int8"):
        path = tmp_path / storage
        idx = gingham.Index.create(path, dim=32, storage=storage, n_centroids=16)
        idx.add(names, docs[:len(names)], metadata=[{"i": i} for i in range(len(names))])
        idx.delete(["0", "quote'\""])
        kept = [n for n in names if n not in ("0", "quote'\"")]
        assert idx.ids() == kept
        idx.compact()
        assert idx.ids() == kept
        idx = gingham.Index.open(path)
        assert idx.ids() == kept and len(idx) == len(kept)
        got = {h.id for h in idx.search(queries[0], k=100, mode="exact")}
        assert got == set(kept)
        for i, n in enumerate(names):
            if n in kept:
                assert idx.get(n) == {"id": n, "metadata": {"i": i}, "text": None}
                np.testing.assert_allclose(idx.tokens(n), docs[i], atol=0.5)
        with pytest.raises(KeyError):
            idx.get("0")


def test_upsert_metadata_texts(tmp_path, corpus):
    docs, queries = corpus
    idx = gingham.Index.create(tmp_path / "u", dim=32, storage="fp32")
    idx.add(["a", "b"], docs[:2], metadata=[{"v": 1}, None], texts=["first", None])
    assert idx.get("a") == {"id": "a", "metadata": {"v": 1}, "text": "first"}
    assert idx.get("b") == {"id": "b", "metadata": {}, "text": None}
    idx.add(["a", "c"], [docs[5], docs[6]], metadata=[{"v": 2}, {"v": 3}],
            texts=["second", "c"], upsert=True)
    assert len(idx) == 3 and idx.ids() == ["b", "a", "c"]
    assert idx.get("a") == {"id": "a", "metadata": {"v": 2}, "text": "second"}
    np.testing.assert_array_equal(idx.tokens("a"), docs[5])
    hits = idx.rerank(docs[5], ["a", "b", "c"])
    assert hits[0].id == "a"
    assert idx.stats()["n_deleted"] == 1


def test_duplicate_id_raises_before_anything_is_written(tmp_path, corpus):
    docs, _ = corpus
    for storage in ("residual", "fp16"):
        path = tmp_path / storage
        idx = gingham.Index.create(path, dim=32, storage=storage, n_centroids=16)
        idx.add(["a", "b"], docs[:2])
        before, commit = file_states(path), idx.stats()["commit"]
        with pytest.raises(ValueError, match="already in the index"):
            idx.add(["c", "b"], docs[2:4])
        assert file_states(path) == before and idx.stats()["commit"] == commit
        assert idx.ids() == ["a", "b"]
        with pytest.raises(KeyError):
            idx.delete(["a", "zz"])
        assert idx.ids() == ["a", "b"] and idx.stats()["commit"] == commit
        assert idx.delete(["a", "zz"], missing="ignore") == 1
        assert idx.ids() == ["b"]


def test_refresh_and_other_process(tmp_path, corpus):
    docs, queries = corpus
    path = tmp_path / "shared"
    writer = gingham.Index.create(path, dim=32, n_centroids=32, model="m1",
                                  settings={"encoder": {"name": "x", "dim": 32}})
    writer.add([f"d{i}" for i in range(50)], docs[:50])
    reader = gingham.Index.open(path)
    writer.add([f"d{i}" for i in range(50, 80)], docs[50:80])
    writer.delete(["d0"])
    assert len(reader) == 50 and len(writer) == 79
    reader.refresh()
    assert len(reader) == 79
    assert reader.search(queries, k=5) == writer.search(queries, k=5)
    assert reader.settings["encoder"] == {"name": "x", "dim": 32}
    assert reader.settings["model"] == "m1" and reader.settings["storage"] == "residual"
    q = json.dumps(queries[0].tolist())
    code = (f"import json, numpy as np, gingham\n"
            f"idx = gingham.Index.open({str(path)!r})\n"
            f"q = np.array(json.loads({q!r}), dtype=np.float32)\n"
            f"print(json.dumps([len(idx), idx.ids()[:3], [h.id for h in idx.search(q, k=5)]]))\n"
            f"idx.add(['child'], [q])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    n, first, top = json.loads(out)
    assert n == 79 and first == ["d1", "d2", "d3"]
    assert top == [h.id for h in writer.search(queries[0], k=5)]
    assert "child" not in writer.ids()
    writer.refresh()
    assert "child" in writer.ids() and writer.search(queries[0], k=1)[0].id == "child"


def test_compact_retrain_keeps_quality(tmp_path, corpus):
    docs, queries = corpus
    path = tmp_path / "rt"
    idx = gingham.Index.create(path, dim=32, nbits=4, n_centroids=8, seed=1)
    idx.add([f"d{i}" for i in range(20)], docs[:20])  # codec from a small first add
    idx.add([f"d{i}" for i in range(20, 400)], docs[20:])
    idx.delete([f"d{i}" for i in range(0, 400, 7)])
    codec_before = sorted(os.listdir(path / "codec"))
    exact = gingham.Index.create(tmp_path / "flat", dim=32, storage="fp32")
    exact.add(idx.ids(), [docs[int(i[1:])] for i in idx.ids()])
    idx.compact(retrain=True)
    assert sorted(os.listdir(path / "codec")) != codec_before
    assert len(os.listdir(path / "codec")) == 1
    assert idx.stats()["n_segments"] == 1 and len(idx) == len(exact)
    recall = np.mean([len({h.id for h in idx.search(q, k=10, mode="exact")} &
                          {h.id for h in exact.search(q, k=10)}) / 10 for q in queries])
    assert recall >= 0.8
    idx.verify()
    assert gingham.Index.open(path).search(queries, k=4) == idx.search(queries, k=4)


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        gingham.Index.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a gingham index"):
        gingham.Index.open(tmp_path / "plain")
    with pytest.raises(ValueError, match="storage"):
        gingham.Index.create(tmp_path / "x", dim=8, storage="fp64")
    with pytest.raises(ValueError, match="reserved"):
        gingham.Index.create(tmp_path / "y", dim=8, storage="fp32", settings={"dim": 3})
    idx = gingham.Index.create(tmp_path / "z", dim=8, storage="fp32")
    idx.add(["a"], [np.ones((2, 8), np.float32)])
    again = gingham.Index.create(tmp_path / "z", dim=8, storage="fp32", overwrite=True)
    assert len(again) == 0
    with pytest.raises(FileExistsError):
        gingham.Index.create(tmp_path / "z", dim=8)


def test_verify_names_a_flipped_byte(tmp_path, corpus):
    docs, _ = corpus
    path = tmp_path / "v"
    idx = gingham.Index.create(path, dim=32, storage="fp16")
    idx.add([f"d{i}" for i in range(30)], docs[:30])
    idx.verify()
    seg = next((path / "segments").iterdir())
    f = seg / "tokens.npy"
    data = bytearray(f.read_bytes())
    data[-7] ^= 0x10
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as info:
        gingham.Index.open(path).verify()
    assert "tokens.npy" in str(info.value)


def test_overwrite_waits_for_the_writer_lock(tmp_path):
    from gingham.storage import LockTimeoutError
    from gingham.storage.lock import WriterLock

    path = tmp_path / "idx"
    docs = clustered_docs(6, 16, 2, seed=3)
    idx = gingham.Index.create(path, dim=16, storage="fp32")
    idx.add([f"d{i}" for i in range(6)], docs)
    idx.close()
    held = WriterLock(path)
    held.acquire(0)  # another writer, mid-change
    try:
        with pytest.raises(LockTimeoutError, match="another writer"):
            gingham.Index.create(path, dim=16, storage="fp32", overwrite=True, lock_timeout=0)
    finally:
        held.release()
    assert sorted(gingham.Index.open(path).ids()) == [f"d{i}" for i in range(6)]
    fresh = gingham.Index.create(path, dim=16, storage="fp32", overwrite=True, lock_timeout=0)
    assert len(fresh) == 0
