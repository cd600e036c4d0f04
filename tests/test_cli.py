"""The command line's own surface: --version, and hints that copy-paste the way the command was started."""

import sys

from typer.testing import CliRunner

import archsearch
from search.cli import app
from search.cli.app import command_prefix

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"archsearch {archsearch.__version__}"


def test_hints_follow_how_the_command_was_started(monkeypatch, tmp_path):
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    monkeypatch.setenv("UV_INTERNAL__PARENT_INTERPRETER", "/usr/local/bin/python3")
    assert command_prefix() == "python3 -m uv run archsearch"  # the README's form
    monkeypatch.delenv("UV_INTERNAL__PARENT_INTERPRETER")
    assert command_prefix() == "uv run archsearch"
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH")
    script = tmp_path / "bin" / "archsearch"  # a venv's script that is not on PATH
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert command_prefix() == str(script)
    monkeypatch.setattr(sys, "argv", ["/x/search/cli/__main__.py"])  # python -m search.cli
    assert command_prefix() == f"{sys.executable} -m search.cli"


def test_a_password_in_a_store_uri_is_masked_in_what_archsearch_prints(tmp_path):
    from search.tracking.locations import masked

    assert masked("to postgresql+psycopg://team:pa:ss@db:5432/x and mysql://u:p@h/d") == (
        "to postgresql+psycopg://team:***@db:5432/x and mysql://u:***@h/d")
    assert masked("http://127.0.0.1:5000/#/experiments sqlite:///a/b.db") == "http://127.0.0.1:5000/#/experiments sqlite:///a/b.db"
    result = runner.invoke(app, ["server", "--backend-store-uri", "oracle://team:hunter2@db/x", "--artifacts", str(tmp_path / "a")])
    assert result.exit_code == 2 and "oracle://team:***@db/x" in result.output and "hunter2" not in result.output
