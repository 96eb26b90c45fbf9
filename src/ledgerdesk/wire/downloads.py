"""Files sent back: raw with their stored type, or streamed into their base64 envelope.

Either way a stored chunk at a time: a client that reads slowly holds one chunk, and
one that stops reading is dropped by the server (``serving``).
"""

from __future__ import annotations

import base64
from contextlib import aclosing

from starlette.types import Send

from ledgerdesk.attachments.storage import BlobContent, streamed
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.wire import envelope
from ledgerdesk.wire.registry import FileDownload
from ledgerdesk.wire.types import Result


async def send_file(send: Send, download: FileDownload, common: list[tuple[bytes, bytes]]) -> None:
    """The file itself, with its stored type exactly (no charset added to text/*), and
    a sandbox policy so that HTML or SVG opened from it can run nothing; or its base64
    envelope. Either way a chunk at a time: a client that reads slowly holds one chunk
    (and, base64, one piece of its text), and one that stops reading is dropped by the
    server (``serving``)."""
    content = download.content
    if download.envelope is not None:
        head, tail = _envelope_around_content(download.envelope)
        length = len(head) + 4 * -(-content.size // 3) + len(tail)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            *common,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": head, "more_body": True})
        await _send_pieces(send, content, encode=True)
        await send({"type": "http.response.body", "body": tail})
        return
    headers = [
        (b"content-type", download.content_type.encode("latin-1")),
        (b"content-length", str(content.size).encode()),
        (b"content-disposition", attachment_disposition(download.name).encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"sandbox"),
        *common,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if content.data is not None:  # made in memory (an invoice's document): one send
        await send({"type": "http.response.body", "body": content.data})
        return
    await _send_pieces(send, content)
    await send({"type": "http.response.body", "body": b""})


# What one send of base64 hands the connection (a slow reader holds the chunk it came
# from and at most this much of its text).
SEND_PIECE = 192 * 1024  # a multiple of 3: its base64 has no padding in the middle


async def _send_pieces(send: Send, content: BlobContent, *, encode: bool = False) -> None:
    """The stored chunks (``attachments.storage.streamed``: at once when at hand, else
    read in a worker thread) sent from the event loop: as they are (the connection
    holds on to the chunk, no copy of it), or with ``encode`` as one standard padded
    base64 text, in pieces of at most ``SEND_PIECE`` bytes (each piece but the last
    encodes a multiple of three bytes)."""
    carry = b""
    async with aclosing(streamed(content)) as chunks:
        async for chunk in chunks:
            if not encode:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                continue
            view = memoryview(chunk)
            for start in range(0, len(view), SEND_PIECE):
                data = carry + view[start : start + SEND_PIECE]
                whole = len(data) - len(data) % 3
                carry = data[whole:]
                if whole:
                    piece = base64.b64encode(memoryview(data)[:whole])
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
    if carry:
        body = base64.b64encode(carry)
        await send({"type": "http.response.body", "body": body, "more_body": True})


_EMPTY_CONTENT = b'"content":""}}}'


def _envelope_around_content(result: Result) -> tuple[bytes, bytes]:
    """The envelope's bytes before and after its (empty, last) ``content`` value."""
    body = envelope.success(result)
    assert body.endswith(_EMPTY_CONTENT), "content is the last value of the envelope"
    cut = len(body) - len(_EMPTY_CONTENT) + len(b'"content":"')
    return body[:cut], body[cut:]
