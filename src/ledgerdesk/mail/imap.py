"""Mail fetched from an IMAP mailbox (``LEDGERDESK_IMAP_URL``), by aioimaplib.

Each message is taken through the one path for received mail (``mail.receiving``) and
only then flagged deleted and expunged: a poller that dies between the two finds the
message again and takes nothing twice (the same Message-ID from the same sender is
known). Where the server has IDLE, the poller waits on it (woken by new mail, renewed
every 25 minutes); otherwise it looks every ``poll`` seconds. A mailbox that cannot be
fetched is retried with a growing pause, and the console's dashboard says so
(``mail_fetchers``) until it works again.

Every ``serve`` process may run a poller; one at a time fetches a mailbox: the one
holding its lease (``mail_fetchers.holder``, renewed every third of ``lease`` seconds,
taken over by another once it runs out: a killed server's mailbox is fetched again
within a minute). The others wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

import aioimaplib
import anyio
from anyio import to_thread
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from ledgerdesk.db.models import MailFetcher
from ledgerdesk.mail.receiving import take, written
from ledgerdesk.mail.service import Taken
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.mail")

IDLE_SECONDS = 25 * 60
POLL_SECONDS = 30.0
TIMEOUT = 30.0
MAX_PAUSE = 300.0
BATCH = 50  # messages taken before the mailbox is expunged
LEASE_SECONDS = 60.0


class FetchFailed(Exception):
    """The server said no (login, select, fetch)."""


class LeaseLost(Exception):
    """Another server fetches the mailbox now (this one's lease ran out meanwhile)."""


class ImapPoller:
    """Fetches the mailbox until cancelled."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        poll: float = POLL_SECONDS,
        lease: float = LEASE_SECONDS,
        after_take: Callable[[Taken], None] | None = None,
    ) -> None:
        url = runtime.settings.imap_url
        assert url is not None, "the poller needs LEDGERDESK_IMAP_URL"
        self.runtime = runtime
        self.url = make_url(url)
        self.name = self.url.render_as_string(hide_password=True)[:300]
        self.poll = poll
        self.lease = lease
        self.after_take = after_take  # tests: what happens between taking and flagging
        self.taken = 0
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.renewed = 0.0  # monotonic: when the lease was last taken or renewed
        self.failures = 0  # in a row

    async def run(self) -> None:
        try:
            while True:
                try:
                    if await to_thread.run_sync(self._claim):
                        await self._session()
                    else:
                        await anyio.sleep(self.lease / 3)
                except LeaseLost:
                    log.info("IMAP %s: fetched by another server now", self.name)
                except Exception as exc:  # whatever it was: on record, then again
                    await self._pause(exc)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await to_thread.run_sync(self._release)

    async def _pause(self, exc: Exception) -> None:
        self.failures += 1
        pause = min(2.0**self.failures, MAX_PAUSE)
        problem = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("IMAP %s: %s; trying again in %.0f s", self.name, problem, pause)
        with contextlib.suppress(Exception):
            await to_thread.run_sync(self._failing, problem)
        await anyio.sleep(pause)

    async def _session(self) -> None:
        url = self.url
        if url.drivername == "imaps":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                url.host, url.port or 993, timeout=TIMEOUT
            )
        else:
            client = aioimaplib.IMAP4(url.host, url.port or 143, timeout=TIMEOUT)
        await client.wait_hello_from_server()
        try:
            _ok(await client.login(url.username or "", url.password or ""), "login")
            _ok(await client.select(url.database or "INBOX"), "select")
            await to_thread.run_sync(self._working)
            while True:
                while await self._drain(client) >= BATCH:
                    pass
                await self._renew()
                await self._wait(client)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)
            with contextlib.suppress(Exception):  # whatever logging out left open
                client.protocol.transport.close()

    async def _drain(self, client: aioimaplib.IMAP4) -> int:
        """Take every message the mailbox holds; how many."""
        found = _ok(await client.uid_search("UNDELETED"), "search")
        uids = [u.decode() for u in found.lines[0].split()][:BATCH] if found.lines else []
        for uid in uids:
            fetched = _ok(await client.uid("fetch", uid, "(BODY.PEEK[])"), "fetch")
            raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
            if raw is None:
                continue  # gone meanwhile
            taken = await to_thread.run_sync(self._take, raw)
            if self.after_take is not None:
                self.after_take(taken)
            _ok(await client.uid("store", uid, "+FLAGS (\\Deleted \\Seen)"), "store")
            self.taken += 1
            await self._renew()
        if uids:
            _ok(await client.expunge(), "expunge")
        return len(uids)

    async def _wait(self, client: aioimaplib.IMAP4) -> None:
        """Until new mail, or until the lease needs renewing."""
        if not client.has_capability("IDLE"):
            await anyio.sleep(min(self.poll, self.lease / 3))
            return
        wait = min(IDLE_SECONDS, self.lease / 3)
        idle = await client.idle_start(timeout=wait)
        try:
            await client.wait_server_push(timeout=wait)
        except TimeoutError:
            pass
        finally:
            client.idle_done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle, TIMEOUT)

    def _take(self, raw: bytes) -> Taken:
        return take(self.runtime, written(self.runtime, [raw]), via="imap")

    async def _renew(self) -> None:
        """Renew the lease when a third of it has passed (``LeaseLost``: taken over)."""
        due = time.monotonic() - self.renewed >= self.lease / 3
        if due and not await to_thread.run_sync(self._claim):
            raise LeaseLost

    def _claim(self) -> bool:
        """Take or renew the lease: whether this poller fetches the mailbox now."""
        now_ms = int(time.time() * 1000)
        started = time.monotonic()
        try:
            with self.runtime.transaction(write=True) as (session, _):
                row = session.get(MailFetcher, self.name, with_for_update=True)
                if row is None:
                    row = MailFetcher(name=self.name)
                    session.add(row)
                elif row.holder not in (None, self.holder) and (row.lease_until or 0) > now_ms:
                    return False
                row.holder, row.lease_until = self.holder, now_ms + int(self.lease * 1000)
        except IntegrityError:  # another server made the row at the same moment
            return False
        self.renewed = started
        return True

    def _release(self) -> None:
        with self.runtime.transaction(write=True) as (session, _):
            row = session.get(MailFetcher, self.name, with_for_update=True)
            if row is not None and row.holder == self.holder:
                row.holder = row.lease_until = None

    def _working(self) -> None:
        self.failures = 0
        self._set(failing=None)

    def _failing(self, problem: str) -> None:
        self._set(failing=problem)

    def _set(self, *, failing: str | None) -> None:
        now = int(time.time())
        with self.runtime.transaction(write=True) as (session, _):
            row = session.get(MailFetcher, self.name)
            if row is None:
                row = MailFetcher(name=self.name)
                session.add(row)
            if failing is None:
                row.last_ok_at, row.failing_since, row.last_error = now, None, None
            else:
                row.failing_since = row.failing_since or now
                row.last_error = failing


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        said = b" ".join(bytes(line) for line in response.lines).decode("utf-8", "replace")
        raise FetchFailed(f"{what}: {response.result} {said}"[:400])
    return response
