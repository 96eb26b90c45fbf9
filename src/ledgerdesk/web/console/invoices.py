"""The console's invoices: unpaid and overdue, issuing one with its lines, an invoice's
page (its lines, payments, credit notes and documents; recording a payment, crediting
it), and the seller's legal details."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, ParamError, invalid, problems_error
from ledgerdesk.invoices.money import parse_rate, plain
from ledgerdesk.invoices.parties import SELLER_FIELDS, SellerService, seller_of, seller_values
from ledgerdesk.invoices.pricing import EXEMPT, LineInput, VatCategory, line_from_text
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.repository import InvoiceRepository
from ledgerdesk.invoices.service import (
    InvoiceService,
    InvoiceView,
    LineView,
    StaffInvoiceReader,
    details_of,
    payments_of,
)
from ledgerdesk.web import display
from ledgerdesk.web.core import (
    Redirect,
    Refused,
    Visit,
    Web,
    field_errors,
    path_id,
    text_field,
)
from ledgerdesk.web.documents import document_response
from ledgerdesk.web.pages import (
    ConfirmPage,
    InvoicePage,
    InvoicesPage,
    LineRow,
    Page,
    SellerPage,
)

# Rows of the issue form (each a description, quantity, unit price and VAT): a form has
# at most 100 fields; longer invoices are issued with `ledgerdesk admin invoice create`.
MAX_FORM_LINES = 20
BLANK_ROWS = 3
ISSUE_FIELDS = (
    "customer",
    "currency",
    "title",
    "description",
    "date",
    "pay_within_days",
    "exchange_rate",
    "exemption_reason",
)


class InvoicePages:
    def __init__(self, web: Web) -> None:
        self.web = web

    # -- the list and the issue form ----------------------------------------------------

    def _invoices_page(
        self,
        visit: Visit,
        show: Literal["unpaid", "overdue"],
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        rows: list[LineRow] | None = None,
    ) -> Page:
        reader = StaffInvoiceReader(InvoiceQueries(visit.db))
        seller = seller_of(visit.session)
        typed = rows or []
        blank = max(BLANK_ROWS - len(typed), 0)  # "Add a line" adds one more
        return Page(
            InvoicesPage(
                show=show,
                invoices=reader.unpaid(overdue_on=visit.today if show == "overdue" else None),
                receivables=reader.receivables(visit.today),
                today=visit.today,
                seller_set=seller is not None,
                default_currency=seller.currency.code if seller else visit.settings.currency,
                rows=[*typed, *[LineRow("", "1", "", "21")] * blank],
                max_rows=MAX_FORM_LINES,
                values=values or {"pay_within_days": "30"},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def invoices(self, request: Request) -> Response:
        show: Literal["unpaid", "overdue"] = (
            "overdue" if request.query_params.get("show") == "overdue" else "unpaid"
        )
        if request.method == "GET":
            return await self.web.visit(
                request, "staff", lambda visit: self._invoices_page(visit, show)
            )
        form = await self.web.form(request, "staff")
        values = {name: text_field(form, name).strip() for name in ISSUE_FIELDS}
        rows = _rows(form)
        if form.get("action") == "add-line":  # one more row; nothing is issued yet
            more = [*rows, LineRow("", "1", "", rows[-1].vat if rows else "21")]
            # Writes nothing, so it is answered as a page, not a redirect.
            return await self.web.visit(
                request,
                "staff",
                lambda visit: self._invoices_page(visit, show, values=values, rows=more),
            )

        def work(visit: Visit) -> Redirect:
            try:
                view = self._issue(visit, values, rows)
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._invoices_page(
                        again, show, errors=problems, values=values, rows=rows
                    )
                ) from None
            return _issued("Invoice", view)

        return await self.web.visit(request, "staff", work, form=form, write=True)

    def _issue(self, visit: Visit, values: dict[str, str], rows: list[LineRow]) -> InvoiceView:
        """The same rules as ``ledgerdesk admin invoice create``, from the form's text."""
        problems: list[ParamError] = []
        lines = _parsed(rows, problems, "an invoice needs at least one line")
        customer_id = _number(values["customer"], "customer", problems)
        days = _number(values["pay_within_days"] or "30", "pay_within_days", problems)
        created_on = visit.today
        if values["date"]:
            try:
                created_on = date.fromisoformat(values["date"])
            except ValueError:
                problems.append(ParamError("date", "is not a date"))
        rate = None
        if values["exchange_rate"]:
            try:
                rate = parse_rate(values["exchange_rate"])
            except ValueError as exc:
                problems.append(ParamError("exchange_rate", str(exc)))
        customer = (
            visit.session.get(User, customer_id) if customer_id and customer_id < 2**63 else None
        )
        if customer_id is not None and customer is None:
            problems.append(ParamError("customer", f"no customer has id {customer_id}"))
        if problems:
            raise problems_error(problems)
        assert customer is not None
        assert days is not None
        return InvoiceService(visit.work).issue(
            customer=customer,
            lines=lines,
            created_on=created_on,
            pay_within_days=days,
            currency=values["currency"] or None,
            title=values["title"] or None,
            description=values["description"],
            exemption_reason=values["exemption_reason"] or None,
            exchange_rate=rate,
        )

    # -- one invoice --------------------------------------------------------------------

    def _invoice_page(
        self,
        visit: Visit,
        invoice_id: int,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        rows: list[LineRow] | None = None,
    ) -> Page:
        details = details_of(visit.session, invoice_id)
        repository = InvoiceRepository(visit.session)
        view = details.view
        customer = visit.session.get(User, view.user_id)
        assert customer is not None
        corrects = repository.get(view.corrects_id) if view.corrects_id else None
        credit_rows = rows or [
            LineRow(line.description, "1", "", _vat_text(line)) for line in details.lines[:1]
        ]
        return Page(
            InvoicePage(
                invoice=view,
                lines=details.lines,
                customer=customer,
                payments=payments_of(visit.session, invoice_id),
                credit_notes=[
                    note
                    for note in (repository.get(i) for i in details.credit_note_ids)
                    if note is not None
                ],
                corrects_number=None if corrects is None else corrects.number,
                today=visit.today,
                credit_rows=credit_rows,
                values=values or {"amount": str(view.amount_due)},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def invoice(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        return await self.web.visit(
            request, "staff", lambda visit: self._invoice_page(visit, invoice_id)
        )

    async def pay(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        form = await self.web.form(request, "staff")
        values = {
            n: text_field(form, n).strip() for n in ("amount", "paid_on", "method", "reference")
        }

        def work(visit: Visit) -> Redirect:
            try:
                amount = _decimal(values["amount"], "amount")
                paid_on = (
                    date.fromisoformat(values["paid_on"]) if values["paid_on"] else visit.today
                )
                view = InvoiceService(visit.work).pay(
                    invoice_id,
                    amount=amount,
                    paid_on=paid_on,
                    method=values["method"],
                    reference=values["reference"],
                )
            except ValueError:
                problems = {"paid_on": "is not a date"}
                raise Refused(
                    lambda again: self._invoice_page(
                        again, invoice_id, errors=problems, values=values
                    )
                ) from None
            except LedgerdeskError as exc:
                if exc.http_status == 404:
                    raise
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._invoice_page(
                        again, invoice_id, errors=problems, values=values
                    )
                ) from None
            said = (
                "paid in full" if view.paid_on else f"{view.amount_due} {view.currency} still due"
            )
            return Redirect(f"/console/invoices/{invoice_id}", flash=f"Payment recorded: {said}.")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def credit(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        form = await self.web.form(request, "staff")
        whole = form.get("whole") == "1"
        reason = text_field(form, "reason").strip()
        rows = _rows(form)

        def work(visit: Visit) -> Redirect:
            try:
                lines = None if whole else _lines(rows)
                note = InvoiceService(visit.work).credit(
                    invoice_id, lines=lines, reason=reason, created_on=visit.today
                )
            except LedgerdeskError as exc:
                if exc.http_status == 404:
                    raise
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._invoice_page(
                        again, invoice_id, errors=problems, values={"reason": reason}, rows=rows
                    )
                ) from None
            return _issued("Credit note", note)

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def document(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        kind = request.path_params["format"]
        return await self.web.visit(
            request, "staff", lambda visit: document_response(visit, invoice_id, kind, owner=None)
        )

    async def mark_paid(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        if request.method == "GET":  # asked on a page of its own, then posted from it
            back = request.query_params.get("back")

            def confirm(visit: Visit) -> Page:
                view = StaffInvoiceReader(InvoiceQueries(visit.db)).details(invoice_id)
                return Page(
                    ConfirmPage(
                        title=f"Mark invoice {view.number} paid?",
                        subject=view.title,
                        text=f"{display.money(view.amount_due, view.currency)} still due "
                        f"(of {display.money(view.amount_net, view.currency)} incl. VAT), due "
                        f"{view.pay_before}. It is recorded as paid today, {visit.today}; "
                        "this cannot be undone here.",
                        action=f"/console/invoices/{invoice_id}/paid",
                        fields={"back": "overdue"} if back == "overdue" else {},
                        button="Mark paid",
                        back="/console/invoices" + ("?show=overdue" if back == "overdue" else ""),
                    )
                )

            return await self.web.visit(request, "staff", confirm)
        form = await self.web.form(request, "staff")
        back = "/console/invoices?show=overdue" if form.get("back") == "overdue" else None

        def work(visit: Visit) -> Redirect:
            view = InvoiceService(visit.work).mark_paid(invoice_id, paid_on=visit.today)
            return Redirect(
                back or f"/console/customers/{view.user_id}",
                flash=f"Invoice {view.number} marked paid.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)

    # -- the seller ---------------------------------------------------------------------

    def _seller_page(
        self,
        visit: Visit,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        seller = seller_of(visit.session)
        current = (
            {}
            if seller is None
            else {k: "" if v is None else str(v) for k, v in seller_values(seller).items()}
        )
        return Page(
            SellerPage(
                values=values or {"currency": visit.settings.currency, **current},
                is_set=seller is not None,
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def seller(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.web.visit(request, "staff", lambda visit: self._seller_page(visit))
        form = await self.web.form(request, "staff")
        values = {name: text_field(form, name).strip() for name in SELLER_FIELDS}

        def work(visit: Visit) -> Redirect:
            try:
                SellerService(visit.work).set(
                    dict(values), default_currency=visit.settings.currency
                )
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._seller_page(again, errors=problems, values=values)
                ) from None
            return Redirect("/console/seller", flash="Seller's details saved.")

        return await self.web.visit(request, "staff", work, form=form, write=True)


def _issued(kind: str, view: InvoiceView) -> Redirect:
    """To the page of what was just issued, saying so."""
    total = display.money(view.amount_net, view.currency)
    return Redirect(
        f"/console/invoices/{view.id}", flash=f"{kind} {view.number} issued: {total} incl. VAT."
    )


def _rows(form: FormData) -> list[LineRow]:
    """The line rows of a form, as typed (at most ``MAX_FORM_LINES``)."""
    columns = [
        [value if isinstance(value, str) else "" for value in form.getlist(name)]
        for name in ("line_description", "line_quantity", "line_unit_price", "line_vat")
    ]
    count = min(max((len(c) for c in columns), default=0), MAX_FORM_LINES)
    return [LineRow(*(c[i].strip() if i < len(c) else "" for c in columns)) for i in range(count)]


def _lines(rows: list[LineRow]) -> list[LineInput]:
    problems: list[ParamError] = []
    lines = _parsed(rows, problems, "give the lines to credit, or credit the whole invoice")
    if problems:
        raise problems_error(problems)
    return lines


def _parsed(rows: list[LineRow], problems: list[ParamError], none: str) -> list[LineInput]:
    """The rows typed (blank ones left out) as lines; what is wrong goes to
    ``problems`` (``none`` when no row is filled)."""
    lines: list[LineInput] = []
    filled = [row for row in rows if not row.blank]
    if not filled:
        problems.append(ParamError("lines", none))
    for number, row in enumerate(filled, start=1):
        try:
            lines.append(line_from_text(row.description, row.quantity, row.unit_price, row.vat))
        except ValueError as exc:
            problems.append(ParamError("lines", f"line {number}: {exc}"))
    return lines


def _number(raw: str, name: str, problems: list[ParamError]) -> int | None:
    if raw.isdigit() and len(raw) < 19:
        return int(raw)
    problems.append(ParamError(name, "must be a whole number"))
    return None


def _decimal(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid(name, "is not an amount") from None
    if not value.is_finite():
        raise invalid(name, "is not an amount")
    return value


def _vat_text(line: LineView) -> str:
    """A line's VAT as the line rows take it: a percentage, or ``exempt``."""
    return EXEMPT if line.category is VatCategory.EXEMPT else plain(line.vat_perc)
