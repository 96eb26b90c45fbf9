"""The protocol, once, without I/O: how each action is asked and its answer read.

``Client`` and ``AsyncClient`` only send what ``Call`` describes and hand the answer
back here; everything else (parameter encoding, attachments, error mapping, result
types, the retry policy) lives in this module, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
import io
import json
import mimetypes
import os
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any, Protocol, TypeVar, Union

from ledgerdesk.client._errors import APIError, ConfigurationError, ParamError, error_class
from ledgerdesk.client._models import (
    AttachmentInfo,
    DocumentType,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Priority,
    Reply,
    Thread,
    Ticket,
    TicketStatus,
    TurnState,
)

ENDPOINT = "/api/rest/v2/administration"
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    base_url: str
    user_id: int
    api_key: str = field(repr=False)

    @classmethod
    def resolve(cls, base_url: str | None, user_id: int | None, api_key: str | None) -> Credentials:
        """Arguments first, then the LEDGERDESK_URL, _USER_ID and _API_KEY variables."""
        base_url = base_url or os.environ.get("LEDGERDESK_URL")
        raw_user = user_id if user_id is not None else os.environ.get("LEDGERDESK_USER_ID")
        api_key = api_key or os.environ.get("LEDGERDESK_API_KEY")
        missing = tuple(
            (argument, variable)
            for argument, variable, value in (
                ("base_url", "LEDGERDESK_URL", base_url),
                ("user_id", "LEDGERDESK_USER_ID", raw_user),
                ("api_key", "LEDGERDESK_API_KEY", api_key),
            )
            if value in (None, "")
        )
        if missing:
            named = ", ".join(f"{argument}= (or {variable})" for argument, variable in missing)
            raise ConfigurationError(f"missing credentials: pass {named}", missing)
        try:
            user = int(raw_user)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigurationError(
                f"the user id (user_id= or LEDGERDESK_USER_ID) must be a number, not {raw_user!r}"
            ) from None
        if not str(base_url).startswith(("http://", "https://")):
            raise ConfigurationError(
                f"the server URL (base_url= or LEDGERDESK_URL) must start with http:// or "
                f"https://, not {base_url!r}"
            )
        assert base_url is not None
        assert api_key is not None
        return cls(base_url.rstrip("/"), user, api_key)


AttachmentSource = Union[str, os.PathLike[str], "Attachment"]


class BinaryFile(Protocol):
    """What an attachment may be read from: an open binary file, or anything alike."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def seekable(self) -> bool: ...


@dataclass(frozen=True)
class Attachment:
    """A file to send: from a path, from bytes, or from an open binary file.

    >>> Attachment.from_bytes("df.txt", b"/dev/sda1 97%")
    >>> Attachment.from_file("dump.bin", open("dump.bin", "rb"))

    A plain path (``str`` or ``Path``) is accepted wherever an ``Attachment`` is.
    Files are streamed from disk, never read whole into memory.
    """

    name: str
    content_type: str
    path: Path | None = None
    data: bytes | None = None
    file: BinaryFile | None = None
    start: int = 0

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], content_type: str | None = None) -> Attachment:
        path = Path(path)
        return cls(path.name, content_type or _guess(path.name), path=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes, content_type: str | None = None) -> Attachment:
        return cls(name, content_type or _guess(name), data=data)

    @classmethod
    def from_file(cls, name: str, file: BinaryFile, content_type: str | None = None) -> Attachment:
        start = file.tell() if file.seekable() else -1
        return cls(name, content_type or _guess(name), file=file, start=start)

    @classmethod
    def of(cls, source: AttachmentSource) -> Attachment:
        return source if isinstance(source, Attachment) else cls.from_path(source)

    @property
    def replayable(self) -> bool:
        """Whether it can be sent again on a retry."""
        return self.file is None or self.start >= 0

    def open(self, stack: ExitStack) -> BinaryFile:
        if self.path is not None:
            return stack.enter_context(self.path.open("rb"))
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.file is not None
        if self.start >= 0:
            self.file.seek(self.start)
        return self.file


def _guess(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class Call:
    """One protocol call, as the SDK asks it."""

    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    idempotency_key: str | None = None
    download: bool = False

    @property
    def replayable(self) -> bool:
        return all(a.replayable for a in self.attachments)

    @contextmanager
    def request(self, credentials: Credentials) -> Iterator[dict[str, Any]]:
        """The keyword arguments of ``httpx.Client.request`` for this call."""
        headers = {"Accept": "application/json"}
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        fields: dict[str, Any] = {
            "userId": credentials.user_id,
            "apiKey": credentials.api_key,
            "action": self.action,
            **self.params,
        }
        url = f"{credentials.base_url}{ENDPOINT}"
        if not self.attachments:
            yield {"method": "POST", "url": url, "json": fields, "headers": headers}
            return
        with ExitStack() as stack:
            files = [
                ("attachments[]", (a.name, a.open(stack), a.content_type)) for a in self.attachments
            ]
            data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
            yield {"method": "POST", "url": url, "data": data, "files": files, "headers": headers}


def is_download(headers: Mapping[str, str]) -> bool:
    """A file, not an envelope (a file may itself be JSON: its disposition tells)."""
    return headers.get("content-disposition", "").startswith("attachment")


def read_envelope(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The ``data`` of a success envelope; the mapped exception for anything else."""
    request_id = headers.get("x-request-id")
    retry_after = _retry_after(headers.get("retry-after"))
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or envelope.get("status") not in ("Success", "Error"):
        raise error_class(None, status)(
            f"HTTP {status} without a ledgerdesk envelope",
            code=None,
            status=status,
            request_id=request_id,
            retry_after=retry_after,
        )
    raw_data = envelope.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    if envelope["status"] == "Success" and status < 400:
        return data
    code = data.get("errorCode") if isinstance(data.get("errorCode"), int) else None
    errors = tuple(
        ParamError(str(e.get("property", "")), str(e.get("message", "")))
        for e in data.get("errors", [])
        if isinstance(e, dict)
    )
    raise error_class(code, status)(
        str(envelope.get("msg") or "error"),
        code=code,
        status=status,
        errors=errors,
        request_id=request_id,
        retry_after=retry_after,
    )


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter; 429s wait their Retry-After.

    Every action is safe to repeat: reads change nothing, close/reopen are idempotent,
    and createTicket/replyTicket carry an Idempotency-Key made once per call.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: Callable[[float, float], float] = random.uniform

    def delay(self, attempt: int, error: Exception) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, APIError):
            if error.code == 4002 or error.status == 429:
                wait = error.retry_after if error.retry_after is not None else self.backoff
                return None if wait > self.max_retry_after else wait + self.jitter(0, 0.1)
            if not (error.status >= 500 and error.status != 501):
                return None
        return self.jitter(0, min(self.max_backoff, self.backoff * 2**attempt))


# -- the actions: each a Call and a reader of its data ----------------------------------------

Reader = Callable[[dict[str, Any]], T]


def _dmy(day: date) -> str:
    return day.strftime("%d-%m-%Y")


E = TypeVar("E", bound=enum.Enum)


def as_enum(kind: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``kind``: the member itself, or its name or value as a
    plain string or number (``"open"``, ``"OPEN"``, ``1``); anything else a clear
    ``TypeError``, not a failed ``int()`` deep inside."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        for member in kind:
            if value.strip().upper() == member.name or value == str(member.value):
                return member
    elif isinstance(value, int) and not isinstance(value, bool | enum.Enum):
        for member in kind:
            if member.value == value:
                return member
    names = ", ".join(repr(m.name.lower()) for m in kind)
    raise TypeError(f"{what} must be a {kind.__name__} (or one of {names}), not {value!r}")


def as_date(value: object, what: str) -> date:
    """A ``date`` (a ``datetime`` counts as its day) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise TypeError(f"{what} must be a date or a YYYY-MM-DD string, not {value!r}")


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def invoice_ids(
    status: InvoiceStatus | str | None,
    since: date | str | None,
    until: date | str | None,
    document_type: DocumentType | str | None = DocumentType.INVOICE,
) -> Call:
    wanted = None if status is None else as_enum(InvoiceStatus, status, "status")
    params: dict[str, Any] = {"status": -1 if wanted is None else int(wanted == InvoiceStatus.PAID)}
    if document_type is None or document_type == "all":
        params["documentType"] = "all"
    else:
        kind = as_enum(DocumentType, document_type, "document_type")
        if kind is not DocumentType.INVOICE:  # the default; an i3D.net server knows no other
            params["documentType"] = kind.value
    if since is not None:
        params["dateStart"] = _dmy(as_date(since, "since"))
    if until is not None:
        params["dateEnd"] = _dmy(as_date(until, "until"))
    return Call("getInvoiceIds", params)


def read_invoice_ids(data: dict[str, Any]) -> list[int]:
    return [int(i) for i in data["invoiceIds"]]


def read_invoice(data: dict[str, Any]) -> Invoice:
    (raw,) = data["invoices"]
    return Invoice(
        id=raw["invoiceId"],
        number=raw["number"],
        title=raw["title"],
        description=raw["description"],
        created_on=date.fromisoformat(raw["createdOn"]),
        pay_before=date.fromisoformat(raw["payBefore"]),
        amount_net=_money(raw["amountNet"]),
        vat=_money(raw["vat"]),
        vat_percentage=_money(raw["vatPerc"]),
        status=InvoiceStatus(raw["status"]),
        document_type=DocumentType(raw.get("documentType", "invoice")),
        currency=raw.get("currency"),
        amount_excl_vat=_optional_money(raw.get("amountExclVat")),
        amount_paid=_optional_money(raw.get("amountPaid")),
        amount_due=_optional_money(raw.get("amountDue")),
        corrects_invoice_id=raw.get("correctsInvoiceId"),
        lines=tuple(
            InvoiceLine(
                description=line["description"],
                quantity=Decimal(str(line["quantity"])),
                unit_price=Decimal(str(line["unitPrice"])),
                vat_category=line["vatCategory"],
                vat_percentage=_money(line["vatPerc"]),
                amount_excl_vat=_money(line["amountExclVat"]),
            )
            for line in raw.get("lines", ())
        ),
    )


def _optional_money(value: int | float | str | None) -> Decimal | None:
    return None if value is None else _money(value)


INVOICE_FORMATS = ("pdf", "ubl", "cii")


def invoice_document(invoice_id: int, kind: str) -> Call:
    if kind not in INVOICE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(INVOICE_FORMATS)}, not {kind!r}")
    return Call(
        "getInvoiceDocument",
        {"invoiceId": invoice_id, "format": kind, "encoding": "raw"},
        download=True,
    )


def _money(value: int | float | str) -> Decimal:
    # The wire has at most two decimals; going through str keeps them exact.
    return Decimal(str(value)).quantize(Decimal("0.01"))


def read_ticket(raw: dict[str, Any]) -> Ticket:
    return Ticket(
        id=raw["ticketId"],
        code=raw["ticketCode"],
        user_id=raw["userId"],
        title=raw["title"],
        reference=raw["reference"],
        status=TicketStatus(raw["status"]),
        priority=Priority(raw["priorityId"]),
        created=_when(raw["created"]),
        status_updated=_when(raw["statusUpdateTime"]),
        last_updated=_when(raw["timeLastUpdated"]),
    )


def read_tickets(data: dict[str, Any]) -> list[Ticket]:
    return [read_ticket(t) for t in data["tickets"]]


def read_thread(data: dict[str, Any]) -> Thread:
    return Thread(
        ticket=read_ticket(data["thread"]),
        replies=tuple(
            Reply(
                author=r["by"],
                user_id=r["userId"],
                created=_when(r["created"]),
                title=r["title"],
                content=r["content"],
                attachments=tuple(
                    AttachmentInfo(a["attachmentId"], a["name"], a["contentType"], a["size"])
                    for a in r["attachments"]
                ),
            )
            for r in data["replies"]
        ),
    )


def read_turn(data: dict[str, Any]) -> TurnState:
    waiting = data.get("waitingUntil")
    return TurnState(
        ticket_id=int(data["ticketId"]),
        status=TicketStatus(data["status"]),
        turn=data.get("turn"),
        waiting_until=None if waiting is None else _when(waiting),
    )


def read_ticket_id(data: dict[str, Any]) -> int:
    return int(data["ticketId"])


def read_nothing(data: dict[str, Any]) -> None:
    return None


def tickets(status: TicketStatus | str | int | None) -> Call:
    wanted = None if status is None else as_enum(TicketStatus, status, "status")
    return Call("getTicketOverview", {"status": -1 if wanted is None else int(wanted)})


def create_ticket(
    title: str,
    content: str,
    reference: str,
    priority: Priority | str | int,
    attachments: Sequence[AttachmentSource],
) -> Call:
    level = as_enum(Priority, priority, "priority")
    return Call(
        "createTicket",
        {"title": title, "content": content, "reference": reference, "priorityId": int(level)},
        tuple(Attachment.of(a) for a in attachments),
        idempotency_key=str(uuid.uuid4()),
    )


def reply(ticket_id: int, content: str, attachments: Sequence[AttachmentSource]) -> Call:
    return Call(
        "replyTicket",
        {"ticketId": ticket_id, "content": content},
        tuple(Attachment.of(a) for a in attachments),
        idempotency_key=str(uuid.uuid4()),
    )


def download(ticket_id: int, attachment_id: int) -> Call:
    return Call(
        "getTicketAttachment",
        {"ticketId": ticket_id, "attachmentId": attachment_id, "encoding": "raw"},
        download=True,
    )


def download_name(headers: Mapping[str, str]) -> str:
    """The file name from Content-Disposition (RFC 6266 ``filename*`` first)."""
    message = Message()
    message["content-disposition"] = headers.get("content-disposition", "")
    return message.get_filename() or "attachment"


def counted(
    chunks: Iterator[bytes],
    headers: Mapping[str, str],
    progress: Callable[[int, int], None] | None,
) -> Iterator[bytes]:
    """The chunks of a download, reporting ``(done, total)`` after each one."""
    total = int(headers.get("content-length") or 0)
    done = 0
    for chunk in chunks:
        done += len(chunk)
        if progress is not None:
            progress(done, total)
        yield chunk


async def acounted(
    chunks: AsyncIterator[bytes],
    headers: Mapping[str, str],
    progress: Callable[[int, int], None] | None,
) -> AsyncIterator[bytes]:
    total = int(headers.get("content-length") or 0)
    done = 0
    async for chunk in chunks:
        done += len(chunk)
        if progress is not None:
            progress(done, total)
        yield chunk
