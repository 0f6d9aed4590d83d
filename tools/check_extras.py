"""Installs the wheel with each of its extras into its own fresh venv and imports what the
extra is for. Run once per release candidate (minutes: the [text] venv gets torch):

    python tools/check_extras.py dist/gingham-*.whl [--extras text,server]

torch is installed first from TORCH (default torch==2.13.0, the pin of the Makefile; pip's
configured index or --find-links supply it), so [text] never pulls a CUDA build. Prints one
line per extra and exits non-zero if any failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

# What each extra must make importable; an extra not listed is checked by `pip check` and
# `import gingham` only.
IMPORTS = {
    "text": "import bm25s, sentence_transformers, transformers, torch; "
            "import gingham; gingham.Retriever; "
            "import gingham.text.retriever, gingham.eval.compare",
    "server": "import gingham.serve.server, gingham.serve.app, uvicorn, prometheus_client",
    "client": "import gingham; gingham.Client; import gingham.client, httpx",
    "dev": "import pytest, hypothesis, pytest_benchmark, schemathesis, importlinter",
    "ray": "import ray; import gingham",
}
NEEDS_TORCH = {"text"}


def extras_of(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(z.read(meta).decode()).get_all("Provides-Extra") or []


def check(wheel: Path, extra: str, torch: str, work: Path) -> tuple[bool, str]:
    env_dir = work / extra
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    steps = []
    if extra in NEEDS_TORCH:
        steps.append([py, "-m", "pip", "install", "-q", torch])
    steps += [[py, "-m", "pip", "install", "-q", f"{wheel}[{extra}]"],
              [py, "-m", "pip", "check"],
              [py, "-c", IMPORTS.get(extra, "import gingham")]]
    for step in steps:
        run = subprocess.run(step, env=env, cwd=work, capture_output=True, text=True)
        if run.returncode != 0:
            return False, f"{' '.join(step[1:4])}: {(run.stderr or run.stdout).strip()[-600:]}"
    return True, "installed, pip check clean, imports ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--extras", help="comma-separated (default: every extra of the wheel)")
    parser.add_argument("--torch", default=os.environ.get("TORCH", "torch==2.13.0"))
    args = parser.parse_args()
    wheel = args.wheel.resolve()
    extras = args.extras.split(",") if args.extras else extras_of(wheel)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gingham-extras-") as tmp:
        for extra in extras:
            t0 = time.perf_counter()
            ok, detail = check(wheel, extra, args.torch, Path(tmp))
            failed += not ok
            print(f"[{extra}] {'ok' if ok else 'FAILED'} ({time.perf_counter() - t0:.0f} s): "
                  f"{detail}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
