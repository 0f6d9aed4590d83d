"""The ``gingham`` command line: a thin shell over the public API.

This module assembles the parser from the command groups (text, eval, demo, bench, serve) and
turns the errors a user can cause into one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..storage import CorruptionError, LockTimeoutError, StorageError
from . import bench, demo, serve, text
from . import eval as eval_command

DESCRIPTION = "gingham: late-interaction (ColBERT-style) retrieval from the shell."
EPILOG = """examples:
  gingham demo --index-dir demo-index          # index stdlib docstrings, run example queries
  gingham search demo-index "read a zip archive" -k 5 --hybrid
  gingham info demo-index; gingham verify demo-index
  gingham index my-index corpus.jsonl          # corpus.jsonl made as in `gingham index --help`
  gingham eval BEIR_FOLDER --methods bm25,plaid,hybrid --json
  gingham bench --docs 20000                   # synthetic vectors, no model needed

`gingham COMMAND --help` describes each command's arguments and defaults.
"""
# Commands whose argument names an index folder, by the argument's name.
_INDEX_ARGS = ("index", "path", "index_dir")


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions, keeps the line breaks of multi-line texts (examples);
    appends "(default: X)" to an option's help unless the help already names its default or
    there is none to name."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or "default" in help_text or not action.option_strings):
            return help_text
        return f"{help_text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    """The ``gingham`` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="gingham", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (text, eval_command, demo, bench, serve):
        group.add_parsers(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def _index_of(args: argparse.Namespace) -> str | None:
    for name in _INDEX_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            return value
    return None


def _where(path: str, index: str | None) -> str:
    """``path`` relative to the index folder when it lies inside it."""
    if index is None:
        return path
    root = os.path.realpath(index)
    full = os.path.realpath(path)
    return os.path.relpath(full, root) if full.startswith(root + os.sep) else path


def error_line(args: argparse.Namespace, exc: BaseException) -> str:
    """The one line ``gingham COMMAND: error: ...`` that reports ``exc`` to the user."""
    index = _index_of(args)
    where = f"index at {index}" if index is not None else "index"
    if isinstance(exc, CorruptionError):
        msg = f"{where} is corrupt: {_where(exc.path, index)}: {exc.reason}"
    elif isinstance(exc, LockTimeoutError):
        msg = f"{where} is locked by another writer"
    elif isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    else:
        msg = str(exc) or type(exc).__name__
    return f"gingham {args.command}: error: " + " ".join(msg.split())


def main(argv: list[str] | None = None) -> int:
    """Run ``gingham`` with ``argv`` (default: sys.argv[1:]) -> exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StorageError, ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        print(error_line(args, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gingham {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
