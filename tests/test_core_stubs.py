"""The installed _core.pyi names exactly what the compiled module exports."""
import ast
from pathlib import Path

from gingham import _core

STUB = Path(_core.__file__).with_name("_core.pyi")


def test_stub_matches_module():
    tree = ast.parse(STUB.read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    exported = {n for n in dir(_core) if not n.startswith("_")}
    assert stubbed == exported
