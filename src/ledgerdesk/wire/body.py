"""Request bodies: JSON, form-urlencoded and multipart, under a size limit.

The limit is enforced twice: a declared Content-Length over it is refused before any
byte is read, and the bytes actually received are counted as they arrive, so a client
that lies about (or omits) the length is cut off at the limit too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic_core import from_json
from python_multipart.exceptions import MultipartParseError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message, Receive

from ledgerdesk.errors import (
    InvalidBody,
    LedgerdeskError,
    PayloadTooLarge,
    UnsupportedMediaType,
    invalid,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

MAX_FORM_FIELDS = 1000
# A text field of a multipart body: replyTicket's content is at most 65535 characters,
# so up to four times that in UTF-8.
MAX_TEXT_PART_BYTES = 4 * 65535 + 1024
FILE_FIELDS = ("attachments[]", "attachments", "attachment")


@dataclass
class Body:
    fields: dict[str, Any]
    media_type: str
    uploads: list[UploadFile] = field(default_factory=list)

    async def close(self) -> None:
        for upload in self.uploads:
            await upload.close()


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises PayloadTooLarge once more than ``limit`` bytes arrived."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return message

    return wrapped


def check_declared_length(content_length: str | None, limit: int) -> None:
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise InvalidBody("The Content-Length header is not a number.") from None
    if declared > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")


async def read_body(request: Request, *, max_files: int, max_file_bytes: int) -> Body:
    media_type = media_type_of(request.headers.get("content-type"))
    if media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return Body(fields=_json_object(await request.body()), media_type=JSON)
    if media_type == FORM:
        return Body(fields=_form_fields(await request.body()), media_type=FORM)
    if media_type == MULTIPART:
        return await _multipart(request, max_files=max_files, max_file_bytes=max_file_bytes)
    if not media_type:
        raise UnsupportedMediaType(
            "Missing Content-Type; send application/json, "
            "application/x-www-form-urlencoded or multipart/form-data."
        )
    raise UnsupportedMediaType(f"Unsupported content type {media_type!r}; send application/json.")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError:
        raise InvalidBody("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidBody("The request body must be a JSON object.")
    return value


def _form_fields(raw: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidBody("The form body is not valid UTF-8 form data.") from None
    return dict(pairs)


async def _multipart(request: Request, *, max_files: int, max_file_bytes: int) -> Body:
    try:
        form = await request.form(
            max_files=max_files,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=MAX_TEXT_PART_BYTES,
        )
    except LedgerdeskError:
        raise
    except (MultiPartException, HTTPException, MultipartParseError) as exc:
        message = getattr(exc, "message", None) or getattr(exc, "detail", None) or str(exc)
        if "Too many files" in str(message):
            raise invalid("attachments", f"at most {max_files} files per request") from None
        raise InvalidBody(f"Malformed multipart body: {message}") from None
    fields: dict[str, Any] = {}
    uploads: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name not in FILE_FIELDS:
                await value.close()
                continue
            uploads.append(value)
        else:
            fields[name] = value
    body = Body(fields=fields, media_type=MULTIPART, uploads=uploads)
    for upload in uploads:
        if upload.size is not None and upload.size > max_file_bytes:
            await body.close()
            raise PayloadTooLarge(
                f"Attachment {upload.filename!r} is larger than {max_file_bytes} bytes."
            )
    return body
