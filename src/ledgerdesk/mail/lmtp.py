"""Mail handed over by LMTP (RFC 2033): ``ledgerdesk serve`` listens when
``LEDGERDESK_LMTP_LISTEN`` is set (``host:port``), with aiosmtpd's LMTP protocol.

Only the support address (and its plus-addresses) is a mailbox here; one recipient per
transaction (the MTA sends the next one in another: Postfix's
``lmtp_destination_recipient_limit = 1``), so the answer to the data is that
recipient's. A mail is answered ``250`` once taken (``mail.receiving``), ``451`` when it
cannot be stored now (the MTA keeps it and tries again), ``552`` when too large.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.lmtp import LMTP
from anyio import to_thread

from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.mail.receiving import MAX_RECEIVED_BYTES, take, written
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.mail")


class Handler:
    """aiosmtpd's handler: which recipients are ours, and taking the data."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        support = runtime.settings.support_address
        assert support is not None, "LMTP needs LEDGERDESK_MAIL_FROM"
        self.local, _, self.domain = support.lower().partition("@")

    def is_ours(self, address: str) -> bool:
        local, _, domain = address.lower().strip("<>").partition("@")
        return domain == self.domain and local.partition("+")[0] == self.local

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if envelope.rcpt_tos:
            return "452 4.5.3 One recipient at a time"
        if not self.is_ours(address):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
        try:
            taken = await to_thread.run_sync(self._take, data, abandon_on_cancel=True)
        except PayloadTooLarge:
            return f"552 5.3.4 Larger than {MAX_RECEIVED_BYTES} bytes"
        except Exception as exc:
            log.warning("LMTP: cannot take mail now (%s)", type(exc).__name__)
            return "451 4.3.0 Cannot take mail now; try again later"
        return f"250 2.0.0 Mail {taken.mail_id} {taken.state}"

    def _take(self, data: bytes) -> Any:
        return take(self.runtime, written(self.runtime, [data]), via="lmtp")


async def listen(runtime: Runtime, host: str, port: int) -> asyncio.Server:
    """The LMTP server on ``host:port`` (every worker process binds it: the kernel shares
    connections between them)."""
    handler = Handler(runtime)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: LMTP(handler, data_size_limit=MAX_RECEIVED_BYTES, enable_SMTPUTF8=True),
        host,
        port,
        reuse_port=True,
    )
