"""Request bodies, read straight from ASGI: JSON, form-urlencoded and multipart, under a limit.

The limit is enforced twice: a declared Content-Length over it is refused before any
byte is read, and the bytes actually received are counted as they arrive, so a client
that lies about (or omits) the length is cut off at the limit too.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from anyio import to_thread
from pydantic_core import from_json
from starlette.types import Message, Receive

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.errors import InvalidBody, PayloadTooLarge, UnsupportedMediaType
from ledgerdesk.http.form_fields import nest
from ledgerdesk.http.memory_budget import Reservation
from ledgerdesk.http.multipart import MAX_FIELDS, MAX_TEXT_BYTES, MultipartReader

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# A body that has sent this much reserves the rest of its declared length at once (a
# thousand bodies still short of it hold at most 512 MiB between them, raw and parsed).
PROVEN_BYTES = 256 * 1024
# Bodies this large are parsed in a worker thread, not on the event loop.
OFF_LOOP_BYTES = 1024 * 1024
# Far beyond any real request (ten attachments and a few fields), far below what
# would take a server's memory.
MAX_JSON_CONTAINERS = 100_000
MAX_JSON_VALUES = 200_000
# Below this size no body can reach the limits above, and parsing it costs little.
SMALL_JSON = 64 * 1024
_FIRST_NON_SPACE = re.compile(rb"[^ \t\r\n]")
# Strings longer than this are cut out of a large body before it is parsed.
LONG_STRING = 64 * 1024
# Characters JSON allows in a string only when escaped.
_CONTROL = re.compile(rb"[\x00-\x1f]")
_BACKSLASH = ord("\\")
CHECK_SLICE = 512 * 1024


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


def declared_length(content_length: str | None, limit: int) -> int | None:
    """The declared Content-Length; 4001 at once when it is over ``limit``."""
    if content_length is None:
        return None
    try:
        declared = int(content_length)
    except ValueError:
        raise InvalidBody("The Content-Length header is not a number.") from None
    if declared > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return declared


@dataclass
class BodyReader:
    """One request's body, read from ASGI under the size limit and the memory budget.

    (A body that stops arriving is the server's to cut off: see ``serving``.)
    """

    receive: Receive
    limit: int
    memory: Reservation

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, refused with 4001 the moment it passes ``limit`` bytes."""
        received = 0
        while True:
            message = await self.memory.arriving(self.receive)
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                raise PayloadTooLarge(f"The request body is larger than {self.limit} bytes.")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def whole(
        self, declared: int | None = None, shape: JsonShape | None = None
    ) -> bytes | bytearray:
        """The whole body in memory, reserved from the budget twice over (raw and parsed).

        What a client declares costs nothing until it sends: the first ``PROVEN_BYTES``
        are reserved piece by piece as they arrive (a body dribbled a byte at a time
        never holds more). A body that has sent that much reserves the rest of its
        declared length at once, so that bodies arriving together never each hold a part
        of the budget while waiting for the rest (none could finish).

        A JSON body's ``shape`` is checked piece by piece as it arrives, so a body that
        can only be refused is refused at its first bytes, not after 150 MB.
        """
        message = await self.receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body: bytes = message.get("body", b"")  # the usual case: one message
            if len(body) > self.limit:
                raise PayloadTooLarge(f"The request body is larger than {self.limit} bytes.")
            await self.memory.take(2 * len(body))
            if shape is not None and len(body) > SMALL_JSON:
                shape.add(body)
            return body
        pending: Message | None = message

        async def replayed() -> Message:
            nonlocal pending
            first, pending = pending, None
            return first if first is not None else await self.receive()

        # Grown in place: large buffers are remapped, not copied, as they grow, and no
        # page is touched (zeroed) before its bytes arrive.
        growing = bytearray()
        whole_reserved = False
        async for chunk in BodyReader(replayed, self.limit, self.memory).chunks():
            if not whole_reserved:
                if declared is not None and len(growing) + len(chunk) >= PROVEN_BYTES:
                    await self.memory.take(2 * declared - self.memory.asked)
                    whole_reserved = True
                else:
                    await self.memory.take(2 * len(chunk))
            if shape is not None:
                shape.add(chunk)
            growing += chunk
        return growing


class JsonShape:
    """Refuses, from its first bytes on, a body that is not an object or that would
    parse into millions of values (``[{},{},...]`` takes ~30 times its size in memory).

    Counting brackets and commas as the pieces arrive costs a pass at memory speed; it
    over-counts those inside strings, which the limits leave ample room for (a ticket's
    content is at most 65,535 characters).
    """

    def __init__(self) -> None:
        self.started = False
        self.containers = 0
        self.values = 0

    def add(self, chunk: bytes) -> None:
        if not self.started:
            first = _FIRST_NON_SPACE.search(chunk)
            if first is None:
                return
            if first.group() != b"{":
                raise InvalidBody("The request body must be a JSON object.")
            self.started = True
        self.containers += chunk.count(b"{") + chunk.count(b"[")
        if self.containers > MAX_JSON_CONTAINERS:
            raise InvalidBody(
                f"The request body holds more than {MAX_JSON_CONTAINERS} JSON objects and arrays."
            )
        self.values += chunk.count(b",")
        if self.values > MAX_JSON_VALUES:
            raise InvalidBody(f"The request body holds more than {MAX_JSON_VALUES} JSON values.")


async def read_body(
    headers: Mapping[str, str],
    receive: Receive,
    *,
    limit: int,
    memory: Reservation,
    upload_dir: Path,
    max_files: int,
    max_file_bytes: int,
) -> Body:
    declared = declared_length(headers.get("content-length"), limit)  # 4001 before reading
    content_type = headers.get("content-type", "")
    media_type = media_type_of(content_type)
    reader = BodyReader(receive, limit, memory)
    if media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raw = await reader.whole(declared, JsonShape())
        return Body(fields=await _off_loop_if_large(_json_object, raw), media_type=JSON)
    if media_type == FORM:
        raw = await reader.whole(declared)
        return Body(fields=await _off_loop_if_large(_form_fields, raw), media_type=FORM)
    if media_type == MULTIPART:
        await memory.take(2 * MAX_TEXT_BYTES)
        multipart = MultipartReader(
            directory=upload_dir, max_files=max_files, max_file_bytes=max_file_bytes
        )
        uploads = await multipart.read(content_type, reader.chunks())
        try:
            fields = nest(multipart.fields)
        except BaseException:  # conflicting or too deep field names: the files go too
            for upload in uploads:
                upload.discard()
            raise
        return Body(fields=fields, media_type=MULTIPART, uploads=uploads)
    if not media_type:
        raise UnsupportedMediaType(
            "Missing Content-Type; send application/json, "
            "application/x-www-form-urlencoded or multipart/form-data."
        )
    raise UnsupportedMediaType(f"Unsupported content type {media_type!r}; send application/json.")


async def _off_loop_if_large(
    parse: Callable[[bytes | bytearray], dict[str, Any]], raw: bytes | bytearray
) -> dict[str, Any]:
    # A large body would hold the event loop (every other request) while it is parsed.
    if len(raw) < OFF_LOOP_BYTES:
        return parse(raw)
    return await to_thread.run_sync(parse, raw)


def _json_object(raw: bytes | bytearray) -> dict[str, Any]:
    if len(raw) >= OFF_LOOP_BYTES:
        return _large_json_object(raw)
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError:
        raise InvalidBody("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidBody("The request body must be a JSON object.")
    return value


def _large_json_object(raw: bytes | bytearray) -> dict[str, Any]:
    """A large body (base64 attachments, mostly) parsed without holding the GIL for long.

    A JSON parser turns 140 MB into objects in one call of ~200 ms, during which no
    other thread, the event loop included, runs. Here the long strings (over
    ``LONG_STRING`` bytes: the attachments' contents) are cut out first by a scan in
    Python (which lets other threads run), the rest parsed in one short call, and each
    long string decoded on its own (milliseconds each), straight from the body's buffer.
    The scan finds strings exactly as a JSON lexer does (a quote outside a string opens
    one, the next quote not escaped closes it), and each long string is checked as the
    parser would check it, so the body is judged exactly as the parser alone judges it.
    """
    view = memoryview(raw)
    # A marker no client can send on purpose: it holds a random part.
    tag = f"ledgerdesk-{secrets.token_hex(8)}-"
    pieces: list[bytes | memoryview] = []
    long: dict[str, tuple[int, int]] = {}
    copied = 0
    position = 0
    while (start := raw.find(b'"', position)) != -1:
        end = start + 1
        while True:  # the string's closing quote: one not escaped by a backslash
            end = raw.find(b'"', end)
            if end == -1:
                raise InvalidBody("The request body is not valid JSON.")
            backslashes = 0
            while raw[end - 1 - backslashes] == _BACKSLASH:
                backslashes += 1
            if backslashes % 2 == 0:
                break
            end += 1
        if end - start - 1 > LONG_STRING:
            name = f"{tag}{len(long)}"
            # The JSON text \u0000<name> parses to a NUL character and the name.
            pieces += [view[copied:start], b'"\\u0000' + name.encode() + b'"']
            long["\x00" + name] = (start, end)
            copied = end + 1
        position = end + 1
    pieces.append(view[copied:])
    try:
        value = from_json(b"".join(pieces), allow_inf_nan=False)
    except ValueError:
        raise InvalidBody("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidBody("The request body must be a JSON object.")
    if not long:
        return value
    strings = {name: _json_string(raw, start, end) for name, (start, end) in long.items()}
    placed = _place(value, strings)
    assert isinstance(placed, dict)
    return placed


def _json_string(raw: bytes | bytearray, start: int, end: int) -> str:
    """The JSON string between the quotes at ``start`` and ``end``, as the parser reads it."""
    view = memoryview(raw)
    inner = view[start + 1 : end]
    plain = raw.find(b"\\", start + 1, end) == -1 and not any(
        # In slices: each search holds the GIL for a millisecond or two, not 40.
        _CONTROL.search(inner[at : at + CHECK_SLICE])
        for at in range(0, len(inner), CHECK_SLICE)
    )
    if plain:
        try:
            return str(inner, "utf-8")
        except UnicodeDecodeError:
            raise InvalidBody("The request body is not valid JSON.") from None
    try:
        text = from_json(bytes(view[start : end + 1]))
    except ValueError:
        raise InvalidBody("The request body is not valid JSON.") from None
    assert isinstance(text, str)
    return text


def _place(value: Any, strings: dict[str, str]) -> Any:
    """``value`` with each long string's marker (a value or a key) replaced by the string."""
    if isinstance(value, str):
        return strings.get(value, value)
    if isinstance(value, dict):
        return {strings.get(key, key): _place(item, strings) for key, item in value.items()}
    if isinstance(value, list):
        return [_place(item, strings) for item in value]
    return value


def _form_fields(raw: bytes | bytearray) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            bytes(raw).decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidBody("The form body is not valid UTF-8 form data.") from None
    return nest(pairs)
