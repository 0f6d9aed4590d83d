"""Exceptions of the storage layer; every one names the index folder or the file at fault."""
from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class CorruptionError(StorageError):
    """A file of the index is damaged or inconsistent with the catalog.

    ``path`` is the file (or folder) at fault, ``reason`` what was wrong with it.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"corrupt index file {self.path}: {reason}")


class FormatVersionError(StorageError):
    """The index was written by another on-disk format version (``version``, if known)."""

    def __init__(self, message: str, version: int | None = None):
        super().__init__(message)
        self.version = version


class LockTimeoutError(StorageError):
    """Another writer held the index's writer lock for longer than the timeout."""


class DuplicateIdError(StorageError, ValueError):
    """An id given to ``add`` already names a live document (and ``upsert`` was not set)."""


class UnknownIdError(StorageError, KeyError):
    """An id does not name a live document."""

    @classmethod
    def of(cls, unknown: list) -> "UnknownIdError":
        """The error naming (the first few of) the ids ``unknown``."""
        return cls(f"{len(unknown)} id(s) not in the index, e.g. {unknown[:5]!r}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""
