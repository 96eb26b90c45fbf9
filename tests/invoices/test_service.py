"""Issuing invoices and credit notes, and payments: the rules, on both databases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.db.models import Invoice, User
from ledgerdesk.errors import InvalidParameters, InvalidState, LedgerdeskError
from ledgerdesk.invoices.parties import SellerService
from ledgerdesk.invoices.pricing import LineInput, line_from_text
from ledgerdesk.invoices.service import InvoiceService, InvoiceView, details_of
from ledgerdesk.runtime import Runtime
from tests.factories import (
    SELLER,
    credit_invoice,
    make_invoice,
    make_user,
    prepare_invoicing,
    recorded_events,
    system_work,
)

DAY = date(2026, 11, 2)


def issue(runtime: Runtime, user_id: int, lines: list[LineInput], **more: Any) -> InvoiceView:
    with system_work(runtime) as work:
        customer = work.session.get(User, user_id)
        assert customer is not None
        return InvoiceService(work).issue(
            customer=customer, lines=lines, created_on=DAY, pay_within_days=14, **more
        )


def pay(runtime: Runtime, invoice_id: int, amount: str | None, **more: Any) -> InvoiceView:
    with system_work(runtime) as work:
        return InvoiceService(work).pay(
            invoice_id,
            amount=None if amount is None else Decimal(amount),
            paid_on=more.pop("paid_on", DAY),
            **more,
        )


def customer(runtime: Runtime, country: str = "NL", **billing: str) -> int:
    user_id = make_user(runtime, name="Ann")
    prepare_invoicing(runtime, user_id, country=country)
    if billing:
        with system_work(runtime) as work:
            AccountService(work).update_user(user_id, billing=billing)
    return user_id


SERVER = line_from_text("Server", "1", "100.00", "21")


def test_an_invoice_needs_the_seller_and_the_customers_country(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    with pytest.raises(InvalidState, match="seller's legal details are not set"):
        issue(runtime, user_id, [SERVER])
    with system_work(runtime) as work:
        SellerService(work).set(dict(SELLER), default_currency="EUR")
    with pytest.raises(InvalidParameters, match="no billing country"):
        issue(runtime, user_id, [SERVER])


def test_the_parties_decide_the_vat_treatment(runtime: Runtime) -> None:
    dutch = issue(runtime, customer(runtime, "NL"), [SERVER])
    german_business = issue(runtime, customer(runtime, "DE", vat_id="DE136695976"), [SERVER])
    german_consumer = issue(runtime, customer(runtime, "DE"), [SERVER])
    american = issue(runtime, customer(runtime, "US"), [SERVER])
    assert [v.vat for v in (dutch, german_business, german_consumer, american)] == [
        Decimal("21.00"),
        Decimal("0.00"),
        Decimal("21.00"),
        Decimal("0.00"),
    ]


def test_exempt_lines_need_a_reason_and_only_they_take_one(runtime: Runtime) -> None:
    user_id = customer(runtime)
    exempt = line_from_text("Course", "1", "450", "exempt")
    with pytest.raises(InvalidParameters, match="exemption_reason: is required"):
        issue(runtime, user_id, [SERVER, exempt])
    with pytest.raises(InvalidParameters, match="only for invoices with lines exempt"):
        issue(runtime, user_id, [SERVER], exemption_reason="Education")
    view = issue(runtime, user_id, [SERVER, exempt], exemption_reason="Education")
    assert (view.amount_excl_vat, view.vat) == (Decimal("550.00"), Decimal("21.00"))


def test_another_currency_needs_its_exchange_rate(runtime: Runtime) -> None:
    user_id = customer(runtime)
    with pytest.raises(InvalidParameters, match="exchange_rate: is required for an invoice in USD"):
        issue(runtime, user_id, [SERVER], currency="USD")
    with pytest.raises(InvalidParameters, match="exchange_rate: is only for invoices"):
        issue(runtime, user_id, [SERVER], exchange_rate=Decimal("1.1"))
    with pytest.raises(InvalidParameters, match="not an ISO 4217"):
        issue(runtime, user_id, [SERVER], currency="EURO")
    usd = issue(runtime, user_id, [SERVER], currency="usd", exchange_rate=Decimal("0.9125"))
    assert (usd.currency, usd.vat) == ("USD", Decimal("21.00"))
    with runtime.transaction(write=False) as (session, _):
        row = session.get(Invoice, usd.id)
        assert row is not None
        # BT-111: 21.00 USD of VAT at 0.9125 is 19.16 EUR (19.1625, half up).
        assert (row.tax_currency, row.tax_currency_vat_cents) == ("EUR", 1916)


def test_jpy_invoices_have_whole_yen(runtime: Runtime) -> None:
    user_id = customer(runtime)
    view = issue(
        runtime,
        user_id,
        [line_from_text("Colocation", "3", "333.33", "10")],
        currency="JPY",
        exchange_rate=Decimal("0.0061"),
    )
    assert (view.amount_excl_vat, view.vat, view.amount_net) == (
        Decimal("1000"),
        Decimal("100"),
        Decimal("1100"),
    )
    with pytest.raises(InvalidParameters, match="more than 0 decimals for JPY"):
        pay(runtime, view.id, "10.5")


def test_payments_settle_an_invoice_once_they_cover_it(runtime: Runtime) -> None:
    invoice = make_invoice(runtime, customer(runtime), created_on=DAY, amount_cents=10000)
    assert invoice.amount_net == Decimal("121.00")
    part = pay(runtime, invoice.id, "21.00", method="SEPA", reference="R1")
    assert (part.status, part.amount_due) == ("unpaid", Decimal("100.00"))
    with pytest.raises(InvalidParameters, match=r"more than the 100\.00 EUR still due"):
        pay(runtime, invoice.id, "100.01")
    with pytest.raises(InvalidParameters, match="more than zero"):
        pay(runtime, invoice.id, "0")
    with pytest.raises(InvalidParameters, match="before it was created"):
        pay(runtime, invoice.id, "1", paid_on=date(2026, 1, 1))
    rest = pay(runtime, invoice.id, "100.00", paid_on=date(2026, 11, 9))
    assert (rest.status, rest.paid_on, rest.amount_due) == ("paid", date(2026, 11, 9), 0)
    kinds = [e.type for e in recorded_events(runtime) if e.subject_id == invoice.id]
    assert kinds[-3:] == ["payment.recorded", "payment.recorded", "invoice.paid"]
    (first, _) = [e for e in recorded_events(runtime) if e.type == "payment.recorded"]
    assert (first.payload["amount"], first.payload["amountDue"], first.payload["reference"]) == (
        "21.00",
        "100.00",
        "R1",
    )


def test_mark_paid_pays_the_rest_and_keeps_its_date_after(runtime: Runtime) -> None:
    invoice = make_invoice(runtime, customer(runtime), created_on=DAY, amount_cents=10000)
    pay(runtime, invoice.id, "21.00")
    with system_work(runtime) as work:
        paid = InvoiceService(work).mark_paid(invoice.id, paid_on=date(2026, 11, 5))
    assert (paid.amount_paid, paid.paid_on) == (Decimal("121.00"), date(2026, 11, 5))
    with system_work(runtime) as work:
        again = InvoiceService(work).mark_paid(invoice.id, paid_on=date(2026, 11, 8))
    assert again.paid_on == date(2026, 11, 5)


def test_a_whole_credit_note_settles_its_invoice(runtime: Runtime) -> None:
    invoice = make_invoice(runtime, customer(runtime), created_on=DAY, amount_cents=10000)
    note = credit_invoice(runtime, invoice.id, created_on=DAY, reason="Cancelled")
    assert (note.kind, note.corrects_id, note.amount_net, note.status) == (
        "credit_note",
        invoice.id,
        Decimal("121.00"),
        "paid",
    )
    assert note.description == "Cancelled"
    with runtime.transaction(write=False) as (session, _):
        settled = details_of(session, invoice.id)
    assert (settled.view.paid_on, settled.view.amount_credited) == (DAY, Decimal("121.00"))
    assert list(settled.credit_note_ids) == [note.id]
    with pytest.raises(LedgerdeskError, match="credited already"):
        credit_invoice(runtime, invoice.id, created_on=DAY)
    with pytest.raises(InvalidParameters, match="is a credit note"):
        credit_invoice(runtime, note.id, created_on=DAY)
    with pytest.raises(InvalidParameters, match="nothing to pay"):
        pay(runtime, note.id, "1")


def test_a_credit_note_never_credits_more_than_was_invoiced(runtime: Runtime) -> None:
    user_id = customer(runtime)
    invoice = issue(
        runtime,
        user_id,
        [line_from_text("Server", "1", "100", "21"), line_from_text("Domain", "1", "10", "9")],
    )
    with pytest.raises(InvalidParameters, match="no line at that VAT rate"):
        credit_invoice(
            runtime, invoice.id, created_on=DAY, lines=[line_from_text("X", "1", "1", "6")]
        )
    with pytest.raises(InvalidParameters, match=r"only 10\.00 of .* at that rate is left"):
        credit_invoice(
            runtime, invoice.id, created_on=DAY, lines=[line_from_text("X", "2", "5.01", "9")]
        )
    credit_invoice(
        runtime, invoice.id, created_on=DAY, lines=[line_from_text("Outage", "1", "60", "21")]
    )
    with pytest.raises(InvalidParameters, match=r"only 40\.00 of .* at that rate is left"):
        credit_invoice(
            runtime, invoice.id, created_on=DAY, lines=[line_from_text("More", "1", "41", "21")]
        )
    with pytest.raises(InvalidParameters, match="cannot be older than its invoice"):
        credit_invoice(runtime, invoice.id, created_on=date(2026, 1, 1), lines=[SERVER])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal(80), places=2),
            st.sampled_from(["21", "9"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_credit_notes_in_any_order_never_exceed_the_invoice(
    runtime: Runtime, credits: list[tuple[Decimal, str]]
) -> None:
    user_id = customer(runtime)
    invoice = issue(
        runtime,
        user_id,
        [line_from_text("Server", "1", "100", "21"), line_from_text("Domain", "2", "20", "9")],
    )
    refused = []
    for amount, rate in credits:
        try:
            credit_invoice(
                runtime,
                invoice.id,
                created_on=DAY,
                lines=[line_from_text("Credit", "1", str(amount), rate)],
            )
        except InvalidParameters as exc:
            refused.append(exc.message)
    assert all("left to credit" in message for message in refused)
    with runtime.transaction(write=False) as (session, _):
        after = details_of(session, invoice.id).view
    assert after.amount_credited <= after.amount_net
    assert after.amount_due == after.amount_net - after.amount_credited
