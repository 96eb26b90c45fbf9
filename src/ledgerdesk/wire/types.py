"""Parameter and result types as the i3D protocol spells them.

Integers also arrive as decimal strings (the seed types replyTicket's ``ticketId`` as a
string, and form and multipart fields are always strings), but never as floats, booleans
or anything else. Strings are strict: a number where text belongs is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

INT64_MAX = 2**63 - 1
_DECIMAL_INT = re.compile(r"-?[0-9]{1,19}")


def _int_from_wire(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL_INT.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError("must be an integer")


def _dmy_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return datetime.strptime(value.strip(), "%d-%m-%Y").date()
        except ValueError:
            pass
    raise ValueError("must be a date in the form DD-MM-YYYY")


def wire_number(value: Decimal) -> int | float:
    # Money is exact until this point; a value with at most two decimals survives the
    # conversion to a float unchanged in its shortest printed form.
    return int(value) if value == value.to_integral_value() else float(value)


WireInt = Annotated[int, BeforeValidator(_int_from_wire)]
Id = Annotated[WireInt, Field(ge=1, le=INT64_MAX)]
DmyDate = Annotated[
    date,
    BeforeValidator(_dmy_date),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d{2}-\d{2}-\d{4}$", "examples": ["31-12-2026"]}
    ),
]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no legitimate title or message contains one.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, Field(strict=True), AfterValidator(_no_nul)]
"""Any string without NUL characters (may be empty)."""
RequiredText = Annotated[Text, AfterValidator(_not_blank)]
"""A string that must hold more than white space."""
Number = Annotated[
    Decimal,
    PlainSerializer(wire_number, return_type=int | float),
    WithJsonSchema({"type": "number"}),
]


class Params(BaseModel):
    """Base for an action's parameters: unknown fields are ignored, as old clients send extras."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Result(BaseModel):
    """Base for an action's ``data``."""

    model_config = ConfigDict(frozen=True)


ResultT = TypeVar("ResultT", bound=Result)


@dataclass(frozen=True, slots=True)
class Shaped(Generic[ResultT]):
    """An action's ``data`` as plain dicts and lists laid out as the ``model`` says.

    For answers of many rows: building a model object per row and dumping it costs more
    than the query (see bench/). The model still documents the answer (OpenAPI) and the
    test suite checks every such answer against it (``envelope.check_shapes``).
    """

    model: type[ResultT]
    data: dict[str, Any]
