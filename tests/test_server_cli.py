"""``gingham serve``: flags generated from ServiceLimits, their translation to create_app
options, and the command's behavior on a missing or broken index."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import gingham
from gingham.serve import server
from gingham.serve.limits import ServiceLimits
from server_util import build_index, free_socket, random_docs


def parse(*argv):
    parser = argparse.ArgumentParser()
    server.add_serve_arguments(parser)
    return parser, parser.parse_args(list(argv))


def test_every_limit_is_a_flag_with_its_help_and_default():
    parser, args = parse("idx")
    help_text = " ".join(parser.format_help().split())
    for f in dataclasses.fields(ServiceLimits):
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text
        assert f"{' '.join(f.metadata['help'].split())} (default {f.default})" in help_text
        assert getattr(args, f.name) == f.default
    assert server.app_options_from_args(args)["limits"] == ServiceLimits()


def test_limit_flags_build_the_same_limits_as_the_dataclass():
    _, args = parse("idx", "--max-k", "7", "--max-queries", "3", "--max-text-chars", "50",
                    "--max-query-tokens", "9", "--max-doc-tokens", "11", "--max-documents", "5",
                    "--max-subset", "13", "--max-where-chars", "17", "--max-segments", "19")
    limits = server.app_options_from_args(args)["limits"]
    assert limits == ServiceLimits(max_k=7, max_queries=3, max_text_chars=50,
                                   max_query_tokens=9, max_doc_tokens=11, max_documents=5,
                                   max_subset=13, max_where_chars=17, max_segments=19)


def test_index_upkeep_flags_have_their_own_help_group():
    parser, _ = parse("idx")
    help_text = parser.format_help()
    request = help_text[help_text.index("per-request limits"):help_text.index("index upkeep:")]
    assert "--max-k" in request and "--max-segments" not in request
    assert "--max-segments" in help_text[help_text.index("index upkeep:"):]


def test_default_flags_give_create_app_defaults(monkeypatch):
    monkeypatch.delenv(server.API_KEY_ENV, raising=False)
    _, args = parse("idx")
    options = server.app_options_from_args(args)
    defaults = {name: p.default for name, p in
                inspect.signature(server.create_app).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(options) == set(defaults)
    for name, value in options.items():
        if name != "limits":
            assert value == defaults[name], name
    _, args = parse("idx", "--max-pending-writes", "3", "--write-timeout", "12.5",
                    "--max-body-mb", "1", "--timeout", "4", "--auth-scope", "writes")
    options = server.app_options_from_args(args)
    assert (options["max_pending_writes"], options["write_timeout_s"], options["max_body_bytes"],
            options["request_timeout_s"], options["auth"]) == (3, 12.5, 1 << 20, 4.0, "writes")
    monkeypatch.setenv(server.API_KEY_ENV, "from-env")
    assert server.app_options_from_args(parse("idx")[1])["api_key"] == "from-env"


@pytest.mark.parametrize("case", ["missing", "not_an_index", "bad_limit"])
def test_run_from_args_prints_one_line_and_fails(tmp_path, capsys, case):
    folder = tmp_path / "idx"
    argv = [str(folder)]
    if case == "not_an_index":
        folder.mkdir()
        (folder / "notes.txt").write_text("not an index")
    if case == "bad_limit":
        build_index(str(folder), n_docs=5)
        argv += ["--max-k", "0"]
    _, args = parse(*argv)
    assert server.run_from_args(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gingham serve: error: "), err
    expected = {"missing": "no index at", "not_an_index": "not a gingham index",
                "bad_limit": "max_k must be a positive integer"}[case]
    assert expected in lines[0]


def test_gingham_serve_command(tmp_path):
    path = str(tmp_path / "index")
    build_index(path, n_docs=20)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "GINGHAM_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "gingham", "serve", path, "--port", str(port),
                             "--log-level", "warning", "--max-k", "3"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "gingham serve exited"
            assert time.monotonic() < deadline, "gingham serve did not answer within 30 s"
            time.sleep(0.1)
        assert httpx.get(f"{url}/stats").status_code == 401  # key taken from the environment
        with gingham.Client(url, api_key="k1") as c:
            q = random_docs(__import__("numpy").random.default_rng(0), 1)[0]
            assert len(c.search(q, k=2)) == 2
            assert c.stats()["server"]["limits"]["max_k"] == 3
    finally:
        proc.terminate()
        proc.wait(20)
    missing = subprocess.run([sys.executable, "-m", "gingham", "serve", path + "-missing"],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"gingham serve: error: no index at {path + '-missing'!r}"]


def test_docs_limits_table_matches_the_dataclass():
    docs = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "server.md")
    with open(docs, encoding="utf-8") as f:
        rows = [line.strip().strip("|").split("|") for line in f
                if line.startswith("| `--max-")]
    table = {cells[0].strip().strip("`"): (int(cells[1]), cells[2].strip()) for cells in rows}
    limits = {"--" + f.name.replace("_", "-"): (f.default, f.metadata["help"])
              for f in dataclasses.fields(ServiceLimits)}
    assert table == limits
