"""Reading a space (or study) file: its text -> the mapping it holds and its YAML node (for line numbers),
or one `SpaceError` that names the file and the line.

What is read is decided from the file alone and bounded before it costs anything: only a regular file of
at most MAX_BYTES (not a FIFO, which would block, nor /dev/zero, which never ends); nesting at most
MAX_DEPTH levels (PyYAML composes recursively); no aliases (a few lines of nested aliases expand to
billions of nodes); no duplicate keys (the second silently wins in plain YAML, hiding a typo); keys that
are plain names; plain data only: text, numbers, true/false, null, lists and mappings.

Scalars are read as YAML 1.2's core schema reads them, not PyYAML's YAML 1.1: `yes`, `no`, `on` and `off`
are text, not booleans; `010` is ten, not eight; `1:0:0` is text, not 3600; `1e-3` is a number.
"""

from __future__ import annotations

import errno
import re
import typing
from pathlib import Path

import yaml

from search.errors import SpaceError
from search.files import NotRegularFile, TooLarge, read_limited
from search.spec.fields import clip
from search.spec.problems import Problem, dotted, shown

MAX_BYTES = 1_000_000
MAX_DEPTH = 32  # lists and mappings inside each other; a space file needs 4
MAX_NODES = 50_000  # values, lists and mappings; twenty axes of 1,000 choices each fit
MAX_DIGITS = 100  # of one number; no field takes more than 13


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
CORE_PATTERNS = {name: re.compile(f"^(?:{pattern})$") for name, pattern, _ in _CORE_SCALARS}
_PLAIN_TAGS = {_TAG + name for name in ("str", "seq", "map", *CORE_PATTERNS)}


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
    _Plain.add_implicit_resolver(_TAG + _name, CORE_PATTERNS[_name], [*_first, ""] if _name == "null" else list(_first))
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


def read_yaml(path: Path) -> tuple[yaml.Node, dict]:
    """The mapping a space (or study) file holds and its YAML node (for line numbers), or a `SpaceError`."""
    return _parse(path, _read_text(path))


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
        raise SpaceError(path, [Problem("", f"expected a mapping of keys (name, model, ...), got {shown(data)}")])
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
                raise _Refused(Problem(dotted(list(trail)), f"keys must be plain names, not {kind}", line))
            _check_tag(key_node, trail)
            key = key_node.value
            if key_node.tag != _TAG + "str":
                kind = _KEY_KINDS[key_node.tag.removeprefix(_TAG)]
                raise _Refused(Problem(dotted([*trail, key]), f"keys must be plain names, not {kind} (quote it to mean the text)", line))
            if key in seen:
                raise _Refused(Problem(dotted([*trail, key]), "key given twice", line))
            seen.add(key)
            _check_nodes(value_node, (*trail, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_nodes(item, (*trail, index))


def _check_tag(node: yaml.Node, trail: tuple) -> None:
    """A plain-data tag, and for a scalar the text that tag takes in YAML 1.2 (`!!int yes` is no integer)."""
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        tag = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
        message = f"tag '{tag}' is not allowed: a space file holds plain data (text, numbers, true/false, lists and mappings)"
        raise _Refused(Problem(dotted(list(trail)), message, line))
    kind = node.tag.removeprefix(_TAG)
    if kind in CORE_PATTERNS and not CORE_PATTERNS[kind].match(node.value):
        raise _Refused(Problem(dotted(list(trail)), f"{clip(node.value)} is not {_TAG_KINDS[kind]} (YAML 1.2 core schema)", line))
    if kind == "int" and len(node.value) > MAX_DIGITS:
        message = f"a number of {len(node.value):,} digits; a space file's numbers have at most {MAX_DIGITS}"
        raise _Refused(Problem(dotted(list(trail)), message, line))
