"""The only reader of space files: YAML text -> validated `Space`, or one `SpaceError` that names the
file, the line, the key path and what is allowed.

YAML is read with a safe loader that also refuses aliases (a few lines of nested aliases expand to
billions of nodes) and duplicate keys (the second silently wins in plain YAML, hiding a typo).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from search.errors import SpaceError
from search.spec.families import FAMILIES
from search.spec.schema import Space

MAX_BYTES = 1_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
KNOWN_SIZES = {"digits": 1797, "mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class _SafeNoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in space files; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def load_space(path: Path | str, *, transfer_target: bool = False) -> Space:
    """Read, parse and validate a space file; relative data paths are taken from the file's folder.

    A transfer's target is a cells space whose `genotype` the transfer fills in from a search."""
    path = Path(path)
    node, data = _parse(path, _read_text(path))
    try:
        space = Space.model_validate(data)
    except ValidationError as error:
        raise SpaceError(path, [_from_pydantic(err, node) for err in error.errors()]) from None
    if space.dataset.path is not None and not space.dataset.path.is_absolute():
        dataset = space.dataset.model_copy(update={"path": (path.parent / space.dataset.path).resolve()})
        space = space.model_copy(update={"dataset": dataset})
    problems = check_consistency(space, transfer_target)
    if problems:
        raise SpaceError(path, [Problem(p.key, p.message, _line_of(node, p.key.split("."))) for p in problems])
    return space


def _read_text(path: Path) -> str:
    if not path.exists():
        raise SpaceError(path, [Problem("", "no such file")])
    if path.is_dir():
        raise SpaceError(path, [Problem("", "is a directory; give a space file (.yaml)")])
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SpaceError(path, [Problem("", f"file is {size:,} bytes; a space file is at most {MAX_BYTES:,}")])
    raw = path.read_bytes()
    if b"\0" in raw:
        raise SpaceError(path, [Problem("", "binary file; a space file is UTF-8 YAML text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpaceError(path, [Problem("", f"not UTF-8 text (byte {error.start})")]) from None


def _parse(path: Path, text: str):
    loader = _SafeNoAliasLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpaceError(path, [Problem("", "file is empty; a space file needs at least `name` and `model`")])
        _refuse_duplicate_keys(path, node)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        problem = (error.problem or str(error)).replace("could not determine a constructor for the tag", "tag")
        if isinstance(error, yaml.constructor.ConstructorError):
            problem += " is not allowed: a space file holds plain data (no Python objects)"
        raise SpaceError(path, [Problem("", f"invalid YAML: {problem}", line)]) from None
    except yaml.YAMLError as error:
        raise SpaceError(path, [Problem("", f"invalid YAML: {error}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpaceError(path, [Problem("", f"expected a mapping of keys (name, model, ...), got {type(data).__name__}")])
    return node, data


def _refuse_duplicate_keys(path: Path, node: yaml.Node, trail: tuple = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dotted = ".".join(map(str, (*trail, key)))
                raise SpaceError(path, [Problem(dotted, "key given twice", key_node.start_mark.line + 1)])
            seen.add(key)
            _refuse_duplicate_keys(path, value_node, (*trail, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(path, item, (*trail, index))


def _from_pydantic(err: dict, root: yaml.Node) -> Problem:
    loc = list(err["loc"])
    if err["type"] == "extra_forbidden":
        message = f"unknown key; allowed here: {', '.join(_fields_at(loc[:-1]))}"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] != "missing" and isinstance(err.get("input"), (str, int, float, bool)):
            message += f" (got {err['input']!r})"
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the family decides the model's keys
        loc = [*loc, "family"]
        names = [repr(name) for name in FAMILIES]
        families = f"{', '.join(names[:-1])} or {names[-1]}"
        message = f"Input should be {families}" + (f" (got {err['ctx']['tag']!r})" if "tag" in err.get("ctx", {}) else "")
        if err["type"] == "union_tag_not_found":
            message = f"Field required: {families}"
    if loc[:1] == ["model"] and len(loc) > 1 and loc[1] in FAMILIES:
        loc.pop(1)  # the discriminated union's tag is not a key the user wrote
    node, found = root, []
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node, found = child, [*found, part]
    rest = [part for part in loc[len(found) :] if isinstance(part, str)]
    line = node.start_mark.line + 1 if found else None
    return Problem(_dotted(found + rest), message, line)


def _child(node: yaml.Node, part) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((v for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _line_of(root: yaml.Node, parts: list[str]) -> int | None:
    node = root
    for part in parts:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1 if node is not root else None


def _dotted(parts: list) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _fields_at(loc: list) -> list[str]:
    """The keys the schema allows at `loc` (a pydantic loc, family tag included)."""
    cls: type[BaseModel] = Space
    parts = iter(loc)
    for part in parts:
        if cls is Space and part == "model":
            cls = FAMILIES[next(parts)]
        else:
            cls = next(a for a in _flat_args(cls.model_fields[part].annotation) if _is_model(a))
    return list(cls.model_fields)


def _flat_args(annotation) -> list:
    args = typing.get_args(annotation)
    return [annotation] if not args else [x for a in args for x in _flat_args(a)]


def _is_model(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def check_consistency(space: Space, transfer_target: bool = False) -> list[Problem]:
    """Rules that span several keys, each reported at the key the user should change."""
    if transfer_target and (unfit := transfer_target_problems(space)):
        return unfit
    problems = []
    data = space.dataset
    if data.name in ("npz", "folder"):
        problems += _check_data_path(data.name, data.path)
    elif data.path is not None:
        problems.append(Problem("dataset.path", f"only used with dataset.name 'npz' or 'folder', not {data.name!r}"))
    known = KNOWN_SIZES.get(data.name)
    if data.subset is not None and known is not None and data.subset > known:
        problems.append(Problem("dataset.subset", f"{data.name} has {known} training images; subset {data.subset} is larger"))
    problems += [] if transfer_target else _check_search(space)
    model = space.model
    for key, value, needed in model.input_needs():
        if data.input_size < needed:
            problems.append(
                Problem(
                    "dataset.input_size",
                    f"{data.input_size} is too small for {model.family} {key} {value}: its downsamplings "
                    f"need an input of at least {needed}x{needed}",
                )
            )
            break
    training = space.training
    if training.milestones and training.schedule != "step":
        problems.append(Problem("training.milestones", "only used with schedule 'step'"))
    if training.milestones != sorted(set(training.milestones)) or any(m >= training.epochs for m in training.milestones):
        problems.append(Problem("training.milestones", f"must be increasing epochs below training.epochs ({training.epochs})"))
    return problems


def transfer_target_problems(space: Space) -> list[Problem]:
    """A transfer's target is a space of a searchable family that leaves its structure to the transfer."""
    model = space.model
    if not model.searchable:
        searchable = " or ".join(name for name, family in FAMILIES.items() if family.searchable)
        return [Problem("model.family", f"a transfer's target must be a {searchable} space, not {model.family!r}")]
    if not model.searched:
        return [Problem(", ".join(f"model.{name}" for name in model.structure_names()), "leave it out of a transfer's target: the transfer sets it from the search")]
    return []


def _check_search(space: Space) -> list[Problem]:
    search, problems = space.search, []
    if search.strategy == "evolution" and search.max_trials is not None and search.max_trials <= search.population_size:
        problems.append(Problem("search.population_size", f"{search.population_size} is not below search.max_trials "
                                f"({search.max_trials}): the first population_size trials are random, so evolution would never start"))
    if search.strategy == "evolution" and search.sample_size > search.population_size:
        problems.append(Problem("search.sample_size", f"{search.sample_size} is more than search.population_size ({search.population_size})"))
    if space.model.searched:
        if search.strategy == "grid":
            problems.append(
                Problem("search.strategy", "grid cannot enumerate searched cells; use evolution, random, bayesian or hyperband "
                        "(or fix the cells with model.genotype; a transfer's target gets them from `archsearch transfer`)")
            )
        elif search.max_trials is None and search.strategy != "hyperband":
            problems.append(Problem("search.max_trials", f"required when cells are searched (strategy {search.strategy})"))
    return problems


def _check_data_path(name: str, path: Path | None) -> list[Problem]:
    if path is None:
        return [Problem("dataset.path", f"required when dataset.name is {name!r}")]
    if name == "npz":
        if not path.is_file():
            return [Problem("dataset.path", f"no .npz file at {path}")]
        return []
    if not path.is_dir():
        return [Problem("dataset.path", f"no image folder at {path}")]
    classes = [d for d in path.iterdir() if d.is_dir()]
    images = [f for d in classes for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
    if len(classes) < 2 or not images:
        return [
            Problem(
                "dataset.path",
                f"{path} must hold one sub-folder per class (at least 2) with images ({', '.join(sorted(IMAGE_SUFFIXES))})",
            )
        ]
    return []
