"""Progress bars for long CLI work (tqdm on stderr; silent when disabled or not installed)."""
from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, enabled: bool = True,
             total: int | None = None) -> Iterable[T]:
    """``items`` wrapped in a tqdm bar on stderr when ``enabled`` and tqdm is importable."""
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, total=total, leave=False)
