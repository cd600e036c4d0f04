"""The only reader of space files: YAML text -> validated `Space`, or one `SpaceError` that names the
file, the line, the key path and what is allowed.

Three steps, a module each: `yaml_reader` reads the file within bounds, `wording` validates it against the
schema and says pydantic's errors in the file's terms, `consistency` checks the rules that span keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from search.errors import SpaceError
from search.spec.consistency import check_consistency
from search.spec.problems import MAX_PROBLEMS, Problem, line_of
from search.spec.schema import Space
from search.spec.wording import validated
from search.spec.yaml_reader import read_yaml


def load_space(path: Path | str, *, transfer_target: bool = False) -> Space:
    """Read, parse and validate a space file; relative data paths are taken from the file's folder.

    A transfer's target is a cells space whose `genotype` the transfer fills in from a search."""
    path = Path(path)
    node, data = read_yaml(path)
    space = validated(Space, path, node, data)
    if space.dataset.path is not None and not space.dataset.path.is_absolute():
        # realpath, not Path.resolve: a symlink loop is then reported by the data check, not raised
        dataset = space.dataset.model_copy(update={"path": Path(os.path.realpath(path.parent / space.dataset.path))})
        space = space.model_copy(update={"dataset": dataset})
    problems = check_consistency(space, transfer_target)
    if problems:
        located = [Problem(p.key, p.message, line_of(node, p.key.split("."))) for p in problems[:MAX_PROBLEMS]]
        raise SpaceError(path, located, len(problems))
    return space
