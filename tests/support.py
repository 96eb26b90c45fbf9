"""Small helpers shared by the tests: a settable clock and protocol shortcuts."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

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
