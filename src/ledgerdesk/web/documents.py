"""An invoice's documents as downloads of the console and the portal."""

from __future__ import annotations

from starlette.responses import Response

from ledgerdesk.errors import NotFound
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.invoices.documents import FORMATS, render
from ledgerdesk.invoices.stored import load_stored
from ledgerdesk.web.core import SECURITY_HEADERS, Visit


def document_response(visit: Visit, invoice_id: int, kind: str, *, owner: int | None) -> Response:
    """The document of ``kind`` (pdf, ubl, cii) of an invoice: the customer ``owner``'s
    only (a 404 for anyone else's), or any (None: staff)."""
    if kind not in FORMATS:
        raise NotFound(f"No document of the kind {kind!r}: pdf, ubl or cii.")
    document = render(load_stored(visit.db, invoice_id, user_id=owner), kind)
    return Response(
        document.content,
        headers={
            **SECURITY_HEADERS,
            "content-type": document.media_type,
            "content-disposition": attachment_disposition(document.file_name),
            "content-security-policy": "sandbox",
        },
    )
