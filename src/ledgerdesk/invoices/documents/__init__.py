"""An issued invoice's documents: UBL 2.1 and UN/CEFACT CII (EN 16931 e-invoices), and
a PDF/A-3 to read and file with the CII embedded (Factur-X). Each is made from a
``StoredInvoice`` alone: the same invoice, the same bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledgerdesk.invoices.stored import StoredInvoice

Format = Literal["pdf", "ubl", "cii"]
FORMATS: tuple[Format, ...] = ("pdf", "ubl", "cii")


@dataclass(frozen=True)
class Document:
    content: bytes
    media_type: str
    file_name: str


def render(invoice: StoredInvoice, kind: str) -> Document:
    """``invoice`` as a document of ``kind`` (one of ``FORMATS``)."""
    # Imported when a document is made: a server that makes none never loads them.
    from ledgerdesk.invoices.documents import cii, pdf, ubl

    makers = {
        "ubl": (ubl.document, "-ubl.xml", "application/xml"),
        "cii": (cii.document, "-cii.xml", "application/xml"),
        "pdf": (pdf.document, ".pdf", "application/pdf"),
    }
    if kind not in makers:
        raise ValueError(f"{kind!r} is not one of {', '.join(FORMATS)}")
    make, suffix, media_type = makers[kind]
    return Document(make(invoice), media_type, f"{invoice.number}{suffix}")
