"""The only reader of space files: YAML text -> validated `Space`, or one `SpaceError` that names the
file, the line, the key path and what is allowed.

What is read is decided from the file alone and bounded before it costs anything: only a regular file of
at most MAX_BYTES (not a FIFO, which would block, nor /dev/zero, which never ends); nesting at most
MAX_DEPTH levels (PyYAML composes recursively); no aliases (a few lines of nested aliases expand to
billions of nodes); no duplicate keys (the second silently wins in plain YAML, hiding a typo); keys that
are plain names; plain data only: text, numbers, true/false, null, lists and mappings.

Scalars are read as YAML 1.2's core schema reads them, not PyYAML's YAML 1.1: `yes`, `no`, `on` and `off`
are text, not booleans; `010` is ten, not eight; `1:0:0` is text, not 3600; `1e-3` is a number.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from search.errors import SpaceError
from search.files import NotRegularFile, TooLarge, read_limited
from search.spec.families import FAMILIES
from search.spec.fields import NAME_PATTERN, clip
from search.spec.schema import Space

MAX_BYTES = 1_000_000
MAX_DEPTH = 32  # lists and mappings inside each other; a space file needs 4
MAX_NODES = 50_000  # values, lists and mappings; twenty axes of 1,000 choices each fit
MAX_DIGITS = 100  # of one number; no field takes more than 13
MAX_PROBLEMS = 10  # listed in one message (a message stays readable); the rest are counted
MAX_GRID = 10_000  # candidates a search may default to trying all of; a larger grid needs search.max_trials
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
KNOWN_SIZES = {"digits": 1797, "mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}
OFFICIAL_TEST_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")  # their own test part is the test set, not test_split's
# The training part's (images, labels) IDX files, each plain or `.gz`, that a dataset.path folder of
# mnist or fashion_mnist holds (as both are distributed)
IDX_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_NAMES = ("mnist", "fashion_mnist")


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class _Refused(Exception):
    """Valid YAML that a space file may not hold, found before it is composed or constructed."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _at(mark: yaml.Mark) -> int:
    return mark.line + 1


_TAG = "tag:yaml.org,2002:"
# YAML 1.2 core schema (yaml.org/spec/1.2.2/#1032-tag-resolution): (tag, pattern, possible first characters).
_CORE_SCALARS = (
    ("null", r"~|null|Null|NULL|", "~nN"),
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", "-+.0123456789"),
)
_CORE_PATTERNS = {name: re.compile(f"^(?:{pattern})$") for name, pattern, _ in _CORE_SCALARS}
_PLAIN_TAGS = {_TAG + name for name in ("str", "seq", "map", *_CORE_PATTERNS)}


class _Plain(yaml.constructor.SafeConstructor, yaml.resolver.BaseResolver):
    """YAML 1.2 core scalars and plain-data constructors only; any other tag has no constructor."""

    yaml_implicit_resolvers: typing.ClassVar[dict] = {}
    yaml_constructors: typing.ClassVar[dict] = {}

    def __init__(self):
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.BaseResolver.__init__(self)

    def construct_core(self, node: yaml.ScalarNode):
        """A core-schema scalar, its text already checked against its tag's pattern by `_check_nodes`."""
        kind, value = node.tag.removeprefix(_TAG), node.value
        if kind == "null":
            return None
        if kind == "bool":
            return value.lower() == "true"
        if kind == "int":
            return int(value[2:], 8) if value.startswith("0o") else int(value[2:], 16) if value.startswith("0x") else int(value)
        if value.lstrip("+-").lower() in (".inf", ".nan"):
            return float(value.replace(".", "", 1))
        return float(value)


for _name, _pattern, _first in _CORE_SCALARS:
    _Plain.add_implicit_resolver(_TAG + _name, _CORE_PATTERNS[_name], [*_first, ""] if _name == "null" else list(_first))
    _Plain.add_constructor(_TAG + _name, _Plain.construct_core)
_Plain.add_constructor(_TAG + "str", yaml.constructor.SafeConstructor.construct_yaml_str)
_Plain.add_constructor(_TAG + "seq", yaml.constructor.SafeConstructor.construct_yaml_seq)
_Plain.add_constructor(_TAG + "map", yaml.constructor.SafeConstructor.construct_yaml_map)
_Plain.add_constructor(None, yaml.constructor.SafeConstructor.construct_undefined)

if yaml.__with_libyaml__:  # libyaml parses some 15 times faster: a 1 MB file is refused in a fraction of a second

    class _SpaceLoader(yaml.cyaml.CParser, _Plain):
        def __init__(self, text: str):
            yaml.cyaml.CParser.__init__(self, text)
            _Plain.__init__(self)

else:

    class _SpaceLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Plain):
        def __init__(self, text: str):
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Plain.__init__(self)


def _check_events(text: str) -> None:
    """Nesting, size, aliases and documents, refused from the parser's events before anything is composed:
    the parser is iterative, but the composer recurses once per level and builds every node."""
    loader = _SpaceLoader(text)
    depth = nodes = documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(Problem("", "aliases (*name) are not allowed in space files; write the value out", _at(event.start_mark)))
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Refused(Problem("", "a second YAML document starts here; a space file is one document", _at(event.start_mark)))
                if event.version not in (None, (1, 2)):  # under %YAML 1.1, 010 would be eight: say so, never guess
                    version = ".".join(map(str, event.version))
                    raise _Refused(Problem("", f"%YAML {version}: space files are read as YAML 1.2; remove the line", _at(event.start_mark)))
            elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                nodes += 1
                if nodes > MAX_NODES:
                    raise _Refused(Problem("", f"more than {MAX_NODES:,} values; a space file holds a few hundred", _at(event.start_mark)))
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise _Refused(Problem("", f"lists and mappings nested more than {MAX_DEPTH} levels deep", _at(event.start_mark)))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


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
        located = [Problem(p.key, p.message, _line_of(node, p.key.split("."))) for p in problems[:MAX_PROBLEMS]]
        raise SpaceError(path, located, len(problems))
    return space


def read_yaml(path: Path) -> tuple[yaml.Node, dict]:
    """The mapping a space (or study) file holds and its YAML node (for line numbers), or a `SpaceError`."""
    return _parse(path, _read_text(path))


def validated(schema: type[BaseModel], path: Path, node: yaml.Node, data: dict):
    """`data` as `schema`, or a `SpaceError` naming each problem's key and line."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        problems = [_from_pydantic(err, node, schema) for err in error.errors()[:MAX_PROBLEMS]]
        raise SpaceError(path, problems, error.error_count()) from None


def _read_text(path: Path) -> str:
    if "\0" in str(path):
        raise SpaceError(path, [Problem("", "a path with a NUL byte; give a space file (.yaml)")])
    if path.is_dir():
        raise SpaceError(path, [Problem("", "is a directory; give a space file (.yaml)")])
    try:
        raw = read_limited(path, MAX_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        raise SpaceError(path, [Problem("", "no such file")]) from None
    except PermissionError:
        raise SpaceError(path, [Problem("", "cannot be read: permission denied")]) from None
    except NotRegularFile as error:
        raise SpaceError(path, [Problem("", f"{error.strerror}; a space file is a regular file (.yaml)")]) from None
    except TooLarge:
        raise SpaceError(path, [Problem("", f"file is larger than {MAX_BYTES:,} bytes; a space file is at most {MAX_BYTES:,}")]) from None
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise
        raise SpaceError(path, [Problem("", "the path is too long for this file system")]) from None
    if b"\0" in raw:
        raise SpaceError(path, [Problem("", "binary file; a space file is UTF-8 YAML text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpaceError(path, [Problem("", f"not UTF-8 text (byte {error.start})")]) from None


def _parse(path: Path, text: str):
    loader = None
    try:
        _check_events(text)
        loader = _SpaceLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpaceError(path, [Problem("", "file is empty; a space file needs at least `name` and `model`")])
        _check_nodes(node)
        data = loader.construct_document(node)
    except _Refused as refused:
        raise SpaceError(path, [refused.problem]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = _at(mark) if mark else None
        problem = error.problem or str(error)
        raise SpaceError(path, [Problem("", f"invalid YAML: {problem}", line)]) from None
    except yaml.YAMLError as error:
        raise SpaceError(path, [Problem("", f"invalid YAML: {error}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise SpaceError(path, [Problem("", "file is empty; a space file needs at least `name` and `model`")])
    if not isinstance(data, dict):
        raise SpaceError(path, [Problem("", f"expected a mapping of keys (name, model, ...), got {_shown(data)}")])
    return node, data


_KEY_KINDS = {"int": "a number", "float": "a number", "bool": "true/false", "null": "null"}
_TAG_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null"}


def _check_nodes(node: yaml.Node, trail: tuple = ()) -> None:
    """Plain data only, keys that are distinct plain names; recursion is bounded by MAX_DEPTH."""
    _check_tag(node, trail)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                raise _Refused(Problem(_dotted(list(trail)), f"keys must be plain names, not {kind}", line))
            _check_tag(key_node, trail)
            key = key_node.value
            if key_node.tag != _TAG + "str":
                kind = _KEY_KINDS[key_node.tag.removeprefix(_TAG)]
                raise _Refused(Problem(_dotted([*trail, key]), f"keys must be plain names, not {kind} (quote it to mean the text)", line))
            if key in seen:
                raise _Refused(Problem(_dotted([*trail, key]), "key given twice", line))
            seen.add(key)
            _check_nodes(value_node, (*trail, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_nodes(item, (*trail, index))


def _check_tag(node: yaml.Node, trail: tuple) -> None:
    """A plain-data tag, and for a scalar the text that tag takes in YAML 1.2 (`!!int yes` is no integer)."""
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        shown = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
        message = f"tag '{shown}' is not allowed: a space file holds plain data (text, numbers, true/false, lists and mappings)"
        raise _Refused(Problem(_dotted(list(trail)), message, line))
    kind = node.tag.removeprefix(_TAG)
    if kind in _CORE_PATTERNS and not _CORE_PATTERNS[kind].match(node.value):
        raise _Refused(Problem(_dotted(list(trail)), f"{clip(node.value)} is not {_TAG_KINDS[kind]} (YAML 1.2 core schema)", line))
    if kind == "int" and len(node.value) > MAX_DIGITS:
        message = f"a number of {len(node.value):,} digits; a space file's numbers have at most {MAX_DIGITS}"
        raise _Refused(Problem(_dotted(list(trail)), message, line))


def _from_pydantic(err: dict, root: yaml.Node, schema: type[BaseModel] = Space) -> Problem:
    loc = list(err["loc"])
    message = _said(err, loc, schema)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the family decides the model's keys
        loc = [*loc, "family"]
    if loc[:1] == ["model"] and len(loc) > 1 and loc[1] in FAMILIES:
        loc.pop(1)  # the discriminated union's tag is not a key the user wrote
    node, found, at = root, [], None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        # a key's line, not its value's (a block mapping or list starts on the line below the key)
        at = _key_node(node, part) if isinstance(part, str) else child
        node, found = child, [*found, part]
    rest = [part for part in loc[len(found) :] if isinstance(part, str)]
    line = at.start_mark.line + 1 if at is not None else None
    return Problem(_dotted(found + rest), message, line)


# pydantic's error types that a space or study file can reach, each said in the file's terms: what the key
# takes, what it got (a short repr), and where one could guess it, what was meant. No pydantic wording.
_EXPECTED = {  # the type errors: what the key takes
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number (not .nan or .inf)",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "path_type": "a path (text)",
}
_BOUNDS = {  # type -> (its bound in ctx, how it reads)
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
_MAPPING_TYPES = ("model_type", "model_attributes_type", "dict_type")
_OTHER_TYPES = (
    "extra_forbidden", "missing", "union_tag_invalid", "union_tag_not_found", "literal_error", "too_short", "too_long",
    "string_too_short", "string_too_long", "string_pattern_mismatch", "value_error", "assertion_error",
)
PYDANTIC_TYPES = frozenset((*_EXPECTED, *_BOUNDS, *_MAPPING_TYPES, *_OTHER_TYPES))  # each has its own message
_REQUIRED = {  # what a missing top-level key is
    "name": ": a name of letters, digits, '_', '.' or '-' (it names folders and runs)",
    "model": ": at least `model: {family: vgg}` (or resnet, or cells)",
}
_YAML_11_BOOLEANS = ("yes", "no", "on", "off", "y", "n")


def _said(err: dict, loc: list, schema: type[BaseModel]) -> str:
    """One pydantic error as a plain message (the key path is added by the caller)."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    key = next((part for part in reversed(loc) if isinstance(part, str)), "")
    if kind == "extra_forbidden":
        return _unknown_key(loc, schema)
    if kind == "missing":
        return "required" + (_REQUIRED.get(key, "") if len(loc) == 1 else "")
    if kind in _MAPPING_TYPES:
        return f"expected a mapping of {_settings(loc, schema)}, got {_shown(value)}" + _shorthand(loc, value, schema)
    if kind == "union_tag_invalid":
        tag = value.get("family", ctx.get("tag")) if isinstance(value, dict) else ctx.get("tag")
        return _expected_one_of(list(FAMILIES), tag)
    if kind == "union_tag_not_found":
        return f"required: the model's family, {_either(list(FAMILIES))} (it decides the model's other keys)"
    if kind == "literal_error":
        values = _literals_at(loc, schema)
        expected = _expected_one_of(values, value) if values else f"expected {ctx.get('expected', 'another value')}, got {_shown(value)}"
        return expected + _one_value(loc, value, key, schema)
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {_number(ctx[bound])}, got {_shown(value)}"
    if kind == "too_short":
        unit = "value" if ctx.get("field_type") == "Value" else "item"
        least = ctx.get("min_length", 1)
        have = f"{ctx['actual_length']:,} {unit}s" if ctx.get("actual_length") else "an empty list"
        return f"{have}; give at least {least} {unit}{'s' if least != 1 else ''}"
    if kind == "too_long":
        return f"{ctx.get('actual_length', len(value)):,} items; at most {ctx['max_length']:,}"
    if kind == "string_too_short":
        least = ctx["min_length"]
        have = f"{len(value):,} characters" if isinstance(value, str) and value else "empty text"
        return f"{have}; give at least {least} character{'s' if least != 1 else ''}"
    if kind == "string_too_long":
        return f"{len(value):,} characters long; at most {ctx['max_length']:,} characters"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == NAME_PATTERN:
            return ("must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit (it names folders), "
                    f"got {_shown(value)}")
        return f"must have the form {ctx.get('pattern')}, got {_shown(value)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_shown(value)}" + _type_hint(kind, value) + _one_value(loc, value, key, schema)
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind not in ("value_error", "assertion_error"):  # a type this schema cannot reach today: still no pydantic wording
        message = re.sub(r"^Input should be ", "expected ", message)
    if isinstance(value, (str, int, float, bool)) and clip(value) not in message:
        message += f", got {_shown(value)}" if message.startswith("expected") else f" (got {_shown(value)})"
    return message


def _shown(value) -> str:
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


def _number(bound) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        bound = int(bound)
    return f"{bound:,}" if isinstance(bound, int) else repr(bound)


def _either(values: list) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _close(word, options: list) -> str | None:
    """The allowed option closest to a misspelt `word` (case aside first, then difflib), or None."""
    if not isinstance(word, str):
        return None
    texts = {option.lower(): option for option in options if isinstance(option, str)}
    if word.lower() in texts:
        return texts[word.lower()]
    match = difflib.get_close_matches(word.lower(), list(texts), n=1)
    return texts[match[0]] if match else None


def _expected_one_of(values: list, value) -> str:
    close = _close(value, values)
    return f"expected {_either(values)}, got {_shown(value)}" + (f" (did you mean {close!r}?)" if close is not None else "")


def _type_hint(kind: str, value) -> str:
    """What the file most likely meant by a value of the wrong type."""
    if kind in ("int_type", "int_from_float", "int_parsing") and isinstance(value, float) and value.is_integer():
        return f" (write {int(value)})"
    if isinstance(value, str):
        if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and any(
            _CORE_PATTERNS[tag].match(value) for tag in ("int", "float")
        ):
            return "; remove the quotes to make it a number"
        if kind in ("bool_type", "bool_parsing"):
            if value.lower() in ("true", "false"):
                return "; remove the quotes"
            if value.lower() in _YAML_11_BOOLEANS:
                return "; YAML 1.2 reads yes, no, on and off as text"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"; quote it (\"{value}\") to mean the text"
    if kind == "list_type" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"; write [{value}]"
    return ""


def _one_value(loc: list, value, key: str, schema: type[BaseModel]) -> str:
    """A list where a key takes one value: say so, and for the search's seed, how to run several."""
    if not isinstance(value, list) or not loc:
        return ""
    if not isinstance(loc[-1], str):  # an index: one of an axis's choices
        return "; each choice is one value (lists of choices do not nest)"
    if schema is Space and loc == ["search", "seed"]:
        return ("; a search has one seed: for independent replicates of each trial set search.repeats, and for "
                "several seeds run a study (experiments/<study>/study.yaml lists its seeds)")
    return f"; {key} takes one value (only axes take a list of choices)"


def _settings(loc: list, schema: type[BaseModel]) -> str:
    """`dataset settings (name, path, input_size, ...)`: what a mapping at `loc` holds."""
    key = next((part for part in reversed(loc) if isinstance(part, str)), "")
    if schema is Space and loc == ["model"]:
        return f"model settings (family: {_either(list(FAMILIES))}, then that family's keys)"
    fields = _fields_at(loc, schema)
    listed = f" ({', '.join(fields[:3])}{', ...' if len(fields) > 3 else ''})" if fields else ""
    return (f"{key} settings" if isinstance(loc[-1], str) else "settings") + listed


def _shorthand(loc: list, value, schema: type[BaseModel]) -> str:
    """`model: resnet` or `dataset: mnist`: the value of the mapping's first key, written without it."""
    if not isinstance(value, str) or not loc or not isinstance(loc[-1], str):
        return ""
    if schema is Space and loc == ["model"]:
        first, values = "family", list(FAMILIES)
    else:
        first = next(iter(_fields_at(loc, schema)), None)
        values = _literals_at([*loc, first], schema) if first else []
    return f"; write `{loc[-1]}: {{{first}: {value}}}`" if value in values else ""


def _unknown_key(loc: list, schema: type[BaseModel]) -> str:
    """An unknown key: the allowed key it is closest to, or where the key belongs, and what is allowed here."""
    key, allowed = loc[-1], _fields_at(loc[:-1], schema)
    here = _place(loc[:-1], schema)
    homes = [place for place in _homes(key, schema) if place != here] if isinstance(key, str) else []
    close = _close(key, allowed)
    if close is not None:
        hint = f" (did you mean {close!r}?)"
    elif homes:
        hint = f" ({key!r} belongs {' or '.join(homes)})"
    else:
        hint = ""
    return f"unknown key{hint}; allowed here: {', '.join(allowed)}"


_FAMILY_PLACE = "in model with family "


def _place(loc: list, schema: type[BaseModel]) -> str:
    """How `_homes` names the mapping at `loc`."""
    parts = [part for part in loc if isinstance(part, str)]
    if schema is Space and parts[:1] == ["model"] and len(parts) > 1 and parts[1] in FAMILIES:
        return f"{_FAMILY_PLACE}{parts[1]}" + "".join(f".{part}" for part in parts[2:])
    return f"in {'.'.join(parts)}" if parts else "at the top level"


def _homes(key: str, schema: type[BaseModel]) -> list[str]:
    """Every mapping of the schema that takes `key`, named as `_place` names them."""
    homes: list[str] = []

    def walk(cls: type[BaseModel], place: str, depth: int) -> None:
        if key in cls.model_fields and place not in homes:
            homes.append(place)
        if depth == 4:
            return
        for name, field in cls.model_fields.items():
            for sub in dict.fromkeys(a for a in _flat_args(field.annotation) if _is_model(a)):
                family = sub.model_fields.get("family")
                inner = f"{_FAMILY_PLACE}{sub.name()}" if cls is Space and family is not None else (
                    f"in {name}" if place == "at the top level" else f"{place}.{name}")
                walk(sub, inner, depth + 1)

    walk(schema, "at the top level", 0)
    families = [home.removeprefix(_FAMILY_PLACE) for home in homes if home.startswith(_FAMILY_PLACE)]
    if len(families) > 1:  # one place: "in model with family vgg or resnet"
        first = homes.index(_FAMILY_PLACE + families[0])
        homes = [home for home in homes if not home.startswith(_FAMILY_PLACE)]
        homes.insert(first, _FAMILY_PLACE + " or ".join(families))
    return homes


def _child(node: yaml.Node, part) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((v for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _key_node(node: yaml.MappingNode, part: str) -> yaml.Node:
    return next(k for k, _ in node.value if k.value == part)


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


def _model_at(loc: list, schema: type[BaseModel] = Space) -> type[BaseModel] | None:
    """The schema class of the mapping at `loc` (a pydantic loc, family tag included); None if `loc`
    is no mapping of the schema."""
    cls: type[BaseModel] | None = schema
    parts = (part for part in loc if isinstance(part, str))  # list indices name no class
    for part in parts:
        if cls is Space and part == "model":
            cls = FAMILIES.get(next(parts, None))  # the family tag follows `model` in a loc
        elif cls is not None and part in cls.model_fields:
            cls = next((a for a in _flat_args(cls.model_fields[part].annotation) if _is_model(a)), None)
        else:
            return None
    return cls


def _fields_at(loc: list, schema: type[BaseModel] = Space) -> list[str]:
    """The keys the schema allows at `loc` (a pydantic loc, family tag included)."""
    cls = _model_at(loc, schema)
    return list(cls.model_fields) if cls is not None else []


def _literals_at(loc: list, schema: type[BaseModel] = Space) -> list:
    """The values a Literal field (or an axis of them) at `loc` allows; [] if it is none."""
    parts = [part for part in loc if isinstance(part, str)]
    cls = _model_at(parts[:-1], schema) if parts else None
    if cls is None or parts[-1] not in cls.model_fields:
        return []
    return list(dict.fromkeys(_literals(cls.model_fields[parts[-1]].annotation)))


def _literals(annotation) -> list:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [value for arg in typing.get_args(annotation) for value in _literals(arg)]


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
    if data.name in ("npz", "folder") or (data.name in IDX_NAMES and data.path is not None):
        problems += _check_data_path(data.name, data.path)
    elif data.path is not None:
        problems.append(Problem("dataset.path", f"only used with dataset.name 'npz' or 'folder' (or 'mnist' and 'fashion_mnist', for "
                                f"a folder of their IDX files), not {data.name!r}"))
    known = KNOWN_SIZES.get(data.name) if data.path is None else None  # files of one's own may hold any number
    if data.subset is not None and known is not None:
        held = 0 if data.name in OFFICIAL_TEST_SETS else round(known * data.test_split)
        if data.subset > known - held:
            after = f", {known - held} after the test_split of {held}" if held else ""
            problems.append(Problem("dataset.subset", f"{data.name} has {known} training images{after}; subset {data.subset} is larger"))
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
    elif search.max_trials is None and search.strategy != "hyperband" and (size := space.grid_size()) > MAX_GRID:
        problems.append(Problem("search.max_trials", f"required for a grid of {size:,} candidates (more than {MAX_GRID:,}): "
                                "say how many to try"))
    return problems


def _check_data_path(name: str, path: Path | None) -> list[Problem]:
    if path is None:
        return [Problem("dataset.path", f"required when dataset.name is {name!r}")]
    kind = _kind(path)
    if kind in ("a symlink loop", "unreadable (permission denied)"):
        return [Problem("dataset.path", f"{path} is {kind}")]
    if name == "npz":
        return [] if kind == "file" else [Problem("dataset.path", f"no .npz file at {path}")]
    if name in IDX_NAMES:
        return _check_idx_folder(path, kind)
    if kind != "folder":
        return [Problem("dataset.path", f"no image folder at {path}")]
    try:
        classes = [entry.path for entry in os.scandir(path) if _kind(Path(entry.path)) == "folder"]
        has_images = len(classes) >= 2 and any(
            Path(entry.name).suffix.lower() in IMAGE_SUFFIXES for folder in classes for entry in os.scandir(folder)
        )
    except PermissionError:
        return [Problem("dataset.path", f"{path} cannot be listed: permission denied")]
    if not has_images:
        return [
            Problem(
                "dataset.path",
                f"{path} must hold one sub-folder per class (at least 2) with images ({', '.join(sorted(IMAGE_SUFFIXES))})",
            )
        ]
    return []


def _check_idx_folder(path: Path, kind: str) -> list[Problem]:
    """A folder holding the training part's IDX files, each plain or gzipped."""
    if kind != "folder":
        return [Problem("dataset.path", f"no folder at {path}; give the folder that holds {' and '.join(IDX_TRAIN_FILES)}")]
    kinds = [[_kind(path / f"{name}{suffix}") for suffix in ("", ".gz")] for name in IDX_TRAIN_FILES]
    unreadable = sorted({found for pair in kinds for found in pair if found not in ("file", "folder", "missing", "other")})
    if unreadable:
        return [Problem("dataset.path", f"{path}: a training file there is {unreadable[0]}")]
    missing = [name for name, pair in zip(IDX_TRAIN_FILES, kinds) if "file" not in pair]
    if missing:
        return [
            Problem(
                "dataset.path",
                f"{path} lacks {' and '.join(missing)} (or .gz); it must hold {' and '.join(IDX_TRAIN_FILES)}, each "
                "optionally gzipped, as MNIST and Fashion-MNIST are distributed",
            )
        ]
    return []


def _kind(path: Path) -> str:
    """What is at `path`, from one stat: "file", "folder", "missing", "a symlink loop", "unreadable ...", "other"."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except PermissionError:
        return "unreadable (permission denied)"
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        return "a symlink loop"
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"
