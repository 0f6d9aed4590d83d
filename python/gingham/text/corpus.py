"""Reading document collections for ``gingham index`` and building the ``gingham demo`` corpus.

``read_documents(path)`` accepts a .jsonl file (one object per line with ``_id`` or ``id`` and
``text``, optional ``title``, as BEIR corpora; other fields become metadata), a .tsv file
(``id<TAB>text`` per line) or a folder of .txt / .md files (id = path relative to the folder).
``stdlib_docstrings(limit)`` collects the first paragraphs of Python standard library
docstrings: a corpus every machine with Python has, in a deterministic order.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple


@dataclass
class Documents:
    """Parallel lists: ``texts[i]`` has id ``ids[i]`` and metadata ``metadata[i]`` (a dict)."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def append(self, doc_id: str, text: str, meta: dict[str, Any]) -> None:
        """Add one document at the end of the three lists."""
        self.ids.append(doc_id)
        self.texts.append(text)
        self.metadata.append(meta)


class JsonlRecord(NamedTuple):
    """One line of a JSONL document or query file: its 1-based line number, id (``_id`` or
    ``id``, as a string), title ("" if absent), text, and every other field."""

    line: int
    id: str
    title: str
    text: str
    fields: dict[str, Any]


def read_jsonl(path: str) -> Iterator[JsonlRecord]:
    """Records of a JSONL file, one per non-blank line, in file order (BEIR corpus and query
    files, ``gingham index`` input). Raises ValueError naming ``path:line`` for a line that is
    not a JSON object, lacks an ``_id``/``id`` field or lacks a ``text`` string."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got "
                                 f"{type(row).__name__}")
            doc_id = row.get("_id", row.get("id"))
            if doc_id is None:
                raise ValueError(f"{path}:{lineno}: needs an '_id' or 'id' field")
            text = row.get("text")
            if not isinstance(text, str):
                raise ValueError(f"{path}:{lineno}: needs a 'text' string")
            fields = {k: v for k, v in row.items() if k not in ("_id", "id", "text")}
            yield JsonlRecord(lineno, str(doc_id), (row.get("title") or "").strip(), text,
                              fields)


def _read_jsonl(path: str) -> Documents:
    docs = Documents()
    for rec in read_jsonl(path):
        full = f"{rec.title} {rec.text}".strip() if rec.title else rec.text.strip()
        if full:
            docs.append(rec.id, full, rec.fields)
    return docs


def _read_tsv(path: str) -> Documents:
    docs = Documents()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t", 1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'id<TAB>text'")
            if parts[1].strip():
                docs.append(parts[0], parts[1].strip(), {})
    return docs


def _read_folder(path: str) -> Documents:
    docs = Documents()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith((".txt", ".md")):
                continue
            full = os.path.join(root, name)
            with open(full, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
            if text:
                rel = os.path.relpath(full, path)
                docs.append(rel, text, {"path": rel})
    return docs


def read_documents(path: str) -> Documents:
    """Documents from a .jsonl / .tsv file or a folder of .txt/.md files (see module doc).
    Empty texts are skipped; raises ValueError naming the file and line of a bad row."""
    if os.path.isdir(path):
        docs = _read_folder(path)
    elif not os.path.exists(path):
        raise FileNotFoundError(f"input {path!r} does not exist")
    elif path.endswith(".jsonl"):
        docs = _read_jsonl(path)
    elif path.endswith((".tsv", ".txt")):
        docs = _read_tsv(path)
    else:
        raise ValueError(f"input {path!r}: expected a .jsonl or .tsv file or a folder of "
                         ".txt/.md files")
    if not docs.ids:
        raise ValueError(f"input {path!r} holds no documents")
    if len(set(docs.ids)) != len(docs.ids):
        seen: set[str] = set()
        dup = ""
        for x in docs.ids:
            if x in seen:
                dup = x
                break
            seen.add(x)
        raise ValueError(f"input {path!r}: id {dup!r} appears more than once")
    return docs


# Modules with useful docstrings and no import side effects, in a fixed order.
DEMO_MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email",
    "enum", "fnmatch", "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html", "http.client", "inspect", "io", "ipaddress", "itertools", "json", "logging",
    "math", "mimetypes", "operator", "os", "os.path", "pathlib", "pprint", "queue", "random",
    "re", "secrets", "shlex", "shutil", "socket", "sqlite3", "statistics", "string", "struct",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "time", "timeit", "typing",
    "unicodedata", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref",
    "xml.etree.ElementTree", "zipfile", "zlib",
)


def _first_paragraph(doc: str | None, max_chars: int) -> str:
    if not doc:
        return ""
    para = inspect.cleandoc(doc).split("\n\n", 1)[0]
    text = " ".join(para.split())
    return text[:max_chars].rsplit(" ", 1)[0] if len(text) > max_chars else text


def stdlib_docstrings(limit: int = 600, *, min_chars: int = 40, max_chars: int = 300
                      ) -> Documents:
    """First paragraphs (``min_chars``..``max_chars`` characters) of the docstrings of
    ``DEMO_MODULES`` and their public functions and classes, deterministic order, at most
    ``limit`` documents, taken round-robin over modules so every module is represented.
    ids are dotted names (``json.loads``); metadata ``{"module": ..., "kind": ...}``."""
    per_module: list[list[tuple[str, str, dict[str, Any]]]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod_name in DEMO_MODULES:
            try:
                mod = importlib.import_module(mod_name)
            except ImportError:
                continue
            items: list[tuple[str, str, dict[str, Any]]] = []
            seen: set[str] = set()
            text = _first_paragraph(mod.__doc__, max_chars)
            if len(text) >= min_chars:
                items.append((mod_name, text, {"module": mod_name, "kind": "module"}))
                seen.add(text)
            for name in sorted(getattr(mod, "__all__", None) or dir(mod)):
                if name.startswith("_"):
                    continue
                obj = getattr(mod, name, None)
                if not (inspect.isfunction(obj) or inspect.isclass(obj)
                        or inspect.isbuiltin(obj)):
                    continue
                text = _first_paragraph(getattr(obj, "__doc__", None), max_chars)
                if len(text) < min_chars or text in seen:
                    continue
                seen.add(text)
                kind = "class" if inspect.isclass(obj) else "function"
                items.append((f"{mod_name}.{name}", text, {"module": mod_name, "kind": kind}))
            per_module.append(items)
    docs = Documents()
    used: set[str] = set()
    depth = 0
    while len(docs.ids) < limit and any(depth < len(m) for m in per_module):
        for items in per_module:
            if depth < len(items) and len(docs.ids) < limit:
                doc_id, text, meta = items[depth]
                if doc_id not in used and text not in docs.texts:
                    used.add(doc_id)
                    docs.append(doc_id, text, meta)
        depth += 1
    return docs
