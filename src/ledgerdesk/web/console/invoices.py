"""The console's invoices: unpaid and overdue, issuing one, marking one paid."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, invalid
from ledgerdesk.invoices.money import parse_amount, parse_percentage
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import InvoiceService, StaffInvoiceReader
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
from ledgerdesk.web.pages import ConfirmPage, InvoicesPage, Page


class InvoicePages:
    def __init__(self, web: Web) -> None:
        self.web = web

    def _invoices_page(
        self,
        visit: Visit,
        show: Literal["unpaid", "overdue"],
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        reader = StaffInvoiceReader(InvoiceQueries(visit.db))
        return Page(
            InvoicesPage(
                show=show,
                invoices=reader.unpaid(overdue_on=visit.today if show == "overdue" else None),
                receivables=reader.receivables(visit.today),
                today=visit.today,
                values=values or {"pay_within_days": "30", "vat_perc": "21"},
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
        names = ("customer", "title", "description", "amount", "vat_perc", "date")
        values = {name: text_field(form, name).strip() for name in (*names, "pay_within_days")}

        def work(visit: Visit) -> Redirect:
            try:
                view = self._issue(visit, values)
            except LedgerdeskError as exc:
                problems = _invoice_errors(field_errors(exc))
                raise Refused(
                    lambda again: self._invoices_page(again, show, errors=problems, values=values)
                ) from None
            return Redirect(
                f"/console/customers/{view.user_id}",
                flash=f"Invoice {view.number} issued: "
                f"{display.money(view.amount_net, visit.settings.currency)} incl. VAT.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)

    def _issue(self, visit: Visit, values: dict[str, str]) -> Any:
        """The same rules as ``ledgerdesk admin invoice create``, from the form's text."""
        customer_id = _parsed(values["customer"], "customer", int)
        amount = _parsed(values["amount"], "amount", parse_amount)
        vat = _parsed(values["vat_perc"], "vat_perc", parse_percentage)
        created_on = (
            _parsed(values["date"], "date", date.fromisoformat) if values["date"] else visit.today
        )
        days = _parsed(values["pay_within_days"] or "30", "pay_within_days", int)
        customer = visit.session.get(User, customer_id) if 0 < customer_id < 2**63 else None
        if customer is None:
            raise invalid("customer", f"no customer has id {customer_id}")
        return InvoiceService(visit.work).create(
            customer=customer,
            title=values["title"],
            description=values["description"],
            amount_excl_vat_cents=amount,
            vat_perc_hundredths=vat,
            created_on=created_on,
            pay_within_days=days,
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
                        text=f"{display.money(view.amount_net, visit.settings.currency)}"
                        f" incl. VAT, due {view.pay_before}. It is paid as of today, "
                        f"{visit.today}; this cannot be undone here.",
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


# The invoice service's names for what it refuses, as this form names its fields.
_INVOICE_FIELDS = {"amount_excl_vat": "amount", "paid_on": "date"}


def _invoice_errors(errors: dict[str, str]) -> dict[str, str]:
    return {_INVOICE_FIELDS.get(name, name): message for name, message in errors.items()}


def _parsed(raw: str, name: str, parse: Any) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        message = str(exc) if parse in (parse_amount, parse_percentage) else "is not valid"
        raise invalid(name, message or "is not valid") from None
