"""Every `gingham` command's --help describes its arguments and names their defaults; the
examples use only paths that the examples themselves create."""
import argparse
import re
import subprocess
import sys

import pytest

import gingham
from gingham.cli.main import build_parser

PARSER = build_parser()
(SUBPARSERS,) = [a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)]
COMMANDS = sorted(SUBPARSERS.choices)


def test_every_command_is_listed():
    assert COMMANDS == sorted(["bench", "demo", "eval", "index", "info", "search", "serve",
                               "verify"])
    text = PARSER.format_help()
    assert all(f"    {name}" in text for name in COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_describes_arguments_and_defaults(name):
    parser = SUBPARSERS.choices[name]
    assert parser.description
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"gingham {name} {action.dest}: no help"
        if action.option_strings and action.default not in (None, False):
            assert "default" in action.help or f"(default: {action.default})" in text, \
                f"gingham {name} {action.option_strings[0]}: default {action.default} not shown"


@pytest.mark.parametrize("name", [None] + COMMANDS)
def test_examples_use_no_outside_paths(name):
    parser = PARSER if name is None else SUBPARSERS.choices[name]
    epilog = parser.epilog or ""
    assert "../" not in epilog and "shared/" not in epilog
    for path in re.findall(r"gingham (?:index|search|info|verify|serve) ([\w./~-]+)", epilog):
        if path.startswith("-"):
            continue
        assert path in ("my-index", "notes-index", "demo-index"), path


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "gingham", "--help"], capture_output=True,
                          text=True, timeout=120,
                          env={"PYTHONPATH": gingham.__path__[0].rsplit("/", 1)[0]})
    assert proc.returncode == 0 and proc.stdout.startswith("usage: gingham")
