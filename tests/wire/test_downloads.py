"""How a file's chunks go out: as they are, or as one base64 text in pieces."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ledgerdesk.attachments.storage import BlobContent
from ledgerdesk.wire.downloads import SEND_PIECE, _send_pieces

pytestmark = pytest.mark.anyio


def stored(chunks: list[bytes]) -> BlobContent:
    """Chunks as the database store hands them out."""
    return BlobContent(size=sum(map(len, chunks)), pieces=lambda: iter(chunks))


async def sent_bodies(chunks: list[bytes], *, encode: bool) -> list[Any]:
    bodies: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        assert message["type"] == "http.response.body"
        assert message["more_body"]
        bodies.append(message["body"])

    await _send_pieces(send, stored(chunks), encode=encode)
    return bodies


async def test_raw_chunks_go_out_as_they_are_without_a_copy() -> None:
    """The connection holds the stored chunk itself: no second copy of every byte."""
    chunks = [bytes([n]) * (SEND_PIECE * 2 + 17) for n in range(3)]
    bodies = await sent_bodies(chunks, encode=False)
    assert len(bodies) == len(chunks)
    assert all(body is chunk for body, chunk in zip(bodies, chunks, strict=True))


@pytest.mark.parametrize(
    "sizes", [[1], [2, 2, 2], [SEND_PIECE + 1, 5, SEND_PIECE * 3 - 1], [SEND_PIECE * 2 + 2]]
)
async def test_encoded_pieces_make_one_padded_base64_text(sizes: list[int]) -> None:
    """Chunks of any size, cut anywhere: the pieces together are the file's base64, and
    only the last one is padded."""
    chunks = [bytes((n * 7 + i) % 256 for i in range(size)) for n, size in enumerate(sizes)]
    bodies = await sent_bodies(chunks, encode=True)
    assert b"".join(bodies) == base64.b64encode(b"".join(chunks))
    assert all(len(body) <= SEND_PIECE * 4 // 3 + 4 for body in bodies)
    assert not any(b"=" in body for body in bodies[:-1])
