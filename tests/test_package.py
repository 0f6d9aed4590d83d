"""The package surface: `import gingham` loads the engine only; the rest loads on first use."""
from __future__ import annotations

import json
import subprocess
import sys

import gingham

HEAVY = ("torch", "transformers", "sentence_transformers", "fastapi", "starlette", "httpx",
         "uvicorn", "bm25s")


def _loaded_after(code: str) -> dict:
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted(m for m in sys.modules "
             "if m.split('.')[0] in %r or m.startswith('gingham.'))))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_loads_the_engine_only():
    loaded = _loaded_after("import gingham")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    layers = {m.split(".")[1] for m in loaded if m.startswith("gingham.")}
    assert layers <= {"engine", "storage", "_core", "_version"}, layers


def test_lazy_attributes_load_their_layer_on_first_use():
    loaded = _loaded_after("import gingham\ngingham.Client")
    assert "gingham.client" in loaded
    assert not {m for m in loaded if m.startswith(("gingham.text", "gingham.serve"))}
    assert not {"torch", "fastapi"} & loaded
    from gingham.client import Client
    from gingham.text.retriever import Retriever
    assert gingham.Client is Client and gingham.Retriever is Retriever


def test_public_names_and_version():
    from gingham._version import __version__
    assert gingham.__version__ == __version__
    assert set(gingham.__all__) <= set(dir(gingham))
    try:
        gingham.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise AttributeError")


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "gingham", "--help"], capture_output=True,
                         text=True, timeout=120, check=True)
    assert "usage: gingham" in out.stdout
