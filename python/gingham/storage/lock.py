"""The writer lock: an exclusive ``flock`` on ``<index>/writer.lock``.

The kernel drops the lock when its holder dies, so a crashed writer never blocks the next one.
``flock`` locks belong to an open file description, so two Store objects in one process exclude
each other just like two processes do.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import LockTimeoutError

LOCK_FILE = "writer.lock"


class WriterLock:
    """Exclusive advisory lock held for the duration of one write (or a ``with`` block)."""

    def __init__(self, folder: Path):
        self._path = folder / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (0: do not wait) for the lock."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout)
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeoutError(
                        f"another writer holds {self._path}; gave up after {timeout:g} s "
                        "(one writer at a time; pass a longer lock_timeout to wait)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
