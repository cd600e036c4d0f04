"""`--where` filters: the grammar keeps the right rows, and text outside it is refused without running."""

import io
import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.errors import TableError
from search.reporting.filters import MAX_DEPTH, MAX_LENGTH, filter_trials
from search.tracking.tags import PARENT_TAG, ROLE_TAG, SEARCH_ROLE, TRIAL_ROLE, VARYING_TAG

runner = CliRunner()

# MLflow keeps params as text: `residual` is "True"/"False", as `trials_frame` reads it back.
FRAME = pd.DataFrame(
    {
        "depth": [20, 20, 56, 56, 32],
        "residual": ["True", "False", "True", "False", "True"],
        "bn": ["pre", "post", "pre", None, "none"],
        "kernel": ["3", "1x1", "3", "5", None],  # mixed: stays text
        "best_val_accuracy": [0.90, 0.80, math.nan, 0.70, 0.95],
        "pretrained": [True, False, True, False, True],
        "status": ["FINISHED", "FINISHED", "FAILED", "FINISHED", "FINISHED"],
        "width": [0.5, 1.0, 0.5, 1.0, 2.0],
    }
)


@pytest.mark.parametrize(
    "where, rows",
    [
        ("depth = 20 and residual == 'True'", [0]),
        ("`depth` = 20", [0, 1]),  # backticks quote a column name, as for Hyperband's `tuner/epochs`
        ("residual = True", [0, 2, 4]),
        ("residual = 'False'", [1, 3]),
        ("residual != True", [1, 3]),
        ("bn = 'pre' and depth >= 32", [2]),
        ("depth>=32", [2, 3, 4]),
        ('bn = "pre"', [0, 2]),
        ("bn != 'pre'", [1, 3, 4]),  # a missing value is different from 'pre', as in pandas
        ("depth in [20, 32]", [0, 1, 4]),
        ("depth not in [20]", [2, 3, 4]),
        ("bn in ['pre', 'none'] or depth = 56", [0, 2, 3, 4]),
        ("bn in []", []),
        ("not (depth > 20)", [0, 1]),
        ("not depth > 20 and residual = True", [0]),
        ("residual = 'True' and not bn = 'pre'", [4]),
        ("(depth = 20 or depth = 56) and residual = False", [1, 3]),
        ("20 < depth <= 56", [2, 3, 4]),
        ("56 > depth", [0, 1, 4]),
        ("best_val_accuracy > 0.85", [0, 4]),  # NaN matches no ordering
        ("best_val_accuracy < -1", []),
        ("width = 1", [1, 3]),
        ("width <= .5", [0, 2]),
        ("width < 1e1", [0, 1, 2, 3, 4]),
        ("depth = '20'", [0, 1]),  # a number written as text still compares as a number
        ("kernel = 3", [0, 2]),  # and a number matches the text "3" of a mixed column
        ("kernel = '1x1'", [1]),
        ("pretrained = True", [0, 2, 4]),
        ("pretrained != 'True'", [1, 3]),
        ("status = 'FINISHED' and depth != 56", [0, 1, 4]),
    ],
)
def test_valid_filters_keep_the_right_rows(where, rows):
    assert filter_trials(FRAME, where).index.tolist() == rows


@pytest.mark.parametrize(
    "where, fragment",
    [
        ("widht = 1", "no column 'widht' (did you mean 'width'?); columns: best_val_accuracy, bn, "),
        ("zzz = 1", "no column 'zzz'; columns: "),
        ("depth", "'depth' alone is not a condition"),
        ("depth >", "found the end"),
        ("1 = 1", "one side must be a column"),
        ("depth < width", "not with another column"),
        ("residual > True", "True/False can only be compared with = or !="),
        ("depth = True", "depth holds numbers, not True/False"),
        ("depth = 'deep'", "depth holds numbers: compare it with a number, not 'deep'"),
        ("depth in (20, 32)", "as a list: in [...]"),
        ("bn = 'pre", "not closed"),
        ("", "empty filter"),
        ("depth = 20 & bn = 'pre'", "write 'and'"),
        ("depth is 20", "'is' is not allowed"),
    ],
)
def test_bad_filters_say_what_is_wrong_on_one_line(where, fragment):
    with pytest.raises(TableError) as raised:
        filter_trials(FRAME, where)
    message = raised.value.message()
    assert message.startswith("--where ") and fragment in message
    assert "\n" not in message


# Each would run Python under DataFrame.query(engine="python"); TMP is a fresh folder per test.
PAYLOADS = [
    "@pd.io.common.os.system('touch TMP/pwned')",
    "depth.to_csv('TMP/pwned')",
    "depth.to_csv('TMP/pwned') or depth > 0",
    "depth == depth.to_csv('TMP/pwned')",
    "@pd.read_csv('/etc/hostname')",
    "().__class__.__bases__[0].__subclasses__()",
    "__import__('os').system('touch TMP/pwned')",
    "depth in [__import__('os').system('touch TMP/pwned')]",
    "(lambda: __import__('os').system('touch TMP/pwned'))()",
    "lambda x: x",
    "f'{__import__(\"os\").system(\"touch TMP/pwned\")}' == bn",
    "bn == b'pre'",
    "open('TMP/pwned', 'w').write('x') > 0",
    "eval(\"__import__('os').system('touch TMP/pwned')\")",
    "bn = 'pre' and getattr(depth, 'to_csv')('TMP/pwned')",
    "status[0] == 'F'",
    "depth + 1 > 2",
    "depth ** 99999999 > 1",
    "(depth := 3) > 0",
    "`depth > 1",
    "[x for x in ()]",
    "{1: 2}",
    "depth if True else bn",
    "depth == 20; import os",
    "depth == 20 # and more",
    "bn = 'pre\\' or True",
    "bn = 'pre' \\\n or True",
    "depth = 20\x00",
    "depth = 20\nimport os",
    "depth = 20\r\n",
    "bn = 'pr\x00e'",
    "d\u0435pth = 20",  # a Cyrillic e
    "(" * 50_000 + "depth = 20" + ")" * 50_000,
    "(" * 900 + "depth = 20" + ")" * 900,
    "not " * 400 + "depth = 20",
    "depth = 20 or " * 200 + "depth = 20",
]


@pytest.fixture
def payloads(tmp_path):
    return [payload.replace("TMP", str(tmp_path)) for payload in PAYLOADS], tmp_path / "pwned"


def test_the_payloads_are_live_under_pandas_query(tmp_path):
    """The file checks below could fail: pandas' own query runs these payloads and writes the file."""
    for payload in ("@pd.io.common.os.system('touch TMP/pwned')", "depth == depth.to_csv('TMP/pwned')"):
        marker = tmp_path / "pwned"
        marker.unlink(missing_ok=True)
        FRAME.query(payload.replace("TMP", str(tmp_path)), engine="python")
        assert marker.exists(), payload


def test_every_payload_is_refused_and_runs_nothing(payloads):
    texts, marker = payloads
    for text in texts:
        with pytest.raises(TableError) as raised:
            filter_trials(FRAME, text)
        message = raised.value.message()
        assert message.startswith("--where ") and "\n" not in message and len(message) < 400, message
        assert "not allowed" in message or "not closed" in message or "nested more than" in message or "longer than" in message or "expected" in message, message
        assert not marker.exists(), text


def test_nesting_and_length_are_bounded_with_named_limits():
    with pytest.raises(TableError, match=f"longer than {MAX_LENGTH:,} characters"):
        filter_trials(FRAME, "(" * 50_000 + "depth = 20" + ")" * 50_000)
    deep = "(" * (MAX_DEPTH + 1) + "depth = 20" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(TableError, match=f"nested more than {MAX_DEPTH} levels"):
        filter_trials(FRAME, deep)
    allowed = "(" * MAX_DEPTH + "depth = 20" + ")" * MAX_DEPTH
    assert len(filter_trials(FRAME, allowed)) == 2


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Experiment `grid`: one search whose trials are FRAME's depth, residual and bn (FINISHED)."""
    root = tmp_path_factory.mktemp("filters_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("grid")
    parent = client.create_run(experiment, tags={ROLE_TAG: SEARCH_ROLE}).info.run_id
    for depth, residual, bn, accuracy in (("20", "True", "pre", 0.9), ("20", "False", "post", 0.8), ("56", "True", "pre", 0.95)):
        tags = {ROLE_TAG: TRIAL_ROLE, PARENT_TAG: parent, VARYING_TAG: "depth,residual"}
        run = client.create_run(experiment, tags=tags).info.run_id
        for key, value in (("depth", depth), ("residual", residual), ("bn", bn)):
            client.log_param(run, key, value)
        for key, value in (("best_val_accuracy", accuracy), ("params", 1000.0), ("flops", 2000.0), ("train_seconds", 1.0)):
            client.log_metric(run, key, value)
        client.set_terminated(run, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return uri


def test_compare_where_keeps_the_matching_trials(store):
    result = runner.invoke(app, ["compare", "grid", "--where", "residual = True and depth >= 32", "--format", "json", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    assert '"depth": 56' in result.output and '"depth": 20' not in result.output
    result = runner.invoke(app, ["compare", "grid", "--where", "bn in ['pre']", "--format", "csv", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    kept = pd.read_csv(io.StringIO(result.output))
    assert kept[["depth", "residual", "mean", "n"]].values.tolist() == [[56, True, 0.95, 1], [20, True, 0.9, 1]]


def test_every_payload_exits_2_through_the_cli_with_one_line(store, payloads):
    texts, marker = payloads
    for text in texts:
        result = runner.invoke(app, ["compare", "grid", "--where", text, "--tracking-uri", store])
        assert result.exit_code == 2, (text, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --where ") and "Traceback" not in result.output, result.output
        assert not marker.exists(), text


def test_report_with_a_refused_filter_makes_no_folder(store, tmp_path):
    out = tmp_path / "report"
    payload = f"depth.to_csv('{tmp_path}/pwned')"
    result = runner.invoke(app, ["report", "grid", "--where", payload, "--out", str(out), "--no-log", "--tracking-uri", store])
    assert result.exit_code == 2 and "'.' (attribute access) is not allowed" in result.output, result.output
    assert not out.exists() and not (tmp_path / "pwned").exists()
