"""The building blocks of the space-file schema: strict models and axes.

An axis takes one value or a list of choices; it is normalised to a list, so a one-element list means
"fixed". No framework import here: `archsearch validate` must answer in well under a second.

Models are strict: a value must already have its field's type, so the text 'yes', '1' or 'off' is never
read as a boolean or a number, a float is never cut to an integer, and NaN or infinity is no number at all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # names become folder names
MAX_CHOICES = 1_000  # choices of one axis; a grid is their product, so more is never a plan


def _as_list(value: Any) -> Any:
    """One value or a list of choices, as a list; the length is checked before any item is."""
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_CHOICES:
        raise ValueError(f"{len(values):,} choices; an axis takes at most {MAX_CHOICES:,}")
    return values


def unique(values: list) -> list:
    seen = set()
    for value in values:
        if repr(value) in seen:
            raise ValueError(f"choices must be distinct; {clip(value)} is given more than once")
        seen.add(repr(value))
    return values


def clip(value: Any, limit: int = 60) -> str:
    """`repr(value)` for a one-line message, cut to `limit` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def printable(text: str) -> str:
    """Refuse control and invisible characters (newlines, NUL, bidi overrides, zero-width spaces) in text
    that is shown in tables and stored: they forge or break lines and hide what the text really says."""
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        raise ValueError(f"must be printable text; U+{ord(bad):04X} at character {text.index(bad) + 1} is not")
    return text


def printable_lines(text: str) -> str:
    """Printable text that may run over several lines (a description)."""
    for line in text.split("\n"):
        printable(line)
    return text


def _axis_schema(handler_schema: dict) -> dict:
    return {"anyOf": [handler_schema, {"type": "array", "items": handler_schema, "minItems": 1, "maxItems": MAX_CHOICES}]}


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def Axis(item_type: Any, item_schema: dict) -> Any:  # noqa: N802 - reads like a type in field declarations
    """One value or a non-empty list of distinct values, always stored as a list."""
    return Annotated[
        list[item_type],
        BeforeValidator(_as_list),
        Field(min_length=1),
        AfterValidator(unique),
        WithJsonSchema(_axis_schema(item_schema)),
    ]


def IntChoice(*values: int) -> Any:  # noqa: N802 - reads like a type in field declarations
    """`Literal[values]` that takes integers only: a plain Literal takes True for 1 and 3.0 for 3, since
    they compare equal, even in strict mode."""
    allowed = ", ".join(map(str, values[:-1])) + f" or {values[-1]}"

    def integers_only(value: Any) -> Any:
        if isinstance(value, (bool, float)):
            raise ValueError(f"expected {allowed}")
        return value

    return Annotated[Literal[values], BeforeValidator(integers_only)]


def enum_schema(values: tuple) -> dict:
    return {"enum": list(values)}
