"""pydantic's validation errors as one-line plain messages in the file's terms: the key path and line, what
the key takes, what it got and, where one can guess it, what was meant (did you mean, where a key belongs).

What is allowed where is read from the schema itself (`_model_at`, `_fields_at`, `_literals_at`), so a new
field or family is worded without a change here.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from search.errors import SpaceError
from search.spec.families import FAMILIES
from search.spec.fields import NAME_PATTERN, clip
from search.spec.problems import MAX_PROBLEMS, Problem, child_of, dotted, shown
from search.spec.schema import Space
from search.spec.yaml_reader import CORE_PATTERNS


def validated(schema: type[BaseModel], path: Path, node: yaml.Node, data: dict):
    """`data` as `schema`, or a `SpaceError` naming each problem's key and line."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        problems = [_from_pydantic(err, node, schema) for err in error.errors()[:MAX_PROBLEMS]]
        raise SpaceError(path, problems, error.error_count()) from None


def _from_pydantic(err: dict, root: yaml.Node, schema: type[BaseModel] = Space) -> Problem:
    loc = list(err["loc"])
    message = _said(err, loc, schema)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the family decides the model's keys
        loc = [*loc, "family"]
    if loc[:1] == ["model"] and len(loc) > 1 and loc[1] in FAMILIES:
        loc.pop(1)  # the discriminated union's tag is not a key the user wrote
    node, found, at = root, [], None
    for part in loc:
        child = child_of(node, part)
        if child is None:
            break
        # a key's line, not its value's (a block mapping or list starts on the line below the key)
        at = _key_node(node, part) if isinstance(part, str) else child
        node, found = child, [*found, part]
    rest = [part for part in loc[len(found) :] if isinstance(part, str)]
    line = at.start_mark.line + 1 if at is not None else None
    return Problem(dotted(found + rest), message, line)


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
        return f"expected a mapping of {_settings(loc, schema)}, got {shown(value)}" + _shorthand(loc, value, schema)
    if kind == "union_tag_invalid":
        tag = value.get("family", ctx.get("tag")) if isinstance(value, dict) else ctx.get("tag")
        return _expected_one_of(list(FAMILIES), tag)
    if kind == "union_tag_not_found":
        return f"required: the model's family, {_either(list(FAMILIES))} (it decides the model's other keys)"
    if kind == "literal_error":
        values = _literals_at(loc, schema)
        expected = _expected_one_of(values, value) if values else f"expected {ctx.get('expected', 'another value')}, got {shown(value)}"
        return expected + _one_value(loc, value, key, schema)
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {_number(ctx[bound])}, got {shown(value)}"
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
                    f"got {shown(value)}")
        return f"must have the form {ctx.get('pattern')}, got {shown(value)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown(value)}" + _type_hint(kind, value) + _one_value(loc, value, key, schema)
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind not in ("value_error", "assertion_error"):  # a type this schema cannot reach today: still no pydantic wording
        message = re.sub(r"^Input should be ", "expected ", message)
    if isinstance(value, (str, int, float, bool)) and clip(value) not in message:
        message += f", got {shown(value)}" if message.startswith("expected") else f" (got {shown(value)})"
    return message


def _number(bound) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        bound = int(bound)
    return f"{bound:,}" if isinstance(bound, int) else repr(bound)


def _either(values: list, show=repr) -> str:
    shown = [show(v) for v in values]
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
    return f"expected {_either(values)}, got {shown(value)}" + (f" (did you mean {close!r}?)" if close is not None else "")


def _type_hint(kind: str, value) -> str:
    """What the file most likely meant by a value of the wrong type."""
    if kind in ("int_type", "int_from_float", "int_parsing") and isinstance(value, float) and value.is_integer():
        return f" (write {int(value)})"
    if isinstance(value, str):
        if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and any(
            CORE_PATTERNS[tag].match(value) for tag in ("int", "float")
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
    if len(families) > 1:  # one place: "in model with family vgg, resnet or xception"
        first = homes.index(_FAMILY_PLACE + families[0])
        homes = [home for home in homes if not home.startswith(_FAMILY_PLACE)]
        homes.insert(first, _FAMILY_PLACE + _either(families, show=str))
    return homes


def _key_node(node: yaml.MappingNode, part: str) -> yaml.Node:
    return next(k for k, _ in node.value if k.value == part)


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
