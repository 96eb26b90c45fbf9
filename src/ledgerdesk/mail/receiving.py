"""One path for received mail, whichever way it came (an MTA's pipe, LMTP, IMAP): the
raw bytes written to the process's incoming folder, then taken in one unit of work of
the ``mail`` door (``mail.service.MailIntake``) with the server's settings."""

from __future__ import annotations

from collections.abc import Iterable

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.mail.inbound import MAX_MESSAGE_BYTES, InboundFile
from ledgerdesk.mail.service import MailIntake, Taken
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime

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


def take(runtime: Runtime, raw: IncomingFile, *, via: str) -> Taken:
    """Take in the mail on disk at ``raw``; its file and those made of it are removed."""
    settings = runtime.settings
    support = settings.support_address
    if support is None:
        raise NotSetUp("LEDGERDESK_MAIL_FROM is not set: mail is not set up")
    made: list[IncomingFile] = []

    def store(found: InboundFile) -> IncomingFile | None:
        writer = IncomingWriter(runtime.incoming_dir, settings.max_attachment_bytes, found.name)
        try:
            writer.write(found.data)
        except PayloadTooLarge:
            return None
        stored = writer.finish(found.name, found.content_type)
        made.append(stored)
        return stored

    try:
        data = raw.path.read_bytes()
        with runtime.work(Actor.VISITOR, Origin("mail")) as work:
            return MailIntake(
                work,
                support_address=support,
                domain=support.partition("@")[2],
                policy=Policy(strangers=settings.mail_strangers, unproven=settings.mail_unproven),
                store_file=store,
                hourly_cap=settings.mail_hourly_cap,
            ).take(raw, data, via=via)
    finally:
        raw.discard()
        for file in made:
            file.discard()
