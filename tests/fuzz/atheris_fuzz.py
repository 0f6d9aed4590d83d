"""Coverage-guided fuzzing (atheris / libFuzzer) of the on-disk readers, one reader per run.

    PYTHONPATH=python:tests python tests/fuzz/atheris_fuzz.py READER [-runs=N] [-max_total_time=S]

READER: npy (``files.load_array`` on a .npy file of fuzzer bytes), manifest
(``files.read_manifest`` + ``load_array``), index-residual / index-fp16 (one file of a small
index rewritten, then Index.open + search + verify), core-offsets (``_core.maxsim_scores`` and
``ResidualSegment`` with fuzzer-made offsets and codes). The contracts are those of
tests/fuzz/readers.py: any other exception, or a crash, stops the run with the input saved by
libFuzzer (crash-*); keep such inputs in tests/fuzz/corpus/ as regression cases. libFuzzer's
last line gives the executions and the time ("Done N runs in S second(s)"); the harness also
prints its own count every 30 s. atheris is not a dependency: ``pip install atheris``.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import atheris
import numpy as np

# coverage feedback from gingham's own Python code only: instrumenting numpy as well made every
# execution about 6x slower for no gain in what the fuzzer learns about the readers
with atheris.instrument_imports(include=["gingham", "fuzz"]):
    from fuzz import readers
    from gingham import _core

ROOT = Path(tempfile.mkdtemp(prefix="gingham-atheris-"))
COUNT = [0]
TOKENS = np.random.default_rng(3).standard_normal((20, 8)).astype(np.float32)
QUERY = TOKENS[:3].copy()
_A = readers.npy_bytes(readers.SEED_ARRAYS["f32"])
MANIFEST_SEED = json.dumps({"format": 1, "kind": "segment", "arrays": {"a": {
    "file": "a.npy", "dtype": "<f4", "shape": [3, 4], "bytes": len(_A),
    "sha256": readers.files.sha256_bytes(_A)}}}).encode()


def _npy(fdp: atheris.FuzzedDataProvider, reader=[]) -> None:  # noqa: B006 (one reader)
    if not reader:
        reader.append(readers.NpyReader(ROOT))
    seed = fdp.PickValueInList(sorted(readers.SEED_ARRAYS))
    if fdp.ConsumeBool():  # start from the real file and edit it: reaches the data checks
        data = bytearray(readers.npy_bytes(readers.SEED_ARRAYS[seed]))
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            data[fdp.ConsumeIntInRange(0, len(data) - 1)] = fdp.ConsumeInt(1) & 0xFF
        reader[0](bytes(data), seed)
    else:
        reader[0](fdp.ConsumeBytes(fdp.remaining_bytes()), seed)


def _manifest(fdp: atheris.FuzzedDataProvider, reader=[]) -> None:  # noqa: B006
    if not reader:
        reader.append(readers.ManifestReader(ROOT))
    if fdp.ConsumeBool():  # edit a valid manifest: reaches the entry checks and load_array
        data = bytearray(MANIFEST_SEED)
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            data[fdp.ConsumeIntInRange(0, len(data) - 1)] = fdp.ConsumeInt(1) & 0xFF
        reader[0](bytes(data))
    else:
        reader[0](fdp.ConsumeBytes(fdp.remaining_bytes()))


def _index(storage: str):
    reader: list = []

    def run(fdp: atheris.FuzzedDataProvider) -> None:
        if not reader:
            reader.append(readers.IndexFileReader(ROOT, storage))
        target = fdp.ConsumeIntInRange(0, 1000)
        pos = fdp.ConsumeIntInRange(0, 1 << 20)
        large = fdp.ConsumeBool()
        data = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8)) or b"\x00"
        reader[0](target, pos, data, large)
    return run


def _core_offsets(fdp: atheris.FuzzedDataProvider) -> None:
    n = fdp.ConsumeIntInRange(1, 8)
    off = np.array([fdp.ConsumeIntInRange(-2, 24) for _ in range(n)], np.int64)
    valid = off[0] == 0 and off[-1] == len(TOKENS) and bool(np.all(np.diff(off) >= 0))
    try:
        scores = _core.maxsim_scores(QUERY, TOKENS, off)
    except ValueError as exc:
        assert not valid and "doc_offsets" in str(exc), (off, exc)
        return
    assert valid, off
    ref = np.full(n - 1, -np.inf)
    for i in range(n - 1):
        if off[i + 1] > off[i]:
            ref[i] = (QUERY.astype(np.float64) @ TOKENS[off[i]:off[i + 1]].T).max(1).sum()
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)


READERS = {"npy": _npy, "manifest": _manifest, "index-residual": _index("residual"),
           "index-fp16": _index("fp16"), "core-offsets": _core_offsets}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in READERS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(READERS)}}} [libFuzzer flags]")
    fn = READERS[name]

    start, last = [time.perf_counter()], [time.perf_counter()]

    def one(data: bytes) -> None:
        COUNT[0] += 1
        fn(atheris.FuzzedDataProvider(data))
        now = time.perf_counter()
        if now - last[0] > 30:  # libFuzzer ends the process with exit(): report as we go
            last[0] = now
            print(f"{name}: {COUNT[0]} executions in {now - start[0]:.0f} s = "
                  f"{COUNT[0] / (now - start[0]):.0f}/s", flush=True)

    atheris.Setup([sys.argv[0]] + sys.argv[2:], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
