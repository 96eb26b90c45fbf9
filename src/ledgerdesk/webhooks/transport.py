"""One attempt at delivering a webhook: to the address that was checked, as the URL.

The connection goes to the address ``addresses.resolve`` checked (never to whatever a
second lookup of the name would give), with the URL's host in ``Host`` and in TLS's SNI
(the certificate is checked against the name). Redirects are not followed: a 3xx is a
failure like any other non-2xx. The whole attempt, body included, has one deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import anyio
import httpx

from ledgerdesk.webhooks.addresses import IPAddress, Target

ANSWER_BYTES = 4096  # of an answer's body, kept in the delivery log
USER_AGENT = "ledgerdesk"


@dataclass(frozen=True)
class Attempt:
    """What one attempt gave: the status (None when there was no answer), how long it
    took, the start of the answer's body, what went wrong, and how long the receiver
    asked to wait (``Retry-After``)."""

    status: int | None
    seconds: float
    answer: bytes
    error: str | None
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def attempt(
    client: httpx.AsyncClient,
    target: Target,
    address: IPAddress,
    headers: dict[str, str],
    body: bytes,
    *,
    timeout: float,
    version: str,
) -> Attempt:
    """POST ``body`` to ``target`` at ``address`` within ``timeout`` seconds."""
    host = f"[{address}]" if address.version == 6 else str(address)
    url = f"{target.scheme}://{host}:{target.port}{target.path}"
    sent = {
        **headers,
        "host": target.host_header,
        "content-type": "application/json",
        "user-agent": f"{USER_AGENT}/{version}",
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    started = time.monotonic()
    try:
        with anyio.fail_after(timeout):
            request = client.build_request("POST", url, headers=sent, content=body)
            request.extensions.update(extensions)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                answer = await _start_of(response)
            finally:
                await response.aclose()
    except TimeoutError:
        return Attempt(
            None, time.monotonic() - started, b"", f"no answer within {timeout:g} s", None
        )
    except httpx.HTTPError as exc:
        return Attempt(None, time.monotonic() - started, b"", _described(exc), None)
    status = response.status_code
    error = None
    if 300 <= status < 400:
        error = f"answered {status}: redirects are not followed"
    elif not 200 <= status < 300:
        error = f"answered {status}"
    return Attempt(
        status,
        time.monotonic() - started,
        answer,
        error,
        retry_after(response.headers.get("retry-after")),
    )


async def _start_of(response: httpx.Response) -> bytes:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: ANSWER_BYTES - len(kept)]
        if len(kept) >= ANSWER_BYTES:
            break
    return bytes(kept)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _described(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
