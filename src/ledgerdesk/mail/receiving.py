"""One path for received mail, whichever way it came (an MTA's pipe, LMTP, IMAP): the
raw bytes written to the process's incoming folder, then taken in one unit of work of
the ``mail`` door (``mail.service.MailIntake``) with the server's settings.

A mail whose taking fails for a reason another try will not cure (a fault in reading or
threading it, not the database or the disk) is kept as ``failed`` with the reason, in
the console's queue with a button to try it again (``intake`` there), instead of
coming back from the MTA for days.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError, IntegrityError

from ledgerdesk import metrics
from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.db.prepared import session_db
from ledgerdesk.errors import NotFound, PayloadTooLarge
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.mail.inbound import MAX_MESSAGE_BYTES, InboundFile
from ledgerdesk.mail.service import MailIntake, Taken
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.mail")

# Bytes of a mail kept at most (kept, then refused as unreadable past MAX_MESSAGE_BYTES).
MAX_RECEIVED_BYTES = 2 * MAX_MESSAGE_BYTES


class NotSetUp(Exception):
    """Mail is not set up (no LEDGERDESK_MAIL_FROM): nothing can be taken in now."""


def written(runtime: Runtime, pieces: Iterable[bytes]) -> IncomingFile:
    """The mail's bytes on disk (``PayloadTooLarge`` past ``MAX_RECEIVED_BYTES``)."""
    writer = IncomingWriter(runtime.incoming_dir, MAX_RECEIVED_BYTES, "the mail")
    try:
        for piece in pieces:
            writer.write(piece)
        return writer.finish("mail.eml", "message/rfc822")
    except BaseException:
        writer.discard()
        raise


def passing(exc: BaseException) -> bool:
    """Whether another try may take the mail: the database or the disk failed, mail is
    not set up, or another server took the same mail at the same moment."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or type(exc).__name__ in (
            "OperationalError",
            "InterfaceError",
        )
    return isinstance(exc, OSError | TimeoutError | NotSetUp)


def take(runtime: Runtime, raw: IncomingFile, *, via: str) -> Taken:
    """Take in the mail on disk at ``raw``; its file and those made of it are removed.
    Raises only what ``passing`` says another try may cure."""
    settings = runtime.settings
    if settings.support_address is None:
        raw.discard()
        raise NotSetUp("LEDGERDESK_MAIL_FROM is not set: mail is not set up")
    made: list[IncomingFile] = []
    try:
        data = raw.path.read_bytes()
        try:
            with runtime.work(Actor.VISITOR, Origin("mail")) as work:
                taken = intake(runtime, work, made).take(raw, data, via=via)
            metrics.mail_received.labels("processed").inc()
            return taken
        except Exception as exc:
            if passing(exc):
                metrics.mail_received.labels("deferred").inc()
                raise
            log.exception("mail: cannot take a mail by %s; kept as failed", via)
            with runtime.work(Actor.VISITOR, Origin("mail")) as work:
                kept = intake(runtime, work, made).keep_failed(raw, data, via=via, why=_said(exc))
            metrics.mail_received.labels("failed").inc()
            return kept
    finally:
        raw.discard()
        discard(made)


def raw_bytes(runtime: Runtime, work: Work, sha256: str) -> bytes:
    """A received mail's bytes as kept."""
    content = runtime.blobs.open(session_db(work.session), sha256)
    if content is None:
        raise NotFound("The mail's bytes are missing from the store.")
    return b"".join(content.chunks())


def intake(runtime: Runtime, work: Work, made: list[IncomingFile]) -> MailIntake:
    """The intake with the server's settings, in ``work``. The files it makes of a
    mail's attachments are added to ``made``: the caller removes them (``discard``) once
    the unit of work has ended (the blob store links them when it commits)."""
    settings = runtime.settings
    support = settings.support_address
    if support is None:
        raise NotSetUp("LEDGERDESK_MAIL_FROM is not set: mail is not set up")

    def store(found: InboundFile) -> IncomingFile | None:
        writer = IncomingWriter(runtime.incoming_dir, settings.max_attachment_bytes, found.name)
        try:
            writer.write(found.data)
        except PayloadTooLarge:
            return None
        stored = writer.finish(found.name, found.content_type)
        made.append(stored)
        return stored

    return MailIntake(
        work,
        support_address=support,
        domain=support.partition("@")[2],
        policy=Policy(strangers=settings.mail_strangers, unproven=settings.mail_unproven),
        store_file=store,
        hourly_cap=settings.mail_hourly_cap,
    )


def discard(made: list[IncomingFile]) -> None:
    for file in made:
        file.discard()
    made.clear()


def _said(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
