"""``ledgerdesk admin invoice`` and ``ledgerdesk admin seller``: issuing invoices and
credit notes, payments, documents, and the seller's legal details."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import click

from ledgerdesk.accounts.service import AccountReader
from ledgerdesk.cli.support import (
    CliState,
    IsoDate,
    Parsed,
    ReportingGroup,
    emit,
    json_option,
    pass_state,
)
from ledgerdesk.invoices.documents import FORMATS, render
from ledgerdesk.invoices.money import parse_amount, parse_percentage, parse_rate
from ledgerdesk.invoices.parties import SellerService, require_seller, seller_layout
from ledgerdesk.invoices.pricing import LineInput, line_from_text
from ledgerdesk.invoices.service import (
    InvoiceDetails,
    InvoiceService,
    InvoiceView,
    details_of,
    invoice_layout,
    invoices_of,
    line_layout,
)
from ledgerdesk.invoices.stored import stored_invoice

LINE_HELP = (
    "A line: DESCRIPTION QUANTITY UNIT_PRICE VAT_PERCENT (a percentage, 0 for zero rated, "
    "or 'exempt'); repeat for more lines."
)


@click.group(cls=ReportingGroup)
def invoice() -> None:
    """Invoices and credit notes of customers."""


def _lines(given: tuple[tuple[str, str, str, str], ...]) -> list[LineInput]:
    lines = []
    for number, (description, quantity, unit_price, vat) in enumerate(given, start=1):
        try:
            lines.append(line_from_text(description, quantity, unit_price, vat))
        except ValueError as exc:
            raise click.BadParameter(f"line {number}: {exc}", param_hint="'--line'") from None
    return lines


@invoice.command("create")
@click.option("--user", "user_id", type=int, required=True)
@click.option(
    "--line", "line_texts", nargs=4, multiple=True, metavar="DESC QTY PRICE VAT", help=LINE_HELP
)
@click.option("--title", default=None, help="Default: the first line's description.")
@click.option("--description", default="", help="Multi-line text of what was bought.")
@click.option(
    "--amount-excl-vat",
    "amount_cents",
    type=Parsed("AMOUNT", parse_amount),
    default=None,
    help="One-line form: the amount excluding VAT, e.g. 350.00 (with --title, --vat-perc).",
)
@click.option(
    "--vat-perc",
    "vat_hundredths",
    type=Parsed("PERCENT", parse_percentage),
    default=None,
    help="One-line form: the VAT percentage, e.g. 21.",
)
@click.option("--currency", default=None, help="ISO 4217 code. Default: the seller's.")
@click.option(
    "--exchange-rate",
    type=Parsed("RATE", parse_rate),
    default=None,
    help="Units of the seller's currency for one of the invoice's (required for an "
    "invoice in another currency).",
)
@click.option("--exemption-reason", default=None, help="Why lines exempt from VAT are exempt.")
@click.option("--date", "created_on", type=IsoDate(), default=None, help="Default: today.")
@click.option("--pay-within-days", type=click.IntRange(0, 3650), default=30, show_default=True)
@json_option
@pass_state
def invoice_create(
    state: CliState,
    user_id: int,
    line_texts: tuple[tuple[str, str, str, str], ...],
    title: str | None,
    description: str,
    amount_cents: int | None,
    vat_hundredths: int | None,
    currency: str | None,
    exchange_rate: Decimal | None,
    exemption_reason: str | None,
    created_on: date | None,
    pay_within_days: int,
    as_json: bool,
) -> None:
    """Issue an invoice with the next number of its year.

    \b
    Examples:
      ledgerdesk admin invoice create --user 7 \\
        --line "Dedicated server, December" 1 89.00 21 \\
        --line "Extra IPv4 address" 4 1.50 21
      ledgerdesk admin invoice create --user 7 --title "Setup" \\
        --amount-excl-vat 350.00 --vat-perc 21
    """
    one_line = amount_cents is not None or vat_hundredths is not None
    if one_line and line_texts:
        raise click.UsageError("give --line, or --amount-excl-vat with --vat-perc: not both")
    if one_line:
        if amount_cents is None or vat_hundredths is None or title is None:
            raise click.UsageError(
                "the one-line form needs --title, --amount-excl-vat and --vat-perc"
            )
        lines = [LineInput(title, Decimal(1), Decimal(amount_cents).scaleb(-2), vat_hundredths)]
    elif line_texts:
        lines = _lines(line_texts)
    else:
        raise click.UsageError("give at least one --line (or --amount-excl-vat and --vat-perc)")
    with state.work() as work:
        customer = AccountReader(work.session).require_user(user_id)
        view = InvoiceService(work).issue(
            customer=customer,
            lines=lines,
            created_on=created_on or work.today,
            pay_within_days=pay_within_days,
            currency=currency,
            title=title,
            description=description,
            exemption_reason=exemption_reason,
            exchange_rate=exchange_rate,
        )
        emit(
            as_json,
            {"invoiceId": view.id, "number": view.number},
            f"Created invoice {view.id} ({view.number}) for user {user_id}: "
            f"{view.amount_net} {view.currency} incl. {view.vat} VAT, "
            f"pay before {view.pay_before}.",
        )


@invoice.command("credit")
@click.argument("invoice_id", type=int)
@click.option(
    "--line",
    "line_texts",
    nargs=4,
    multiple=True,
    metavar="DESC QTY PRICE VAT",
    help="A line to credit, at one of the invoice's VAT rates. Default: the whole invoice.",
)
@click.option("--reason", default="", help="Why it is credited; printed on the credit note.")
@click.option("--date", "created_on", type=IsoDate(), default=None, help="Default: today.")
@json_option
@pass_state
def invoice_credit(
    state: CliState,
    invoice_id: int,
    line_texts: tuple[tuple[str, str, str, str], ...],
    reason: str,
    created_on: date | None,
    as_json: bool,
) -> None:
    """Issue a credit note for an invoice (the whole of it, or the lines given).

    \b
    Example:
      ledgerdesk admin invoice credit 42 --reason "Outage, 3 days" \\
        --line "Dedicated server, 3 days" 3 2.90 21
    """
    lines = _lines(line_texts) if line_texts else None
    with state.work() as work:
        note = InvoiceService(work).credit(
            invoice_id, lines=lines, reason=reason, created_on=created_on or work.today
        )
        emit(
            as_json,
            {**invoice_layout(note), "creditNoteId": note.id},
            f"Created credit note {note.id} ({note.number}) for invoice {invoice_id}: "
            f"{note.amount_net} {note.currency} incl. {note.vat} VAT.",
        )


@invoice.command("pay")
@click.argument("invoice_id", type=int)
@click.option("--amount", type=Parsed("AMOUNT", Decimal), required=True, help="e.g. 50.00")
@click.option("--date", "paid_on", type=IsoDate(), default=None, help="Default: today.")
@click.option("--method", default="", help="e.g. SEPA transfer")
@click.option("--reference", default="", help="The bank's or the processor's reference.")
@json_option
@pass_state
def invoice_pay(
    state: CliState,
    invoice_id: int,
    amount: Decimal,
    paid_on: date | None,
    method: str,
    reference: str,
    as_json: bool,
) -> None:
    """Record a payment (part of what is due, or all of it)."""
    with state.work() as work:
        view = InvoiceService(work).pay(
            invoice_id,
            amount=amount,
            paid_on=paid_on or work.today,
            method=method,
            reference=reference,
        )
        emit(as_json, invoice_layout(view), _settled(view))


@invoice.command("mark-paid")
@click.argument("invoice_id", type=int)
@click.option("--date", "paid_on", type=IsoDate(), default=None, help="Default: today.")
@json_option
@pass_state
def invoice_mark_paid(
    state: CliState, invoice_id: int, paid_on: date | None, as_json: bool
) -> None:
    """Record the payment of what is still due."""
    with state.work() as work:
        view = InvoiceService(work).mark_paid(invoice_id, paid_on=paid_on or work.today)
        emit(as_json, {"invoiceId": view.id, "status": view.status}, _settled(view))


def _settled(view: InvoiceView) -> str:
    if view.paid_on is not None:
        return f"Invoice {view.id} ({view.number}) is paid (on {view.paid_on})."
    return (
        f"Invoice {view.id} ({view.number}): {view.amount_paid} {view.currency} paid, "
        f"{view.amount_due} {view.currency} still due."
    )


@invoice.command("list")
@click.option("--user", "user_id", type=int, default=None)
@json_option
@pass_state
def invoice_list(state: CliState, user_id: int | None, as_json: bool) -> None:
    """List invoices and credit notes, oldest first."""
    with state.session() as session:
        views = invoices_of(session, user_id)
        emit(
            as_json,
            {"invoices": [invoice_layout(v) for v in views]},
            "\n".join(
                f"{v.id:>6}  {v.number}  user {v.user_id}  {v.created_on}  "
                f"{v.amount_net:>12} {v.currency}  {v.status:<6}  {v.title}"
                for v in views
            )
            or "No invoices.",
        )


@invoice.command("show")
@click.argument("invoice_id", type=int)
@json_option
@pass_state
def invoice_show(state: CliState, invoice_id: int, as_json: bool) -> None:
    """Show an invoice or a credit note with its lines."""
    with state.session() as session:
        details = details_of(session, invoice_id)
        emit(as_json, _details_layout(details), _details_prose(details))


def _details_layout(details: InvoiceDetails) -> dict[str, object]:
    return {
        **invoice_layout(details.view),
        "lines": [line_layout(line) for line in details.lines],
        "creditNoteIds": list(details.credit_note_ids),
    }


def _details_prose(details: InvoiceDetails) -> str:
    view = details.view
    kind = "Credit note" if view.is_credit_note else "Invoice"
    rows = [f"{kind} {view.id} ({view.number}), user {view.user_id}, {view.created_on}"]
    rows += [
        f"  {line.quantity:>10} x {line.unit_price:>10}  {line.vat_perc:>5}% "
        f"{line.category.value:<2}  {line.amount_excl_vat:>12}  {line.description}"
        for line in details.lines
    ]
    rows.append(
        f"  total {view.amount_excl_vat} + VAT {view.vat} = {view.amount_net} {view.currency}; "
        f"{view.status}"
        + ("" if view.is_credit_note else f", {view.amount_due} {view.currency} due")
    )
    if details.credit_note_ids:
        rows.append(f"  credit notes: {', '.join(str(i) for i in details.credit_note_ids)}")
    return "\n".join(rows)


@invoice.command("export")
@click.argument("invoice_id", type=int)
@click.option("--format", "kind", type=click.Choice(FORMATS), required=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Default: standard output.",
)
@pass_state
def invoice_export(state: CliState, invoice_id: int, kind: str, output: Path | None) -> None:
    """Write an invoice or a credit note as a PDF (PDF/A-3 with its CII XML embedded,
    Factur-X), a UBL 2.1 or a UN/CEFACT CII document (EN 16931)."""
    with state.session() as session:
        document = render(stored_invoice(session, invoice_id), kind)
    if output is None:
        if kind == "pdf" and sys.stdout.isatty():
            raise click.UsageError("a PDF is not for a terminal: give --output FILE")
        sys.stdout.buffer.write(document.content)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(document.content)
        click.echo(f"Wrote {output} ({len(document.content)} bytes).", err=True)


# -- the seller -------------------------------------------------------------------------


@click.group(cls=ReportingGroup)
def seller() -> None:
    """The provider's legal details, named on every invoice."""


@seller.command("set")
@click.option("--name", default=None, help="The provider's legal name.")
@click.option("--vat-id", default=None, help="VAT id, e.g. NL854560178B01 (checked).")
@click.option("--address-line", default=None, help="Street and number.")
@click.option("--city", default=None)
@click.option("--postcode", default=None)
@click.option("--country", default=None, help="ISO 3166 code, e.g. NL.")
@click.option("--email", default=None, help="Where customers write about invoices.")
@click.option("--iban", default=None, help="The account customers pay into (checked).")
@click.option("--bic", default=None)
@click.option(
    "--electronic-address", default=None, help="Peppol address: scheme:id, e.g. 0208:0123456789."
)
@click.option(
    "--currency", default=None, help="The currency VAT is accounted in. Default: the server's."
)
@json_option
@pass_state
def seller_set(state: CliState, /, as_json: bool, **given: str | None) -> None:
    """Set the seller's legal details (the first time: name, VAT id, address, city,
    postcode and country; later, only what changes). Invoices issued before keep the
    details they were issued with.

    \b
    Example:
      ledgerdesk admin seller set --name "Hosting B.V." --vat-id NL854560178B01 \\
        --address-line "Keizersgracht 1" --city Amsterdam --postcode "1015 CD" \\
        --country NL --iban NL91ABNA0417164300 --email billing@hosting.example
    """
    with state.work() as work:
        details = SellerService(work).set(given, default_currency=state.runtime().settings.currency)
        layout = seller_layout(details)
        emit(as_json, layout, _seller_prose(layout))


@seller.command("show")
@json_option
@pass_state
def seller_show(state: CliState, as_json: bool) -> None:
    """Show the seller's legal details."""
    with state.session() as session:
        layout = seller_layout(require_seller(session))
        emit(as_json, layout, _seller_prose(layout))


def _seller_prose(layout: dict[str, object]) -> str:
    return "\n".join(f"{name.replace('_', ' '):>13}: {value}" for name, value in layout.items())
