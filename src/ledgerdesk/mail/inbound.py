"""A received mail, read once into what the helpdesk needs of it.

``read(raw)`` takes the RFC 5322 bytes as an MTA hands them over and returns an
``Inbound``: who sent it and to whom, the ids that thread it (``Message-ID``,
``In-Reply-To``, ``References``), the text (the plain part, or the HTML part as text by
inscriptis), the *reply* (the text without quoted history and signature, by
mail-parser-reply; the whole text stays available), the files (attachments and inline
images, names decoded from RFC 2231 and encoded words by the standard library), and
whether it is automatic mail that must never be answered or start a notification
(``automatic``: autoresponders, bulk and list mail, delivery reports, mailer daemons),
with, for a delivery failure, the Message-ID of the mail that bounced.

Whatever the sender did, reading never raises anything but ``Unreadable`` (with the
reason): too large, too deeply nested, too many parts, no sender. Undecodable charsets
are read as Latin-1 with replacement, defects are tolerated as mail clients tolerate them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
MAX_PARTS = 500
MAX_DEPTH = 20
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb", "Von: ... Gesendet:")
# mail-parser-reply recognises to cut the quoted history.
REPLY_LANGUAGES = ["en", "de", "nl", "fr", "es", "it", "pl", "sv", "da", "cs", "ja"]
_IDS = re.compile(r"<([^<>\s]+)>")
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "noreply-dmarc-support")


class Unreadable(ValueError):
    """A message that cannot be taken in; the message says why (for the sender's bounce
    or the console's queue)."""


@dataclass(frozen=True)
class InboundFile:
    name: str
    content_type: str
    data: bytes
    inline: bool  # shown in the body (an image with a Content-ID), not attached
    content_id: str | None


@dataclass(frozen=True)
class Inbound:
    message_id: str | None
    sender: str  # the address, lower case
    sender_name: str
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To; lower case
    subject: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str  # the whole text
    reply: str  # what the sender wrote now: no quoted history, no signature
    files: tuple[InboundFile, ...]
    automatic: str | None  # why no reply or notification may follow, if so
    bounced_id: str | None  # a delivery report: the Message-ID of the mail that failed
    size: int

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this one answers, nearest first."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


def read(raw: bytes) -> Inbound:
    """The message in ``raw`` (see the module's text); ``Unreadable`` says why not."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Unreadable(f"the message is larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MiB")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it raises is a broken mail
        raise Unreadable(f"not a mail message ({type(exc).__name__})") from None
    assert isinstance(message, EmailMessage)
    parts = _parts(message)
    sender_name, sender = _sender(message)
    if not sender:
        raise Unreadable("the message has no sender address")
    text = _text(parts)
    bounced = _bounced_id(message, parts)
    return Inbound(
        message_id=_first_id(_header(message, "message-id")),
        sender=sender,
        sender_name=sender_name,
        recipients=_recipients(message),
        subject=_header(message, "subject").strip(),
        in_reply_to=tuple(_IDS.findall(_header(message, "in-reply-to"))),
        references=tuple(_IDS.findall(_header(message, "references"))),
        text=text,
        reply=reply_of(text),
        files=tuple(_files(parts)),
        automatic=_automatic(message, sender, bounced),
        bounced_id=bounced,
        size=len(raw),
    )


def reply_of(text: str) -> str:
    """``text`` without the quoted history and the signature under it (the whole text when
    nothing of it would be left)."""
    if not text.strip():
        return ""
    try:
        reply = EmailReplyParser(languages=REPLY_LANGUAGES).parse_reply(text=text)
    except Exception:  # a parser's bad day never loses the text
        reply = text
    reply = _without_trailing_quote((reply or "").strip())
    return reply or text.strip()


def _without_trailing_quote(text: str) -> str:
    """The text without a quoted block at its end and the "... wrote:" line above it,
    whatever the language of that line (the parser knows a dozen)."""
    lines = text.split("\n")
    end = len(lines)
    while end > 0 and (lines[end - 1].startswith(">") or not lines[end - 1].strip()):
        end -= 1
    if not any(line.startswith(">") for line in lines[end:]):
        return text
    if end > 0 and lines[end - 1].rstrip().endswith(":"):
        end -= 1
    return "\n".join(lines[:end]).strip()


# -- headers ----------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    """A header's (first) value as text; a malformed one is read as it is."""
    try:
        value = message.get(name)
    except Exception:
        values = message.get_all(name, failobj=[]) if hasattr(message, "get_all") else []
        value = values[0] if values else None
    return "" if value is None else str(value)


def _first_id(value: str) -> str | None:
    found = _IDS.findall(value)
    return found[0] if found else (value.strip() or None)


def _address(value: str) -> tuple[str, str]:
    name, address = parseaddr(value)
    return name.strip(), address.strip().lower()


def _sender(message: Message) -> tuple[str, str]:
    for header in ("from", "sender", "return-path"):
        name, address = _address(_header(message, header))
        if "@" in address:
            return name, address
    return "", ""


def _recipients(message: Message) -> tuple[str, ...]:
    values: list[str] = []
    for header in ("to", "cc", "delivered-to", "x-original-to", "envelope-to"):
        values += [str(v) for v in message.get_all(header, failobj=[])]
    found = [address.strip().lower() for _, address in getaddresses(values)]
    return tuple(dict.fromkeys(a for a in found if "@" in a))


def _automatic(message: Message, sender: str, bounced: str | None) -> str | None:
    """Why this is automatic mail (RFC 3834 and what autoresponders really send)."""
    auto = _header(message, "auto-submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    precedence = _header(message, "precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-response"):
        if _header(message, header):
            return header.title()
    if _header(message, "x-ms-exchange-generated-message-source") or (
        _header(message, "x-ms-exchange-inbox-rules-loop")
    ):
        return "sent by an Exchange rule"
    if _header(message, "list-id") or _header(message, "list-unsubscribe"):
        return "mailing list"
    if bounced is not None or message.get_content_type() == "multipart/report":
        return "delivery report"
    local = sender.partition("@")[0]
    if local in _DAEMONS or local.startswith(("mailer-daemon", "postmaster")):
        return f"sent by {local}"
    return_path = _header(message, "return-path").strip()
    if return_path == "<>":
        return "empty return path (a bounce)"
    return None


# -- the body ---------------------------------------------------------------------------


def _parts(message: EmailMessage) -> list[tuple[EmailMessage, int]]:
    """Every leaf part with its depth, checked against the limits."""
    found: list[tuple[EmailMessage, int]] = []
    stack: list[tuple[EmailMessage, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Unreadable(f"the message nests parts more than {MAX_DEPTH} deep")
        if len(found) + len(stack) > MAX_PARTS:
            raise Unreadable(f"the message has more than {MAX_PARTS} parts")
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            children = part.get_payload()
            if isinstance(children, list):
                stack += [(c, depth + 1) for c in reversed(children) if isinstance(c, EmailMessage)]
            continue
        found.append((part, depth))
    return found


def _decoded(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("latin-1", errors="replace")


def _is_body(part: EmailMessage) -> bool:
    disposition = part.get_content_disposition()
    return (
        part.get_content_maintype() == "text"
        and disposition != "attachment"
        and not (part.get_filename() and disposition == "inline")
    )


def _text(parts: list[tuple[EmailMessage, int]]) -> str:
    """The plain text of the message: its first plain body part, else its first HTML
    body part as text."""
    for wanted in ("text/plain", "text/html"):
        for part, _ in parts:
            if part.get_content_type() == wanted and _is_body(part):
                content = _decoded(part)
                text = get_text(content) if wanted == "text/html" else content
                return _normal_lines(text)
    return ""


def _normal_lines(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _files(parts: list[tuple[EmailMessage, int]]) -> list[InboundFile]:
    files: list[InboundFile] = []
    for part, _ in parts:
        content_type = part.get_content_type()
        if content_type in ("text/plain", "text/html") and _is_body(part):
            continue  # the body (and its alternatives): the text
        if content_type in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
            continue  # an S/MIME signature: nothing a person reads
        if content_type in ("message/delivery-status", "text/rfc822-headers"):
            continue
        data = _data(part, content_type)
        name = _file_name(part, content_type, len(files) + 1)
        content_id = _first_id(_header(part, "content-id"))
        files.append(
            InboundFile(
                name=name,
                content_type=content_type,
                data=data,
                inline=part.get_content_disposition() != "attachment" and content_id is not None,
                content_id=content_id,
            )
        )
    return files


def _data(part: EmailMessage, content_type: str) -> bytes:
    if content_type == "message/rfc822":  # a forwarded mail, kept whole
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return inner[0].as_bytes()
            except Exception:
                return bytes(str(inner[0]), "utf-8", "replace")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


_EXTENSIONS = {
    "message/rfc822": ".eml",
    "text/calendar": ".ics",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
}


def _file_name(part: EmailMessage, content_type: str, number: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        name = "".join(c for c in name if c.isprintable()).strip().replace("/", "_")
        name = name.replace("\\", "_")
    if not name:
        name = f"attachment-{number}{_EXTENSIONS.get(content_type, '.bin')}"
    return name[-200:]


def _bounced_id(message: EmailMessage, parts: list[tuple[EmailMessage, int]]) -> str | None:
    """A delivery-status report's original Message-ID (RFC 3464), if this is one."""
    if message.get_content_type() != "multipart/report":
        return None
    for part, _ in parts:
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers"):
            found = re.search(r"(?im)^message-id:\s*(<[^>]+>)", _decoded(part))
            if found:
                return found.group(1)[1:-1]
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return _first_id(_header(inner[0], "message-id"))
    return None
