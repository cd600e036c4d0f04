"""One error tree: archsearch's own errors end in one line and their exit status; anything else is a bug
and keeps its traceback."""

import inspect
import subprocess
import sys

from conftest import REPO
from typer.testing import CliRunner

from search import errors
from search.cli import app


def test_every_error_archsearch_raises_is_in_the_tree_with_its_status():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 10
    assert all(issubclass(c, errors.ArchsearchError) for c in classes)
    user = [c for c in classes if issubclass(c, errors.UserError)]
    assert all(c.exit_code == 2 for c in user) and errors.SearchStopped.exit_code == 1 and errors.Interrupted.exit_code == 130


def test_a_user_error_is_one_line_and_its_exit_status(tmp_path):
    result = CliRunner().invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{tmp_path / 'absent.db'}"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no MLflow store at") and len(result.output.strip().splitlines()) == 1


BUG = """
import sys
import search.orchestration.report as report
def load_comparison(*args, **kwargs):
    raise {error}("a bug, not the user's doing")
report.load_comparison = load_comparison
from search.cli import app
sys.argv = ["archsearch", "compare", "tiny"]
app()
"""


def test_a_bug_keeps_its_traceback_and_exits_1_whatever_its_class():
    """RuntimeError, OSError and KeyError were once read as user errors; now only the tree is."""
    for error in ("RuntimeError", "OSError", "KeyError"):
        done = subprocess.run([sys.executable, "-c", BUG.format(error=error)], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, (error, done.stderr[-2000:])
        assert "Traceback (most recent call last)" in done.stderr and f"{error}:" in done.stderr
        assert "error: " not in done.stderr.splitlines()[0]


def test_a_search_stopped_by_failures_is_an_error_of_the_tree_not_a_bug():
    stopped = errors.SearchStopped("Number of consecutive failures exceeded the limit of 2.\nOversized model")
    assert stopped.message() == "search stopped: Number of consecutive failures exceeded the limit of 2."
    assert errors.DataError("no such file").at("spaces/x.yaml").message() == "spaces/x.yaml: no such file"
    assert errors.DataError("x").at("a.yaml").at("b.yaml").message() == "a.yaml: x"  # the nearest place wins


def test_a_store_or_state_folder_that_cannot_be_made_is_one_line_exit_2(tmp_path):
    """Where the tracking store or the tuner folder would go is a file: the user's setting, named, not a traceback."""
    from conftest import TINY_SPACE, write

    space = write(tmp_path / "tiny.yaml", TINY_SPACE)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    good_uri, good_tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "tuner")
    for uri, tuner, fragment in (
        (f"sqlite:///{blocker / 'store' / 'mlflow.db'}", good_tuner, "cannot create the MLflow store"),
        (good_uri, str(blocker / "tuner"), "cannot create the search's state folder"),
    ):
        result = CliRunner().invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", tuner])
        assert result.exit_code == 2, result.output
        assert fragment in result.output and str(space) in result.output and "Traceback" not in result.output
