"""A problem found in a space or study file, said in the file's terms: the key path the user wrote, the line
it is on, and the value at fault as the file spells it. Shared by the reading, the wording of pydantic's
errors and the cross-key checks, so that each names a place and a value the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from search.spec.fields import clip

MAX_PROBLEMS = 10  # listed in one message (a message stays readable); the rest are counted


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


def child_of(node: yaml.Node, part) -> yaml.Node | None:
    """The node under key or index `part` of `node`, or None where the file has none."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((v for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def line_of(root: yaml.Node, parts: list[str]) -> int | None:
    """The line of the deepest node of the key path `parts` the file has; None if it has none of it."""
    node = root
    for part in parts:
        child = child_of(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1 if node is not root else None


def dotted(parts: list) -> str:
    """A key path as the user reads it: `model.depth[2]`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def shown(value) -> str:
    """The offending value, short, as the file spells it (true, null) where Python's repr would not."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return f"a list {clip(value)}" if value else "an empty list"
    if isinstance(value, dict):
        return f"a mapping {clip(value)}" if value else "an empty mapping"
    return clip(value)
