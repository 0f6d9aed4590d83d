"""Format 1 -> 2: the committed fixture tests/fixtures/index-v1-fp32 (written by the gingham of
format version 1, see make_index_v1.py there) opens with this gingham, is upgraded in place in
one transaction, and then equals an index built now by the same operations."""
from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

import gingham
from gingham.storage import FORMAT_VERSION, FormatVersionError, Snapshot, Store

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_index_v1  # noqa: E402


def _version(path: Path) -> int:
    conn = sqlite3.connect(path / "catalog.sqlite")
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def v1_copy(tmp_path):
    dst = tmp_path / "v1"
    shutil.copytree(FIXTURES / "index-v1-fp32", dst)
    assert _version(dst) == 1
    return dst


def test_a_reader_alone_refuses_version_1_with_a_clear_message(v1_copy):
    with pytest.raises(FormatVersionError, match="format version 1.*upgrade it in place"):
        Snapshot(v1_copy)
    assert _version(v1_copy) == 1  # a snapshot never writes


def test_open_upgrades_version_1_to_an_equal_index(v1_copy, tmp_path):
    with gingham.Index.create(tmp_path / "now", dim=8, storage="fp32") as want:
        make_index_v1.replay(want)
        with gingham.Index.open(v1_copy) as got:
            assert _version(v1_copy) == FORMAT_VERSION
            summary = got.verify()
            assert summary["n_tombstones"] == 4 and summary["n_live"] == 5
            assert got.ids() == want.ids() == ["d2", "d4", "d5", "d7", "d0"]
            for i in want.ids():
                assert got.get(i) == want.get(i)
                assert np.array_equal(got.tokens(i), want.tokens(i))
            rng = np.random.default_rng(0)
            queries = [rng.standard_normal((3, 8)).astype(np.float32) for _ in range(4)]
            assert got.search(queries, k=10) == want.search(queries, k=10)
            where = "json_extract(metadata, '$.lang') = ?"
            assert got.search(queries[0], k=10, where=where, params=["fr"]) == \
                want.search(queries[0], k=10, where=where, params=["fr"])
            # and it stays writable as format 2
            got.delete(["d2"])
            got.compact()
            assert got.ids() == ["d4", "d5", "d7", "d0"]
            assert got.verify()["n_tombstones"] == 0
    # a second open finds version 2 and changes nothing
    before = (v1_copy / "catalog.sqlite").read_bytes()
    Store.open(v1_copy).close()
    assert _version(v1_copy) == FORMAT_VERSION
    assert len((v1_copy / "catalog.sqlite").read_bytes()) == len(before)


def test_a_damaged_version_1_catalog_is_not_upgraded(v1_copy):
    conn = sqlite3.connect(v1_copy / "catalog.sqlite")
    with conn:
        conn.execute("UPDATE documents SET metadata = '{}' WHERE external_id = 'd4'")
    conn.close()
    with pytest.raises(gingham.storage.CorruptionError, match="checksum mismatch"):
        Store.open(v1_copy)
    assert _version(v1_copy) == 1  # rolled back: still the original format


def test_version_1_compressed_index_keeps_its_scores(tmp_path):
    """Format-1 residual segments have no per-token scales: they decode with scale 1, exactly
    as the gingham that wrote them did, also after compact(); new adds get scales."""
    import json

    import make_index_v1_residual as v1r
    path = tmp_path / "v1r"
    shutil.copytree(FIXTURES / "index-v1-residual", path)
    assert _version(path) == 1
    expected = json.loads((FIXTURES / "index-v1-residual.json").read_text())

    def check_same_results(idx):
        got = v1r.results(idx)
        for mode in ("plaid", "exact"):
            assert [[h[0] for h in row] for row in got[mode]] == \
                [[h[0] for h in row] for row in expected[mode]]
            np.testing.assert_allclose([[h[1] for h in row] for row in got[mode]],
                                       [[h[1] for h in row] for row in expected[mode]],
                                       rtol=1e-6)

    with gingham.Index.open(path) as idx:
        assert _version(path) == FORMAT_VERSION
        idx.verify()
        assert all("scales" not in s.arrays for s in idx._view.segments)
        # written before float16 centroids and uint16 IVF ids: both read as written
        assert idx._view.snap.codec["centroids"].dtype == np.float32
        assert all(s.arrays["ivf_doc_ids"].dtype == np.int32 for s in idx._view.segments)
        check_same_results(idx)
        idx.compact()
        idx.verify()
        assert idx._view.segments[0].arrays["ivf_doc_ids"].dtype == np.uint16  # rebuilt
        check_same_results(idx)
        docs = v1r.documents()
        idx.add(["copy-of-r5"], [docs["r5"]])
        assert "scales" in idx._view.segments[-1].arrays
        top = {h.id for h in idx.search(docs["r5"], k=2, mode="exact")}
        assert top == {"r5", "copy-of-r5"}
        idx.verify()
