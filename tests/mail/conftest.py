"""What the mail tests share: an SMTP server that receives what ledgerdesk sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.servers import free_port


@dataclass
class Sink:
    """An SMTP server that keeps what it receives; ``answer`` decides a recipient's fate."""

    messages: list[EmailMessage] = field(default_factory=list)
    answer: Callable[[str, int], str] = lambda address, tries: "250 OK"
    tries: dict[str, int] = field(default_factory=dict)
    port: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.tries[address] = self.tries.get(address, 0) + 1
        said = self.answer(address, self.tries[address])
        if said.startswith("250"):
            envelope.rcpt_tos.append(address)
        return said

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink(port=free_port())
    controller = Controller(found, hostname="127.0.0.1", port=found.port)
    controller.start()
    try:
        yield found
    finally:
        controller.stop()
