"""Durable storage of a gingham index: immutable segment folders + one SQLite catalog.

See docs/format.md for the on-disk format and the commit protocol.
"""
from .catalog import FORMAT_VERSION
from .errors import (
                     CorruptionError,
                     DuplicateIdError,
                     FormatVersionError,
                     LockTimeoutError,
                     StorageError,
                     UnknownIdError,
)
from .snapshot import SegmentView, Snapshot
from .store import CommitResult, Merged, MergeInput, Store

__all__ = [
    "CommitResult", "CorruptionError", "DuplicateIdError", "FORMAT_VERSION",
    "FormatVersionError", "LockTimeoutError", "MergeInput", "Merged", "SegmentView",
    "Snapshot", "StorageError", "Store", "UnknownIdError",
]
