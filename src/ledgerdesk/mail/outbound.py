"""Mail ledgerdesk sends: a notification composed from its templates, with the headers
that thread it and keep autoresponders quiet.

Each kind of mail has a plain-text and an HTML template (``templates/<kind>.txt`` and
``.html``, Jinja2; the HTML one escaped). A provider overrides any of them by putting a
file of the same name in ``<data dir>/mail-templates/``. The first line of the text
template is the subject (``Subject: ...``).

Headers: a ``Message-ID`` with a signed tag naming the ticket and the recipient
(``mail.tags``), ``In-Reply-To``/``References`` to the thread, ``Reply-To`` the ticket's
signed reply address, the ticket's code in the subject, ``Auto-Submitted:
auto-generated`` (RFC 3834) and ``X-Auto-Response-Suppress: All`` (Exchange), so that
out-of-office replies are not sent to it.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from ledgerdesk.mail.tags import Tags

KINDS = (
    "staff_reply",  # to a customer: staff answered their ticket
    "ticket_closed",  # to a customer: their ticket was closed
    "invoice_issued",  # to a customer: a new invoice or credit note, its PDF attached
    "new_ticket",  # to staff: a customer opened a ticket
    "customer_reply",  # to staff: a customer answered
    "refusal",  # to an unknown sender, when the provider refuses strangers' mail
    "address_confirm",  # to an address a customer added: the link that confirms it
    "password_reset",  # to a user who forgot their password: a link to set one
    "mention",  # to staff: a colleague named them in an internal note
)
OVERRIDES = "mail-templates"


@dataclass(frozen=True)
class File:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """One mail to send: to whom, which kind, what its templates are given, and what
    threads it (``ticket_id`` with ``recipient_id`` make its signed Message-ID)."""

    kind: str
    to: str
    to_name: str
    context: Mapping[str, Any]
    ticket_id: int | None = None
    recipient_id: int | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    files: Sequence[File] = field(default_factory=tuple)


class Templates:
    """The mail templates: the provider's (in the data directory) before ours."""

    def __init__(self, data_dir: Path | None = None) -> None:
        loaders: list[Any] = []
        if data_dir is not None:
            loaders.append(FileSystemLoader(str(data_dir / OVERRIDES)))
        loaders.append(PackageLoader("ledgerdesk.mail", "templates"))
        self.text = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=False,  # noqa: S701 (plain text mail: nothing is HTML)
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.html = Environment(
            loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined
        )

    def render(self, kind: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
        """The subject, the text and the HTML of a kind of mail."""
        if kind not in KINDS:
            raise ValueError(f"no mail of kind {kind!r}")
        text = self.text.get_template(f"{kind}.txt").render(**context)
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"{kind}.txt must start with a Subject: line")
        html = self.html.get_template(f"{kind}.html").render(**context)
        return first.removeprefix("Subject:").strip(), body.lstrip("\n"), html


def compose(
    outgoing: Outgoing,
    *,
    sender: str,
    sender_name: str,
    tags: Tags,
    templates: Templates,
    now: float | None = None,
) -> EmailMessage:
    """The message, ready for SMTP."""
    subject, text, html = templates.render(outgoing.kind, outgoing.context)
    message = EmailMessage()
    message["From"] = email.utils.formataddr((sender_name, sender))
    message["To"] = email.utils.formataddr((outgoing.to_name, outgoing.to))
    message["Subject"] = " ".join(subject.split())
    message["Date"] = email.utils.formatdate(now, localtime=False)
    if outgoing.ticket_id is not None and outgoing.recipient_id is not None:
        message_id = tags.message_id(outgoing.ticket_id, outgoing.recipient_id)
        message["Reply-To"] = tags.reply_address(sender, outgoing.ticket_id)
    else:
        message_id = email.utils.make_msgid(domain=tags.domain)[1:-1]
    message["Message-ID"] = f"<{message_id}>"
    if outgoing.in_reply_to:
        message["In-Reply-To"] = f"<{outgoing.in_reply_to}>"
    references = [*outgoing.references]
    if outgoing.in_reply_to and outgoing.in_reply_to not in references:
        references.append(outgoing.in_reply_to)
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references[-20:])
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for file in outgoing.files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=file.name,
        )
    return message
