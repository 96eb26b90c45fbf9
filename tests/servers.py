"""Real server processes for the tests that need sockets: start, wait until healthy, stop;
and an SMTP server (aiosmtpd) that keeps what ledgerdesk sends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
from aiosmtpd.controller import Controller

LEDGERDESK = [sys.executable, "-m", "ledgerdesk"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    args: list[str], port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """A ``ledgerdesk`` process, once its /healthz answers."""
    environment = {
        **os.environ,
        "LEDGERDESK_DATABASE_URL": "",
        "LEDGERDESK_DATA_DIR": "",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    process = subprocess.Popen(
        [*LEDGERDESK, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            output = process.communicate()[0]
            raise AssertionError(f"server exited: {output}")
        if time.monotonic() > deadline:
            stop(process)
            raise AssertionError("server did not come up")
        time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> str:
    """Interrupt (as Ctrl-C does) and return what it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = process.stdout.read() if process.stdout is not None else ""
    if process.stdout is not None:
        process.stdout.close()
    return output


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no shutdown code runs."""
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def running(
    args: list[str], port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    process = start(args, port, env)
    try:
        yield process
    finally:
        if process.stdout is not None and not process.stdout.closed:
            stop(process)


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


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    """A running ``Sink`` on a free port of 127.0.0.1."""
    found = Sink(port=free_port())
    controller = Controller(found, hostname="127.0.0.1", port=found.port)
    controller.start()
    try:
        yield found
    finally:
        controller.stop()
