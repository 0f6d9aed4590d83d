"""One process running torch's kernels and gingham's, in turn and at once, each against numpy.

Run by tests/test_openmp_torch.py in a subprocess (a hang is caught by its timeout):
  python openmp_torch_check.py torch-first | gingham-first
Prints one JSON line: the OpenMP runtimes mapped into the process and the thread counts.
"""
from __future__ import annotations

import importlib
import json
import sys
import threading

import numpy as np

# Whichever is imported first loads its libgomp.so.1; a source build's gingham shares that one.
importlib.import_module({"torch-first": "torch", "gingham-first": "gingham"}[sys.argv[1]])
import torch

import gingham

ROUNDS = 8


def torch_round(rng: np.random.Generator) -> None:
    """A float64 matmul and an elementwise reduction, both parallel in torch, against numpy."""
    a, b = rng.standard_normal((384, 384)), rng.standard_normal((384, 384))
    got = (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-10, atol=1e-10)
    x = rng.standard_normal(1 << 20)
    np.testing.assert_allclose(torch.from_numpy(x).exp().sum().item(), np.exp(x).sum(),
                               rtol=1e-9)


def gingham_round(rng: np.random.Generator) -> None:
    """MaxSim and exact top-k over 2,000 documents, against a float64 numpy oracle."""
    lengths = rng.integers(4, 40, size=2000)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = rng.standard_normal((int(offsets[-1]), 64)).astype(np.float32)
    query = rng.standard_normal((12, 64)).astype(np.float32)
    sims = query.astype(np.float64) @ tokens.astype(np.float64).T
    expected = np.maximum.reduceat(sims, offsets[:-1], axis=1).sum(axis=0)
    np.testing.assert_allclose(gingham.maxsim_scores(query, tokens, offsets), expected,
                               rtol=1e-4, atol=1e-4)
    _, top = gingham.exact_search(query, tokens, offsets, k=10)
    np.testing.assert_array_equal(np.sort(top[0]), np.sort(np.argsort(-expected)[:10]))


def loop(fn, seed: int, errors: list) -> None:
    rng = np.random.default_rng(seed)
    try:
        for _ in range(ROUNDS):
            fn(rng)
    except BaseException as exc:  # reported by the main thread
        errors.append(repr(exc))


def openmp_runtimes() -> list[str]:
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "omp" in line.rsplit("/", 1)[-1]}
    return sorted(p for p in paths if ".so" in p)


def main() -> None:
    torch.set_num_threads(2)
    gingham.set_num_threads(2)
    errors: list = []
    loop(lambda rng: (torch_round(rng), gingham_round(rng)), 0, errors)  # in turn
    workers = [threading.Thread(target=loop, args=(torch_round, 1, errors)),
               threading.Thread(target=loop, args=(gingham_round, 2, errors))]
    for w in workers:  # at once: both pools busy, the GIL released by both
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit("; ".join(errors))
    print(json.dumps({"runtimes": openmp_runtimes(), "gingham": gingham.__file__,
                      "threads": [torch.get_num_threads(), gingham.get_num_threads()]}))


if __name__ == "__main__":
    main()
