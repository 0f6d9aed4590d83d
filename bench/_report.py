"""Markdown report helpers shared by bench/storage.py and bench/index_ops.py: a header line
with the command, date and machine load, and replacement of one marked section of a file so
each benchmark rewrites only its own part of docs/storage.md."""
from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

import gingham


def run_header(load_start: tuple[float, float, float]) -> str:
    """One paragraph: exact command, date, machine, load average at start and at the end."""
    load_end = os.getloadavg()
    cmd = "python " + " ".join(["bench/" + os.path.basename(sys.argv[0])] + sys.argv[1:])
    return (f"Command: `{cmd}`; {datetime.datetime.now().isoformat(timespec='seconds')}; "
            f"{platform.node() or 'host'}: {os.cpu_count()} cores, SIMD {gingham.simd_level()}, "
            f"{gingham.get_num_threads()} threads; load average (1/5/15 min) at start "
            f"{'/'.join(f'{x:.1f}' for x in load_start)}, at end "
            f"{'/'.join(f'{x:.1f}' for x in load_end)}.")


def write_section(path: str | os.PathLike, name: str, text: str,
                  title: str = "# Storage kinds: size, speed and quality") -> None:
    """Replace the text between ``<!-- begin name -->`` and ``<!-- end name -->`` in ``path``
    (append the marked block if absent; create the file with ``title`` if missing)."""
    p = Path(path)
    doc = p.read_text(encoding="utf-8") if p.exists() else title + "\n"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    p.write_text(doc, encoding="utf-8")
