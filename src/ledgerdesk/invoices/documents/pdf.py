"""The invoice as a PDF to read, print and file: laid out with ReportLab, made a
Factur-X PDF/A-3 (the CII document embedded as ``factur-x.xml``, with the XMP metadata
Factur-X requires) by the ``factur-x`` library, and given an sRGB output intent.

Everything that would differ from one run to the next is fixed to the invoice's own
date: ReportLab's invariant mode, and the timestamps ``factur-x`` stamps with the
current time. The same stored invoice gives the same bytes.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import cast

import facturx
import reportlab
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from ledgerdesk.accounts.billing import country_name
from ledgerdesk.invoices.documents import cii
from ledgerdesk.invoices.documents.common import percent, rate_note
from ledgerdesk.invoices.money import Currency, plain
from ledgerdesk.invoices.parties import Party
from ledgerdesk.invoices.stored import StoredInvoice

# Fonts embedded in the PDF (PDF/A embeds every font): Bitstream Vera, shipped with
# ReportLab.
_FONT_DIR = Path(reportlab.__file__).parent / "fonts"
REGULAR, BOLD = "LedgerdeskVera", "LedgerdeskVera-Bold"
_fonts_registered = False

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#52606d")
RULE = colors.HexColor("#cbd2d9")
BAND = colors.HexColor("#f0f4f8")


def _register_fonts() -> None:
    global _fonts_registered
    if not _fonts_registered:
        pdfmetrics.registerFont(TTFont(REGULAR, str(_FONT_DIR / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(_FONT_DIR / "VeraBd.ttf")))
        pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD)
        _fonts_registered = True


def _style(
    name: str,
    size: float = 9,
    *,
    bold: bool = False,
    color: colors.Color = INK,
    right: bool = False,
) -> ParagraphStyle:
    return ParagraphStyle(
        name,
        fontName=BOLD if bold else REGULAR,
        fontSize=size,
        leading=size * 1.3,
        textColor=color,
        alignment=TA_RIGHT if right else TA_LEFT,
    )


def document(invoice: StoredInvoice) -> bytes:
    """The Factur-X PDF of ``invoice``."""
    layout = _layout(invoice)
    xml = cii.document(invoice)
    kind = "Credit note" if invoice.is_credit_note else "Invoice"
    embedded = facturx.generate_from_binary(
        layout,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={
            "author": invoice.seller.name,
            "keywords": "Factur-X, EN 16931, " + kind.lower(),
            "title": f"{invoice.seller.name}: {kind} {invoice.number}",
            "subject": f"{kind} {invoice.number} of {invoice.issued_on.isoformat()} "
            f"to {invoice.buyer.name}",
        },
        lang="en-GB",
    )
    return _fixed(embedded, invoice.issued_on)


# -- the page -----------------------------------------------------------------------------


def _layout(invoice: StoredInvoice) -> bytes:
    _register_fonts()
    out = io.BytesIO()
    kind = "Credit note" if invoice.is_credit_note else "Invoice"
    page = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=20 * mm,
        title=f"{kind} {invoice.number}",
        author=invoice.seller.name,
        creator="ledgerdesk",
        producer="ledgerdesk",
        invariant=True,
    )
    money = invoice.currency
    text = _style("text")
    small = _style("small", 8, color=MUTED)
    story: list[Flowable] = [
        _header(invoice, kind),
        Spacer(1, 8 * mm),
        _parties(invoice),
        Spacer(1, 7 * mm),
    ]
    if invoice.corrects is not None:
        story.append(
            Paragraph(
                f"This credit note corrects invoice <b>{_x(invoice.corrects.number)}</b> of "
                f"{invoice.corrects.issued_on.isoformat()}.",
                text,
            )
        )
        story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(f"<b>{_x(invoice.title)}</b>", text))
    if invoice.description.strip():
        for paragraph in invoice.description.strip().split("\n\n"):
            story.append(Paragraph(_x(paragraph).replace("\n", "<br/>"), text))
    story += [
        Spacer(1, 4 * mm),
        _lines(invoice),
        Spacer(1, 5 * mm),
        KeepTogether([_totals(invoice)]),
    ]
    statements = [
        s for s in (invoice.treatment.statement, _exempt(invoice), rate_note(invoice)) if s
    ]
    for statement in statements:
        story += [Spacer(1, 2 * mm), Paragraph(_x(statement), small)]
    story += [Spacer(1, 6 * mm), _payment(invoice, money, text)]

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(REGULAR, 7.5)
        canvas.setFillColor(MUTED)
        seller = invoice.seller
        left = f"{seller.name} · VAT {seller.vat_id or '-'}"
        if seller.iban:
            left += f" · IBAN {seller.iban}"
        canvas.drawString(18 * mm, 10 * mm, left)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"{invoice.number} · page {doc.page}")
        canvas.restoreState()

    page.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _header(invoice: StoredInvoice, kind: str) -> Table:
    seller = invoice.seller
    left = [Paragraph(_x(seller.name), _style("seller", 15, bold=True))]
    left += [Paragraph(_x(line), _style("address")) for line in _address(seller)]
    right_style = _style("right", right=True)
    facts = [
        ("Number", invoice.number),
        ("Date", invoice.issued_on.isoformat()),
    ]
    if not invoice.is_credit_note:
        facts.append(("Due", invoice.due_on.isoformat()))
    if invoice.buyer.customer_id is not None:
        facts.append(("Customer", str(invoice.buyer.customer_id)))
    right = [Paragraph(kind.upper(), _style("kind", 17, bold=True, right=True))]
    right += [
        Paragraph(f"<font color='#52606d'>{label}</font>  {_x(value)}", right_style)
        for label, value in facts
    ]
    table = Table([[left, right]], colWidths=[97 * mm, 72 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("RIGHTPADDING", (-1, 0), (-1, 0), 0),
            ]
        )
    )
    return table


def _parties(invoice: StoredInvoice) -> Table:
    label = _style("label", 7.5, color=MUTED)
    buyer = invoice.buyer
    block = [Paragraph("BILL TO", label), Paragraph(f"<b>{_x(buyer.name)}</b>", _style("b"))]
    block += [Paragraph(_x(line), _style("a")) for line in _address(buyer)]
    table = Table([[block]], colWidths=[169 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), BAND),
                ("LEFTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
            ]
        )
    )
    return table


def _address(party: Party) -> list[str]:
    lines = []
    if party.address_line:
        lines.append(party.address_line)
    city = " ".join(p for p in (party.postcode, party.city) if p)
    if city:
        lines.append(city)
    lines.append(country_name(party.country))
    if party.vat_id:
        lines.append(f"VAT {party.vat_id}")
    if party.email:
        lines.append(party.email)
    return lines


def _lines(invoice: StoredInvoice) -> Table:
    money = invoice.currency
    head = _style("head", 8, bold=True, color=MUTED)
    head_right = _style("head_right", 8, bold=True, color=MUTED, right=True)
    cell = _style("cell", 8.5)
    number = _style("number", 8.5, right=True)
    rows: list[list[object]] = [
        [
            Paragraph("#", head),
            Paragraph("Description", head),
            Paragraph("Quantity", head_right),
            Paragraph(f"Unit price ({money.code})", head_right),
            Paragraph("VAT", head_right),
            Paragraph(f"Amount ({money.code})", head_right),
        ]
    ]
    for position, line in enumerate(invoice.lines, start=1):
        rows.append(
            [
                Paragraph(str(position), cell),
                Paragraph(_x(line.description), cell),
                Paragraph(_number(line.quantity), number),
                Paragraph(_number(line.unit_price, money.decimals), number),
                Paragraph(_vat_label(line.category.value, line.rate), number),
                Paragraph(_money(line.net_cents, money), number),
            ]
        )
    table = Table(
        rows,
        colWidths=[8 * mm, 73 * mm, 20 * mm, 26 * mm, 14 * mm, 28 * mm],
        repeatRows=1,
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _totals(invoice: StoredInvoice) -> Table:
    money = invoice.currency
    label = _style("tl", 8.5)
    value = _style("tv", 8.5, right=True)
    strong = _style("ts", 10, bold=True)
    strong_value = _style("tsv", 10, bold=True, right=True)
    rows: list[list[object]] = [
        [Paragraph("VAT breakdown", _style("h", 8, bold=True, color=MUTED)), "", ""]
    ]
    for group in invoice.groups:
        rows.append(
            [
                Paragraph(
                    f"{group.category.label}, {percent(group.rate)}% of "
                    f"{_money(group.taxable_cents, money)}",
                    label,
                ),
                "",
                Paragraph(_money(group.vat_cents, money), value),
            ]
        )
    rows.append(
        [
            Paragraph("Total excluding VAT", label),
            "",
            Paragraph(_money(invoice.net_cents, money), value),
        ]
    )
    rows.append([Paragraph("VAT", label), "", Paragraph(_money(invoice.vat_cents, money), value)])
    total = "Total credited" if invoice.is_credit_note else "Total to pay"
    rows.append(
        [
            Paragraph(f"{total} ({money.code})", strong),
            "",
            Paragraph(_money(invoice.total_cents, money), strong_value),
        ]
    )
    if invoice.tax_currency is not None and invoice.tax_currency_vat_cents is not None:
        rows.append(
            [
                Paragraph(f"VAT in {invoice.tax_currency.code}", label),
                "",
                Paragraph(
                    _money(invoice.tax_currency_vat_cents, invoice.tax_currency)
                    + f" {invoice.tax_currency.code}",
                    value,
                ),
            ]
        )
    table = Table(rows, colWidths=[97 * mm, 28 * mm, 44 * mm], hAlign="LEFT")
    last_total = len(rows) - (2 if invoice.tax_currency is not None else 1)
    table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 0), (1, 0)),
                ("LINEABOVE", (0, last_total), (-1, last_total), 0.8, INK),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _payment(invoice: StoredInvoice, money: Currency, style: ParagraphStyle) -> Paragraph:
    seller = invoice.seller
    if invoice.is_credit_note:
        assert invoice.corrects is not None
        return Paragraph(
            f"The amount of {_money(invoice.total_cents, money)} {money.code} is credited "
            f"against invoice {_x(invoice.corrects.number)}.",
            style,
        )
    to = ""
    if seller.iban:
        to = f" to <b>{_x(seller.iban)}</b>" + (f" (BIC {_x(seller.bic)})" if seller.bic else "")
        to += f" in the name of {_x(seller.name)}"
    return Paragraph(
        f"Please pay <b>{_money(invoice.total_cents, money)} {money.code}</b> by "
        f"<b>{invoice.due_on.isoformat()}</b>{to}, quoting <b>{_x(invoice.number)}</b>.",
        style,
    )


def _exempt(invoice: StoredInvoice) -> str | None:
    if invoice.exemption_reason and any(g.category.value == "E" for g in invoice.groups):
        return f"Exempt from VAT: {invoice.exemption_reason}"
    return None


def _vat_label(category: str, rate: int) -> str:
    """A line's VAT as the table shows it; the breakdown below names the categories."""
    return "exempt" if category == "E" else f"{percent(rate)}%"


def _money(cents: int, currency: Currency) -> str:
    return f"{currency.amount(cents):,}"


def _number(value: Decimal, decimals: int = 0) -> str:
    shown = plain(value)
    whole, _, fraction = shown.partition(".")
    fraction = fraction.ljust(decimals, "0")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")


def _x(text: str) -> str:
    """Text as ReportLab's paragraph markup takes it (it reads <, > and &)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- PDF/A-3: the output intent and fixed dates ---------------------------------------------

_XMP_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def _fixed(pdf: bytes, issued_on: date) -> bytes:
    """The Factur-X PDF with an sRGB output intent (PDF/A wants one for its colours)
    and every timestamp the invoice's date."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    pdf_time = issued_on.strftime("D:%Y%m%d000000+00'00'")
    xmp_time = issued_on.strftime("%Y-%m-%dT00:00:00+00:00").encode()
    writer.add_metadata({"/CreationDate": pdf_time, "/ModDate": pdf_time})
    root = writer._root_object
    # In place: a replaced stream would still be written, an orphan with the time in it.
    metadata = cast(StreamObject, root["/Metadata"].get_object())
    metadata.set_data(_XMP_TIME.sub(xmp_time, metadata.get_data()))
    for spec in cast(ArrayObject, root["/AF"].get_object()):
        files_of = cast(DictionaryObject, cast(DictionaryObject, spec.get_object())["/EF"])
        embedded = cast(StreamObject, files_of["/F"].get_object())
        params = cast(DictionaryObject, embedded["/Params"])
        params[NameObject("/ModDate")] = TextStringObject(pdf_time)
    profile = DecodedStreamObject()
    profile.set_data(_icc_profile())
    profile.update({NameObject("/N"): NumberObject(3)})
    intent = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/OutputIntent"),
            NameObject("/S"): NameObject("/GTS_PDFA1"),
            NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB"),
            NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
            NameObject("/DestOutputProfile"): writer._add_object(profile.flate_encode()),
        }
    )
    root[NameObject("/OutputIntents")] = ArrayObject([writer._add_object(intent)])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _icc_profile() -> bytes:
    return (files("ledgerdesk.invoices.documents") / "sRGB.icc").read_bytes()
