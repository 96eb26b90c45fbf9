"""The success and error envelopes, encoded once per response."""

from __future__ import annotations

from pydantic_core import to_json

from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.wire.types import Result

_SUCCESS_HEAD = b'{"status":"Success","msg":"OK","data":'


def success(result: Result) -> bytes:
    return _SUCCESS_HEAD + result.model_dump_json().encode() + b"}"


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
