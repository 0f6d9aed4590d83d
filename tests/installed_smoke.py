"""Checks an installed gingham (a fresh venv with the wheel or sdist and numpy only).

Run by tests/test_wheel.py with the venv's python, outside the source tree:
  python installed_smoke.py search   exact search and a compressed index, against numpy
  python installed_smoke.py simd     the level GINGHAM_SIMD_LEVEL forced, and its MaxSim scores
Prints one JSON line with what it checked.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

import gingham
from gingham import _core


def random_docs(rng: np.random.Generator, n_docs: int, dim: int) -> list[np.ndarray]:
    docs = [rng.standard_normal((int(rng.integers(8, 24)), dim)).astype(np.float32)
            for _ in range(n_docs)]
    return [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]


def oracle_scores(query: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    """float64 MaxSim of one query against every document."""
    q = query.astype(np.float64)
    return np.array([(q @ d.astype(np.float64).T).max(axis=1).sum() for d in docs])


def csr(docs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(docs) + 1, np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    return np.concatenate(docs), offsets


def check_exact(rng: np.random.Generator) -> dict:
    docs = random_docs(rng, 400, 64)
    tokens, offsets = csr(docs)
    query = docs[17][:6] + 0.05 * rng.standard_normal((6, 64)).astype(np.float32)
    expected = oracle_scores(query, docs)
    scores = gingham.maxsim_scores(query, tokens, offsets)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    _, top = gingham.exact_search(query, tokens, offsets, k=5)
    np.testing.assert_array_equal(top[0], np.argsort(-expected, kind="stable")[:5])
    return {"exact_top": int(top[0, 0])}


def check_compressed(rng: np.random.Generator) -> dict:
    docs = random_docs(rng, 600, 64)
    ids = [f"d{i}" for i in range(len(docs))]
    probes = [3, 101, 250, 599]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "idx")
        idx = gingham.Index.create(path, dim=64, storage="residual", nbits=2)
        idx.add(ids, docs)
        idx.close()
        idx = gingham.Index.open(path)
        for i in probes:
            query = docs[i][:8] + 0.02 * rng.standard_normal((8, 64)).astype(np.float32)
            assert int(np.argmax(oracle_scores(query, docs))) == i  # the oracle agrees
            hits = idx.search(query, k=3)
            assert hits[0].id == ids[i], (i, hits)
        n_docs = len(idx)
        idx.close()
    return {"compressed_docs": n_docs, "probes": len(probes)}


def check_simd(rng: np.random.Generator) -> dict:
    wanted = os.environ["GINGHAM_SIMD_LEVEL"]
    assert gingham.simd_level() == wanted, (gingham.simd_level(), wanted)
    docs = random_docs(rng, 300, 96)
    tokens, offsets = csr(docs)
    query = rng.standard_normal((16, 96)).astype(np.float32)
    np.testing.assert_allclose(gingham.maxsim_scores(query, tokens, offsets),
                               oracle_scores(query, docs), rtol=1e-4, atol=1e-4)
    return {"level": gingham.simd_level(), "supported": _core.supported_simd_levels()}


def main(what: str) -> None:
    rng = np.random.default_rng(0)
    report = {"gingham": gingham.__file__, "prefix": sys.prefix,
              "threads": gingham.get_num_threads()}
    if what == "search":
        report.update(check_exact(rng))
        report.update(check_compressed(rng))
    elif what == "simd":
        report.update(check_simd(rng))
    else:
        raise SystemExit(f"unknown check {what!r}; expected search or simd")
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
