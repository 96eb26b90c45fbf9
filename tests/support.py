"""Small helpers shared by the tests: a settable clock, protocol shortcuts, an upload."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter

ENDPOINT = "/api/rest/v2/administration"


class FrozenClock:
    def __init__(self, timestamp: int) -> None:
        self.now = timestamp

    def timestamp(self) -> int:
        return self.now

    def set(self, iso: str) -> None:
        self.now = int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())

    def advance(self, seconds: int) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Caller:
    """A customer's credentials, as a client would send them."""

    user_id: int
    api_key: str

    def body(self, action: str, **params: Any) -> dict[str, Any]:
        return {"userId": self.user_id, "apiKey": self.api_key, "action": action, **params}

    def form(self, action: str, **fields: str) -> dict[str, str]:
        """The same as form (or multipart text) fields: every value a string."""
        return {"userId": str(self.user_id), "apiKey": self.api_key, "action": action, **fields}


async def call(
    client: httpx.AsyncClient, caller: Caller, action: str, **params: Any
) -> httpx.Response:
    return await client.post(ENDPOINT, json=caller.body(action, **params))


def assert_error(response: httpx.Response, error_code: int, http_status: int) -> dict[str, Any]:
    assert response.status_code == http_status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "Error"
    assert body["data"]["errorCode"] == error_code, body
    assert isinstance(body["msg"], str)
    assert body["msg"]
    assert isinstance(body["data"]["errors"], list)
    return body


def assert_success(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "Success"
    assert body["msg"] == "OK"
    data: dict[str, Any] = body["data"]
    return data


def json_attachment(
    name: str, data: bytes, content_type: str = "application/octet-stream"
) -> dict[str, Any]:
    """An attachment as createTicket and replyTicket take it in JSON."""
    return {
        "name": name,
        "content": base64.b64encode(data).decode(),
        "contentType": content_type,
        "size": len(data),
    }


def error_properties(response: httpx.Response) -> list[str]:
    return [e["property"] for e in response.json()["data"]["errors"]]


def incoming(directory: Path, data: bytes, name: str = "f.bin") -> IncomingFile:
    """``data`` as an uploaded file in ``directory`` (made if need be), hashed as written."""
    directory.mkdir(parents=True, exist_ok=True)
    writer = IncomingWriter(directory, max(1 << 20, len(data)), name)
    writer.write(data)
    return writer.finish(name, "application/octet-stream")
