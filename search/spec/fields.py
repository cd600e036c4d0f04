"""The building blocks of the space-file schema: strict models and axes.

An axis takes one value or a list of choices; it is normalised to a list, so a one-element list means
"fixed". No framework import here: `archsearch validate` must answer in well under a second.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # names become folder names


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def unique(values: list) -> list:
    if len(set(map(repr, values))) != len(values):
        raise ValueError(f"choices must be distinct, got {values}")
    return values


def _axis_schema(handler_schema: dict) -> dict:
    return {"anyOf": [handler_schema, {"type": "array", "items": handler_schema, "minItems": 1}]}


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def Axis(item_type: Any, item_schema: dict) -> Any:  # noqa: N802 - reads like a type in field declarations
    """One value or a non-empty list of distinct values, always stored as a list."""
    return Annotated[
        list[item_type],
        BeforeValidator(_as_list),
        Field(min_length=1),
        AfterValidator(unique),
        WithJsonSchema(_axis_schema(item_schema)),
    ]


def enum_schema(values: tuple) -> dict:
    return {"enum": list(values)}
