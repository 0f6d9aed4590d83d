"""Coverage-guided fuzzing (atheris / libFuzzer) of the on-disk readers, one reader per run.

    PYTHONPATH=python:tests python tests/fuzz/atheris_fuzz.py READER [-runs=N] [-max_total_time=S]

READER (``READERS``), each the real reader function with every other file pristine:

- ``npy``: ``files.load_array`` on a .npy file of fuzzer bytes (headers of every kind).
- ``manifest``: ``files.read_manifest`` + ``load_array`` on a manifest of fuzzer bytes.
- ``segment-manifest`` / ``codec-manifest``: the manifest of a real residual segment / codec
  folder rewritten, through ``load_folder`` + the kind's open + ``check_folder``.
- ``idmaps``, ``internal-ids``, ``segment-residual``, ``segment-fp16``, ``segment-int8``,
  ``codec-residual``: one array of a segment or codec rewritten at fuzzer-chosen bytes (and
  possibly resized), in memory, through the checks at open and a search
  (tests/fuzz/arrays.py: exact scores checked against numpy MaxSim).
- ``catalog-row``: one column of one catalog row rewritten through SQLite, then open + search
  + verify of the whole index.
- ``index-residual`` / ``index-fp16``: the composite check: any file of a whole index rewritten,
  then ``Index.open`` + search + documents + ``verify()``.
- ``sharded-manifest``: ``distributed.manifest.read_manifest`` on a ``sharded.json`` of
  fuzzer bytes (contract: a dict or a ValueError naming the file).
- ``core-offsets``: ``_core.maxsim_scores`` with fuzzer-made document offsets.
- ``encoder-files`` / ``bm25-files``: one file of a saved encoder (``encoder.json``, the
  projection and PCA arrays) or BM25 index (``bm25.json``, the terms, bm25s's matrix files)
  rewritten at fuzzer-chosen bytes, through ``Encoder.load`` / ``BM25Index.load``
  (tests/fuzz/text_readers.py); ``bm25-source``: the Retriever's reader of ``source.json``.

The contracts are those of tests/fuzz/readers.py and tests/fuzz/arrays.py: any other exception,
or a crash, stops the run with the input saved by libFuzzer (crash-*); keep such inputs in
tests/fuzz/corpus/ as regression cases. libFuzzer's last line gives the executions and the time
("Done N runs in S second(s)"); the harness also prints its own count and the load average
every 30 s. Files go to a folder in /dev/shm, and the kernels run on one thread (an OpenMP
team per call costs far more than these tiny searches). atheris is not a dependency:
``pip install atheris``.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before _core starts its OpenMP runtime

import atheris
import numpy as np

# coverage feedback from gingham's own Python code only: instrumenting numpy as well made every
# execution about 6x slower for no gain in what the fuzzer learns about the readers
with atheris.instrument_imports(include=["gingham", "fuzz"]):
    from fuzz import arrays, readers, text_readers
    from gingham import _core

ROOT = readers.scratch_root()
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
        data = bytearray(readers.seed_bytes(seed))
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


def _edited(fdp: atheris.FuzzedDataProvider, seed: bytes) -> bytes:
    """Up to 4 single-byte edits of ``seed``, or (half the time) every remaining fuzzer byte."""
    if not fdp.ConsumeBool():
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    data = bytearray(seed)
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        data[fdp.ConsumeIntInRange(0, len(data) - 1)] = fdp.ConsumeInt(1) & 0xFF
    return bytes(data)


def _folder_manifest(storage: str, which: str):
    reader: list = []

    def run(fdp: atheris.FuzzedDataProvider) -> None:
        if not reader:
            reader.append(readers.FolderManifestReader(ROOT, storage, which))
        reader[0](_edited(fdp, reader[0].seed))
    return run


#: Byte patterns worth writing into arrays: NaN, inf, float32 max, fp16 inf, int extremes.
PATTERNS = [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\x7f\x7f", b"\x00\x7c",
            b"\xff\xff\xff\x7f", b"\xff" * 8, b"\x00" * 8, b"\x00\x00\x00\x80"]


def _arrays(storage: str, group: str):
    reader: list = []

    def run(fdp: atheris.FuzzedDataProvider) -> None:
        if not reader:
            reader.append(arrays.FolderArraysReader(ROOT, storage, group))
        target = fdp.ConsumeIntInRange(0, 255)
        length = fdp.ConsumeIntInRange(0, 64) if fdp.ConsumeIntInRange(0, 3) == 0 else None
        reader[0](target, _byte_edits(fdp, PATTERNS), length)
    return run


def _byte_edits(fdp: atheris.FuzzedDataProvider, patterns: list[bytes]) -> list:
    """Up to 4 runs of bytes (one of ``patterns`` or fuzzer bytes) at fuzzer-chosen
    positions -> [(position, byte value)]."""
    edits = []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        pos = fdp.ConsumeIntInRange(0, 1 << 16)
        data = (fdp.PickValueInList(patterns) if fdp.ConsumeBool()
                else fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8)))
        edits += [(pos + i, b) for i, b in enumerate(data)]
    return edits


def _text_edits(fdp: atheris.FuzzedDataProvider) -> tuple[list, int | None]:
    """Byte edits (pos, value) and an optional cut, as ``text_readers.edited`` takes them."""
    edits = _byte_edits(fdp, JSON_PATTERNS)
    cut = fdp.ConsumeIntInRange(0, 64) if fdp.ConsumeIntInRange(0, 3) == 0 else None
    return edits, cut


#: Bytes that change what a JSON file says rather than just break it.
JSON_PATTERNS = [b'"', b"0", b"9", b"-", b"null", b"true", b"[]", b"{}", b",", b"NaN",
                 b"\\u0000", b"e9", b"\xff"] + PATTERNS


def _text_folder(make):
    reader: list = []

    def run(fdp: atheris.FuzzedDataProvider) -> None:
        if not reader:
            reader.append(make(ROOT))
        target = fdp.ConsumeIntInRange(0, 255)
        reader[0](target, *_text_edits(fdp))
    return run


def _bm25_source(fdp: atheris.FuzzedDataProvider, reader=[]) -> None:  # noqa: B006
    if not reader:
        reader.append(text_readers.BM25SourceReader(ROOT))
    reader[0](*_text_edits(fdp))


def _catalog_row(fdp: atheris.FuzzedDataProvider, reader=[]) -> None:  # noqa: B006
    if not reader:
        reader.append(readers.CatalogRowReader(ROOT, "residual"))
    column, row = fdp.ConsumeIntInRange(0, 200), fdp.ConsumeIntInRange(0, 100)
    kind = fdp.ConsumeIntInRange(0, 5)
    value = (None if kind == 0 else fdp.ConsumeIntInRange(-(1 << 63), (1 << 63) - 1)
             if kind == 1 else fdp.ConsumeRegularFloat() if kind == 2
             else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)) if kind == 3
             else fdp.PickValueInList(["{}", "null", "[]", "1", "d1", "d2", "codec", "../x"])
             if kind == 4 else fdp.ConsumeUnicodeNoSurrogates(12))
    reader[0](column, row, value)


def _sharded_manifest(fdp: atheris.FuzzedDataProvider, reader=[]) -> None:  # noqa: B006
    if not reader:
        reader.append(readers.ShardedManifestReader(ROOT))
    reader[0](_edited(fdp, SHARDED_SEED))


SHARDED_SEED = json.dumps({"gingham_sharded": 1, "routing": "blake2b-64-mod", "n_shards": 2,
                           "dim": 8, "storage": "fp32", "kind_settings": {}, "next_seq": 0,
                           "codec_sha256": None, "shards": ["shard-0000", "shard-0001"]},
                          indent=1, sort_keys=True).encode()


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


READERS = {"npy": _npy, "manifest": _manifest,
           "segment-manifest": _folder_manifest("residual", "segment"),
           "codec-manifest": _folder_manifest("residual", "codec"),
           "idmaps": _arrays("residual", "idmaps"),
           "internal-ids": _arrays("residual", "internal-ids"),
           "segment-residual": _arrays("residual", "segment"),
           "segment-fp16": _arrays("fp16", "segment"),
           "segment-int8": _arrays("int8", "segment"),
           "codec-residual": _arrays("residual", "codec"),
           "catalog-row": _catalog_row,
           "index-residual": _index("residual"), "index-fp16": _index("fp16"),
           "sharded-manifest": _sharded_manifest, "core-offsets": _core_offsets,
           "encoder-files": _text_folder(text_readers.EncoderFilesReader),
           "bm25-files": _text_folder(text_readers.BM25FilesReader),
           "bm25-source": _bm25_source}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in READERS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(READERS)}}} [libFuzzer flags]")
    fn = READERS[name]
    # as in the test suite (filterwarnings = error): a numpy overflow or invalid-value warning
    # on fuzzer-made data is a finding, not noise
    warnings.simplefilter("error", RuntimeWarning)

    start, last = [time.perf_counter()], [time.perf_counter()]

    def one(data: bytes) -> None:
        COUNT[0] += 1
        fn(atheris.FuzzedDataProvider(data))
        now = time.perf_counter()
        if now - last[0] > 30:  # libFuzzer ends the process with exit(): report as we go
            last[0] = now
            print(f"{name}: {COUNT[0]} executions in {now - start[0]:.0f} s = "
                  f"{COUNT[0] / (now - start[0]):.0f}/s, load {os.getloadavg()[0]:.1f}",
                  flush=True)

    atheris.Setup([sys.argv[0]] + sys.argv[2:], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
