"""Shared fixtures: where the BEIR test sets live (read-only; never write there)."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$GINGHAM_SHARED_DATA`` or ``<repo>/../shared/data`` (as laid out for CI)."""
    return Path(os.environ.get("GINGHAM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "msmarco" / "corpus.jsonl").exists():
        pytest.skip(f"shared BEIR data not found at {path} (set GINGHAM_SHARED_DATA)")
    return path
