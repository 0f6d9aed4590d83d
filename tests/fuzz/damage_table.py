"""The damage table: every file of an index x every kind of damage, applied to a copy of a real
index, with what a plain open, a search and verify() then do.

    PYTHONPATH=python python tests/fuzz/damage_table.py    # prints the markdown table

A cell is "detected" when open or verify raises CorruptionError / StorageError naming the
index (and nothing else is ever raised), "harmless" when open, search and verify all pass and
the search results, ids and documents equal the undamaged index's. tests/test_index_damage_table
asserts that every cell is one of the two. Mode "large" counts every array as large
(``SMALL_FILE_BYTES = 0``): a plain open then checksums only the id maps and manifests, as for
an index whose arrays exceed 1 MiB.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.readers import build_index, results  # noqa: E402
from gingham.storage import CorruptionError, StorageError, files  # noqa: E402

DAMAGES = ("truncate", "flip header", "flip data", "zero-fill", "delete", "swap")


def _npy_data_start(data: bytes) -> int:
    if data[:6] != b"\x93NUMPY":
        return min(len(data) // 2, 64)
    n = 2 if data[6] == 1 else 4
    return 8 + n + int.from_bytes(data[8:8 + n], "little")


def damage(file: Path, how: str, other: Path | None) -> bool:
    """Apply one damage; False when it does not apply (no other file to swap with)."""
    data = file.read_bytes()
    if how == "truncate":
        file.write_bytes(data[:len(data) // 2])
    elif how == "flip header":
        pos = 20 if file.suffix != ".json" else 2  # inside the .npy dict / the JSON / SQLite
        file.write_bytes(data[:pos] + bytes([data[pos] ^ 0x10]) + data[pos + 1:])
    elif how == "flip data":
        start = _npy_data_start(data) if file.suffix == ".npy" else 0
        pos = start + (len(data) - start) // 2
        file.write_bytes(data[:pos] + bytes([data[pos] ^ 0x10]) + data[pos + 1:])
    elif how == "zero-fill":
        file.write_bytes(bytes(len(data)))
    elif how == "delete":
        file.unlink()
    elif how == "swap":
        if other is None or not other.exists():
            return False
        shutil.copyfile(other, file)
    return True


def kind_of(rel: Path) -> str:
    if rel.name.startswith("catalog.sqlite"):
        return "catalog"
    if rel.name == files.MANIFEST:
        return f"{rel.parts[0]} manifest"
    if rel.name.startswith("_"):
        return "id map"
    return "codec array" if rel.parts[0] == "codec" else "segment array"


def _outcome(fn, work: Path) -> str:
    """"ok", or the error type when fn raised one naming the index (a deleted catalog makes
    Index.open say the folder is no index: ValueError naming it)."""
    try:
        fn()
        return "ok"
    except (CorruptionError, StorageError, ValueError) as exc:
        if str(work) not in str(exc):
            raise
        return f"{type(exc).__name__}"


def run_cell(pristine: Path, work: Path, rel: Path, how: str, other: Path | None,
             query, expected, large: bool) -> dict | None:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(pristine, work)
    for side in ("-wal", "-shm"):
        Path(str(work / "catalog.sqlite") + side).unlink(missing_ok=True)
    if not damage(work / rel, how, other):
        return None
    saved = files.SMALL_FILE_BYTES
    files.SMALL_FILE_BYTES = 0 if large else saved
    got: list = []
    try:
        opened = _outcome(lambda: got.append(results(work, query)), work)
    finally:
        files.SMALL_FILE_BYTES = saved
    import gingham

    def verify():
        with gingham.Index.open(work, check="full") as idx:
            idx.verify()
    verified = _outcome(verify, work)
    same = bool(got) and got[0] == expected
    verdict = ("detected" if opened != "ok" or verified != "ok"
               else "harmless" if same else "UNDETECTED")
    return {"file": str(rel), "kind": kind_of(rel), "damage": how, "mode":
            "large" if large else "small", "open+search": opened if not got else
            ("same results" if same else "different results"), "verify": verified,
            "verdict": verdict}


def table(root: Path, storages=("residual", "fp32")) -> list[dict]:
    """Every (storage, file, damage, mode) cell."""
    rows = []
    for storage in storages:
        pristine = root / f"pristine-{storage}"
        query = build_index(pristine, storage)
        expected = results(pristine, query)
        segs = sorted((pristine / "segments").iterdir())
        # a second codec to swap codec files with: same shapes, trained on other documents
        other_index = root / f"other-{storage}"
        build_index(other_index, storage, seed=6)
        rels = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file()
                      and p.relative_to(pristine).parts[0] != "tmp" and p.suffix != ".lock"
                      and not p.name.endswith(("-wal", "-shm")))
        for rel in rels:
            if rel.parts[0] == "segments":
                mate = [s for s in segs if s.name != rel.parts[1]][0] / rel.name
            elif rel.parts[0] == "codec":
                mate = next((other_index / "codec").iterdir()) / rel.name
            else:  # the catalog: another index's (same settings, other documents)
                mate = other_index / rel
            for how in DAMAGES:
                for large in (False, True):
                    cell = run_cell(pristine, root / "work", rel, how, mate, query, expected,
                                    large)
                    if cell is not None:
                        rows.append({"storage": storage, **cell})
    return rows


def _where(group: list[dict]) -> str:
    if any(c["verdict"] == "UNDETECTED" for c in group):
        return "**undetected**"
    if all(c["verdict"] == "harmless" for c in group):
        return "harmless"
    at_open = all(c["open+search"] not in ("same results", "different results")
                  for c in group if c["verdict"] == "detected")
    return "open" if at_open else "verify"


def markdown(rows: list[dict]) -> str:
    """File kind x damage: where the damage is caught, with small files / every file large
    ("open": a plain open raises; "verify": open succeeds, verify() / check="full" raises)."""
    kinds = sorted({r["kind"] for r in rows})
    out = ["| file kind (files) | " + " | ".join(DAMAGES) + " |",
           "|---" * (len(DAMAGES) + 1) + "|"]
    for kind in kinds:
        names = sorted({Path(r["file"]).name for r in rows if r["kind"] == kind})
        cells = []
        for how in DAMAGES:
            parts = []
            for mode in ("small", "large"):
                group = [r for r in rows if r["kind"] == kind and r["damage"] == how
                         and r["mode"] == mode]
                parts.append(_where(group) if group else "n/a")
            cells.append(" / ".join(parts))
        out.append(f"| {kind} ({', '.join(names)}) | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cells = table(Path(tmp))
    print(markdown(cells))
    n = len(cells)
    det = sum(c["verdict"] == "detected" for c in cells)
    harm = sum(c["verdict"] == "harmless" for c in cells)
    print(f"\n{n} cells: {det} detected, {harm} harmless, {n - det - harm} undetected")
