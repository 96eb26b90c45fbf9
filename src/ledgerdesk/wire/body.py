"""Request bodies, read straight from ASGI: JSON, form-urlencoded and multipart, under a limit.

The limit is enforced twice: a declared Content-Length over it is refused before any
byte is read, and the bytes actually received are counted as they arrive, so a client
that lies about (or omits) the length is cut off at the limit too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from pydantic_core import from_json
from starlette.types import Message, Receive

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.errors import InvalidBody, PayloadTooLarge, UnsupportedMediaType
from ledgerdesk.wire.multipart import MAX_FIELDS, MultipartReader

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


@dataclass
class Body:
    fields: dict[str, Any]
    media_type: str
    uploads: list[IncomingFile] = field(default_factory=list)

    def discard_uploads(self) -> None:
        for upload in self.uploads:
            upload.discard()


class ClientDisconnected(Exception):
    """The client went away before its body arrived; there is no one to answer."""


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_declared_length(content_length: str | None, limit: int) -> None:
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise InvalidBody("The Content-Length header is not a number.") from None
    if declared > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")


async def body_chunks(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, refused with 4001 the moment it passes ``limit`` bytes."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _whole(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the usual case: one message
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return body

    pending: Message | None = message

    async def replayed() -> Message:
        nonlocal pending
        first, pending = pending, None
        return first if first is not None else await receive()

    return b"".join([chunk async for chunk in body_chunks(replayed, limit)])


async def read_body(
    headers: Mapping[str, str],
    receive: Receive,
    *,
    limit: int,
    upload_dir: Path,
    max_files: int,
    max_file_bytes: int,
) -> Body:
    check_declared_length(headers.get("content-length"), limit)
    content_type = headers.get("content-type", "")
    media_type = media_type_of(content_type)
    if media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return Body(fields=_json_object(await _whole(receive, limit)), media_type=JSON)
    if media_type == FORM:
        return Body(fields=_form_fields(await _whole(receive, limit)), media_type=FORM)
    if media_type == MULTIPART:
        reader = MultipartReader(
            directory=upload_dir, max_files=max_files, max_file_bytes=max_file_bytes
        )
        uploads = await reader.read(content_type, body_chunks(receive, limit))
        return Body(fields=dict(reader.fields), media_type=MULTIPART, uploads=uploads)
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
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidBody("The form body is not valid UTF-8 form data.") from None
    return dict(pairs)
