"""The success and error envelopes, encoded once per response."""

from __future__ import annotations

from decimal import Decimal

import orjson
from pydantic_core import to_json

from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.wire.types import Result, Shaped, wire_number

_SUCCESS_HEAD = b'{"status":"Success","msg":"OK","data":'

# The test suite turns this on: every Shaped answer is then checked against its model.
check_shapes = False


def success(result: Result | Shaped[Result]) -> bytes:
    if isinstance(result, Shaped):
        data = orjson.dumps(result.data, default=_number)
        if check_shapes:
            _check_shape(result, data)
        return _SUCCESS_HEAD + data + b"}"
    return _SUCCESS_HEAD + result.model_dump_json().encode() + b"}"


def _number(value: object) -> int | float:
    """Money and quantities (Decimal, which orjson leaves to us) as ``Number`` writes
    them."""
    if isinstance(value, Decimal):
        return wire_number(value)
    raise TypeError(f"{type(value).__name__} is not part of an answer")


def _check_shape(result: Shaped[Result], encoded: bytes) -> None:
    """The bytes are exactly what the model would have produced from the same data."""
    expected = result.model.model_validate(result.data, strict=True).model_dump_json().encode()
    if encoded != expected:
        raise AssertionError(
            f"{result.model.__name__} answer {encoded!r} is not what its model gives: {expected!r}"
        )


def error(exc: LedgerdeskError) -> bytes:
    return to_json(
        {
            "status": "Error",
            "msg": exc.message,
            "data": {
                "errorCode": exc.error_code,
                "errors": [{"property": e.property, "message": e.message} for e in exc.errors],
            },
        }
    )
