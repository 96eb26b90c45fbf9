"""How values look on pages: times, ages, money, sizes, names of statuses and priorities,
and messages as safe Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup

from ledgerdesk.invoices.money import plain
from ledgerdesk.tickets.service import PRIORITY_NAMES, TicketStatus

STATUS_NAMES = {status.value: status.label for status in TicketStatus}
# Images a browser may show inline: raster formats only (an SVG can carry script).
PREVIEWABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(seconds: int) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``7 min``: how long something has waited."""
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def money(value: Decimal, currency: str = "") -> str:
    """``1,234.50 EUR``, ``120,000 JPY``: an amount never shown without its currency on
    a page, with as many decimals as its currency has (the invoices' amounts carry them)."""
    return f"{value:,} {currency}".rstrip()


def size(count: int) -> str:
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB"):
        if amount < 1024 or unit == "MiB":
            return f"{count} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} bytes"


# How a refused form's summary names a field (its label on the page).
FIELD_LABELS = {
    "title": "Subject",
    "url": "URL",
    "event_types": "Event types",
    "event": "Event",
    "since": "From",
    "until": "To",
    "owner_id": "Customer",
    "mail_notify": "Mail",
    "action": "Action",
    "content": "Message",
    "reference": "Your reference",
    "priority": "Priority",
    "attachments": "Attachments",
    "categories": "Categories",
    "ip_ranges": "IP ranges",
    "expires": "Expires after",
    "note": "Note",
    "user": "The customer",
    "customer": "Customer",
    "amount": "Amount",
    "vat_perc": "VAT %",
    "date": "Date",
    "pay_within_days": "Pay within days",
    "description": "Description",
    "name": "Name",
    "email": "Email",
    "password": "Password",
    "password_again": "Password again",
    "current_password": "Current password",
    "new_password": "New password",
    "new_password_again": "New password again",
    "code": "Code",
    "lines": "Lines",
    "currency": "Currency",
    "exchange_rate": "Exchange rate",
    "exemption_reason": "Reason for VAT exemption",
    "reason": "Reason",
    "method": "Method",
    "paid_on": "Paid on",
    "legal_name": "Legal name",
    "vat_id": "VAT id",
    "address_line": "Address",
    "city": "City",
    "postcode": "Postcode",
    "country": "Country",
    "billing_email": "Billing email",
    "electronic_address": "E-invoicing address",
    "iban": "IBAN",
    "bic": "BIC",
}

# Messages as safe Markdown: CommonMark with tables, strikethrough and bare links linked;
# raw HTML shown as text, never as HTML; no images (a message must not load anything);
# markdown-it's own check refuses javascript:, vbscript:, file: and data: links.
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": True, "typographer": False})
    .enable(["table", "strikethrough", "linkify"])
    .disable(["image"])
)


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: Any, env: Any
) -> str:
    tokens[index].attrSet("rel", "noopener noreferrer nofollow")
    return renderer.renderToken(tokens, index, options, env)


_MARKDOWN.add_render_rule("link_open", _link_open)


def markdown(text: str) -> Markup:
    """A message's text as HTML: safe Markdown (see ``_MARKDOWN``)."""
    return Markup(_MARKDOWN.render(text))  # noqa: S704 (markdown-it escapes what it is given)


FILTERS: dict[str, Any] = {
    "when": when,
    "age": age,
    "money": money,
    "size": size,
    "plain": plain,
    "markdown": markdown,
}
GLOBALS: dict[str, Any] = {
    "FIELD_LABELS": FIELD_LABELS,
    "STATUS_NAMES": STATUS_NAMES,
    "PRIORITY_NAMES": PRIORITY_NAMES,
    "PREVIEWABLE": PREVIEWABLE,
}
