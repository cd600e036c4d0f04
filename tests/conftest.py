import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]

# A search small enough for the suite: ResNet-8 at 8x8 on 300 digits, two epochs per trial; latency is
# timed only where a test asks for it (a quarter of a second per trial).
TINY_SPACE = """\
name: tiny
dataset:
  name: digits
  input_size: 8
  subset: 300
  validation_split: 0.3
model:
  family: resnet
  depth: 8
  width: 0.5
  residual: [false, true]
training:
  learning_rate: 0.05
  batch_size: 32
  epochs: 2
search:
  strategy: grid
  seed: 7
tracking:
  experiment: tiny
  latency_calls: 0
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tiny_space(tmp_path) -> Path:
    return write(tmp_path / "tiny.yaml", TINY_SPACE)
