"""Odd and unit batch sizes train to the end through the real search path.

TensorFlow's oneDNN kernel for the weight gradient of a strided 1x1 conv with fewer than 16 input channels
writes past its workspace on AVX-512 CPUs when the batch is odd, and the trial process dies (exit -11 or -6).
A residual ResNet-8 at half width has exactly such a conv: the 8-channel projection shortcut into stage 2.
"""

from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.tracking.tags import FAILURE_TAG, PARENT_TAG

# The tiny space at 16x16 (the shortcut's input must be large enough for the overrun to corrupt the heap),
# residual only, one trial per batch size. The test part is kept small (36 images, not 359): it is only
# evaluated, and at batch size 1 every image is a step.
ODD_BATCHES = (
    TINY_SPACE.replace("input_size: 8", "input_size: 16\n  test_split: 0.02")
    .replace("subset: 300", "subset: 150")
    .replace("residual: [false, true]", "residual: true")
    .replace("batch_size: 32", "batch_size: [1, 3, 5]")
    .replace("epochs: 2", "epochs: 1")
)


def test_batch_sizes_1_3_and_5_all_finish(tmp_path):
    space = write(tmp_path / "odd.yaml", ODD_BATCHES)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner")])
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    trials = [r for r in client.search_runs([experiment.experiment_id]) if PARENT_TAG in r.data.tags]
    outcome = {r.data.params["batch_size"]: (r.info.status, r.data.tags.get(FAILURE_TAG)) for r in trials}
    assert sorted(outcome) == ["1", "3", "5"], result.output
    assert all(status == "FINISHED" for status, _ in outcome.values()), outcome
    assert result.exit_code == 0, result.output
