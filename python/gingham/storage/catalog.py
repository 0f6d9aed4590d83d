"""The SQLite catalog: schema, connections, per-row checksums and error translation.

Every table row carries ``crc``, a CRC-32 of its other columns, because SQLite checks the
structure of its file but not the content of records: a flipped byte inside a metadata string
or an id would otherwise be read back silently. Readers check the rows of the small tables on
every snapshot; ``verify()`` checks every row.

Liveness is not a column of ``documents``: a delete inserts one small row per document into
``tombstones`` (format version 2), so it never rewrites a document row or its checksum.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import zlib
from pathlib import Path

from .errors import CorruptionError, FormatVersionError, StorageError

FORMAT_VERSION = 2
APPLICATION_ID = 0x67676868  # 'gghh': marks a gingham catalog
CATALOG = "catalog.sqlite"

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE codecs(version INTEGER PRIMARY KEY, folder TEXT NOT NULL,
                    manifest_sha256 TEXT NOT NULL, created_commit INTEGER NOT NULL,
                    crc INTEGER NOT NULL);
CREATE TABLE segments(id INTEGER PRIMARY KEY, folder TEXT NOT NULL, codec_version INTEGER,
                      n_docs INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL,
                      created_commit INTEGER NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE documents(internal_id INTEGER PRIMARY KEY, external_id TEXT NOT NULL,
                       segment_id INTEGER NOT NULL, row INTEGER NOT NULL,
                       metadata TEXT NOT NULL, text TEXT, crc INTEGER NOT NULL);
CREATE INDEX documents_external ON documents(external_id, segment_id, row);
CREATE TABLE tombstones(internal_id INTEGER PRIMARY KEY, segment_id INTEGER NOT NULL,
                        row INTEGER NOT NULL, deleted_commit INTEGER NOT NULL,
                        crc INTEGER NOT NULL);
"""

DOC_COLUMNS = "internal_id, external_id, segment_id, row, metadata, text"
TOMBSTONE_COLUMNS = "internal_id, segment_id, row, deleted_commit"
#: SQL condition "this documents row is live" (a primary-key probe of tombstones per row).
LIVE = "NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.internal_id = documents.internal_id)"
SEGMENT_COLUMNS = "id, folder, codec_version, n_docs, manifest_sha256, created_commit"
CODEC_COLUMNS = "version, folder, manifest_sha256, created_commit"


def _crc_part(value) -> str:
    """None as a lone NUL and a text starting with NUL escaped by one more, so that no value
    reads as another: a text rewritten to a lone NUL over a NULL must not keep its crc."""
    if value is None:
        return "\x00"
    text = str(value)
    return "\x00" + text if text.startswith("\x00") else text


def row_crc(values) -> int:
    """CRC-32 of a row's values (None kept distinct from every text, the empty one included)."""
    parts = [_crc_part(v) for v in values]
    return zlib.crc32("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def check_row(path: Path, table: str, row) -> tuple:
    """Split ``(*values, crc)`` and raise if the crc does not match."""
    *values, crc = row
    if row_crc(values) != crc:
        raise CorruptionError(path, f"checksum mismatch in table {table!r}, row {values[0]!r}")
    return tuple(values)


_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
# What SQLite says, with the generic SQLITE_ERROR code, about a header it cannot read (e.g. a
# schema format number beyond 4 at byte 44-47).
_CORRUPT_MESSAGES = ("Could not decode to UTF-8", "unsupported file format")


@contextlib.contextmanager
def translate_errors(path: Path):
    """Turn SQLite's 'malformed' / 'not a database' errors into CorruptionError(path)."""
    try:
        yield
    except UnicodeDecodeError as exc:  # a damaged TEXT value
        raise CorruptionError(path, f"undecodable text in the catalog: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF in _CORRUPT_CODES
                or str(exc).startswith(_CORRUPT_MESSAGES)):
            raise CorruptionError(path, f"SQLite: {exc}") from exc
        raise


def connect_writer(path: Path) -> sqlite3.Connection:
    """Connection for the single writer: explicit transactions, FULL sync in WAL mode."""
    with translate_errors(path):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # Deletes probe documents_external and tombstones at random places: keep their pages
        # cached between writes (SQLite's default is 2 MiB; pages are only held once read).
        conn.execute("PRAGMA cache_size=-32768")
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """Connection for readers, with ``query_only`` set so that no statement run on it (a
    filter expression included) can modify the catalog. It is opened read-write at the file
    level where possible so that it can recover the WAL left by a writer that crashed; on a
    read-only file it falls back to SQLite's read-only mode."""
    if not path.is_file():
        raise StorageError(f"no index catalog at {path}")
    with translate_errors(path):
        if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=30.0)
        else:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA query_only = ON")
    return conn


def check_header(conn: sqlite3.Connection, path: Path) -> None:
    """Check that the file is a gingham catalog of a format version this code reads."""
    with translate_errors(path):
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise CorruptionError(path, f"not a gingham catalog (application_id {app_id:#x})")
    if version > FORMAT_VERSION:
        raise FormatVersionError(
            f"index catalog {path} has on-disk format version {version}; this gingham reads "
            f"versions up to {FORMAT_VERSION}. Upgrade gingham to open it (or, if no newer "
            "gingham wrote it, the file header is damaged).", version)
    if version == 1:
        raise FormatVersionError(
            f"index catalog {path} has on-disk format version 1; this gingham reads version "
            f"{FORMAT_VERSION}. Store.open / Index.open upgrade it in place (one transaction; "
            "needs write access to the index folder).", version)
    if version < 1:
        raise CorruptionError(path, f"invalid format version {version}")
    check_schema(conn, path)


def _normal(sql: str) -> str:
    return " ".join(sql.split())


EXPECTED_SCHEMA = sorted(_normal(s) for s in SCHEMA.split(";") if s.strip())


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """The schema text is fixed per format version: any difference means damage."""
    with translate_errors(path):
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    if sorted(_normal(r[0]) for r in rows) != EXPECTED_SCHEMA:
        raise CorruptionError(path, "catalog schema differs from format version "
                                    f"{FORMAT_VERSION}")


def read_meta(conn: sqlite3.Connection, path: Path) -> dict:
    rows = conn.execute("SELECT key, value, crc FROM meta").fetchall()
    meta = dict(check_row(path, "meta", r) for r in rows)
    for key in ("format_version", "commit", "next_internal_id", "next_segment_id",
                "next_codec_version", "current_codec"):
        if key not in meta:
            raise CorruptionError(path, f"meta key {key!r} missing")
    if int(meta["format_version"]) != conn.execute("PRAGMA user_version").fetchone()[0]:
        raise CorruptionError(path, "format version in meta differs from the file header")
    return meta


def check_key_index(conn: sqlite3.Connection, path: Path, table: str) -> None:
    """A damaged page can hide rows of a small key/value table (``settings``) from a
    scan, which no row CRC can tell; its key index still lists them, so the counts differ."""
    n_rows, n_keys = conn.execute(
        f"SELECT (SELECT count(*) FROM {table} NOT INDEXED), "
        f"(SELECT count(key) FROM {table} INDEXED BY sqlite_autoindex_{table}_1)").fetchone()
    if n_rows != n_keys:
        raise CorruptionError(path, f"table {table!r} shows {n_rows} rows but its key index "
                                    f"lists {n_keys}")


def set_meta(conn: sqlite3.Connection, key: str, value) -> None:
    value = str(value)
    conn.execute("INSERT OR REPLACE INTO meta(key, value, crc) VALUES (?, ?, ?)",
                 (key, value, row_crc((key, value))))


def set_setting(conn: sqlite3.Connection, key: str, value_json: str) -> None:
    conn.execute("INSERT OR REPLACE INTO settings(key, value, crc) VALUES (?, ?, ?)",
                 (key, value_json, row_crc((key, value_json))))


def doc_row(internal_id, external_id, segment_id, row, metadata, text) -> tuple:
    values = (int(internal_id), external_id, int(segment_id), int(row), metadata, text)
    return values + (row_crc(values),)


def tombstone_row(internal_id, segment_id, row, commit) -> tuple:
    values = (int(internal_id), int(segment_id), int(row), int(commit))
    return values + (row_crc(values),)


def segment_row(seg_id, folder, codec_version, n_docs, manifest_sha, commit) -> tuple:
    values = (int(seg_id), folder, codec_version, int(n_docs), manifest_sha, int(commit))
    return values + (row_crc(values),)


def codec_row(version, folder, manifest_sha, commit) -> tuple:
    values = (int(version), folder, manifest_sha, int(commit))
    return values + (row_crc(values),)


def create_schema(conn: sqlite3.Connection, settings_json: dict) -> None:
    """Create tables and the initial meta rows of an empty catalog (commit 0)."""
    conn.execute("BEGIN IMMEDIATE")
    for stmt in SCHEMA.strip().split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
    for key, value in (("format_version", FORMAT_VERSION), ("commit", 0),
                       ("next_internal_id", 0), ("next_segment_id", 1),
                       ("next_codec_version", 1), ("current_codec", "")):
        set_meta(conn, key, value)
    for key, value in settings_json.items():
        set_setting(conn, key, value)
    conn.execute("COMMIT")


# -- format version 1 -> 2 --------------------------------------------------------------------
V1_DOCUMENTS = """
CREATE TABLE documents(internal_id INTEGER PRIMARY KEY, external_id TEXT NOT NULL,
                       segment_id INTEGER NOT NULL, row INTEGER NOT NULL,
                       live INTEGER NOT NULL, metadata TEXT NOT NULL, text TEXT,
                       crc INTEGER NOT NULL);
CREATE UNIQUE INDEX documents_live_external ON documents(external_id) WHERE live = 1;
CREATE INDEX documents_dead ON documents(segment_id, row) WHERE live = 0;
"""
_V2_ONLY = [s for s in SCHEMA.split(";") if "documents" in s or "tombstones" in s]
_V1_SCHEMA = sorted([_normal(s) for s in SCHEMA.split(";") if s.strip() and s not in _V2_ONLY]
                    + [_normal(s) for s in V1_DOCUMENTS.split(";") if s.strip()])


def upgrade_from_v1(conn: sqlite3.Connection, path: Path) -> bool:
    """Rewrite a format-1 catalog as format 2 in one transaction (the caller holds the writer
    lock): documents lose ``live`` (and get checksums without it); each ``live = 0`` row becomes
    a tombstone dated at the current commit. Segment folders are untouched. Returns False if
    the catalog was no longer at version 1 (another process upgraded it first)."""
    with translate_errors(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != 1:
                conn.execute("ROLLBACK")
                return False
            rows = conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
            if sorted(_normal(r[0]) for r in rows) != _V1_SCHEMA:
                raise CorruptionError(path, "catalog schema differs from format version 1")
            meta = read_meta(conn, path)
            commit = int(meta["commit"])
            docs = [check_row(path, "documents", r) for r in conn.execute(
                "SELECT internal_id, external_id, segment_id, row, live, metadata, text, crc "
                "FROM documents")]
            conn.execute("DROP TABLE documents")  # drops its indexes too
            for stmt in _V2_ONLY:
                conn.execute(stmt)
            conn.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (doc_row(d[0], d[1], d[2], d[3], d[5], d[6]) for d in docs))
            conn.executemany("INSERT INTO tombstones VALUES (?, ?, ?, ?, ?)",
                             (tombstone_row(d[0], d[2], d[3], commit)
                              for d in docs if d[4] != 1))
            conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            set_meta(conn, "format_version", FORMAT_VERSION)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return True
