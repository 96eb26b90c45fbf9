"""An invoice's arithmetic against EN 16931's own sums and rounding (BR-CO-10 to
BR-CO-17, BR-S-08/09, BR-DEC), for random lines, quantities, prices, rates and
currencies; and the currencies themselves (ISO 4217 minor units)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerdesk.invoices.money import Currency
from ledgerdesk.invoices.pricing import (
    LineInput,
    Treatment,
    VatCategory,
    line_from_text,
    price,
)

CURRENCIES = ["EUR", "USD", "JPY", "BHD", "CLF", "GBP", "HUF", "KWD"]

quantities = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10_000), places=4)
prices = st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=4)
rates = st.one_of(st.none(), st.sampled_from([0, 500, 600, 900, 1900, 2000, 2100, 2550]))
lines = st.lists(
    st.builds(LineInput, st.just("A line"), quantities, prices, rates), min_size=1, max_size=40
)


@given(lines, st.sampled_from(CURRENCIES), st.sampled_from(list(Treatment)))
def test_totals_obey_the_en16931_sums_and_rounding(
    given_lines: list[LineInput], code: str, treatment: Treatment
) -> None:
    currency = Currency.of(code)
    priced = price(given_lines, currency, treatment)
    step = currency.step
    for given_line, line in zip(given_lines, priced.lines, strict=True):
        # BT-131: quantity x price, rounded half up to the currency's smallest amount.
        exact = given_line.quantity * given_line.unit_price * 100 / step
        assert line.net_cents == int(exact.quantize(Decimal(1), ROUND_HALF_UP)) * step
        assert line.net_cents % step == 0  # BR-DEC-23: never finer than two decimals
    # BR-CO-10 and BR-CO-13 (no document allowances or charges): BT-109 = sum of lines.
    assert priced.net_cents == sum(line.net_cents for line in priced.lines)
    # BR-S-08 and the like: one group per category and rate, its base the sum of its lines.
    for group in priced.groups:
        members = [
            line
            for line in priced.lines
            if (line.category, line.rate) == (group.category, group.rate)
        ]
        assert group.taxable_cents == sum(line.net_cents for line in members)
        # BR-CO-17: VAT = base x rate, rounded (to the currency; within the rule's
        # tolerance of one unit of rounding to two decimals).
        exact_vat = Decimal(group.taxable_cents * group.rate) / 10_000
        two_decimals = exact_vat.quantize(Decimal(1), ROUND_HALF_UP)
        assert abs(group.vat_cents - two_decimals) < 100
        assert group.vat_cents % step == 0
        if group.category is not VatCategory.STANDARD:
            assert (group.rate, group.vat_cents) == (0, 0)
    assert len({(g.category, g.rate) for g in priced.groups}) == len(priced.groups)
    # BR-CO-14 and BR-CO-15.
    assert priced.vat_cents == sum(group.vat_cents for group in priced.groups)
    assert priced.total_cents == priced.net_cents + priced.vat_cents
    # The treatment decides every line's category when it is not domestic.
    if treatment is Treatment.REVERSE_CHARGE:
        assert {line.category for line in priced.lines} == {VatCategory.REVERSE_CHARGE}
    elif treatment is Treatment.EXPORT:
        assert {line.category for line in priced.lines} == {VatCategory.EXPORT}
    else:
        for given_line, line in zip(given_lines, priced.lines, strict=True):
            if given_line.rate is None:
                assert line.category is VatCategory.EXEMPT
            elif given_line.rate == 0:
                assert line.category is VatCategory.ZERO_RATED
            else:
                assert (line.category, line.rate) == (VatCategory.STANDARD, given_line.rate)


def test_three_rates_by_hand() -> None:
    priced = price(
        [
            line_from_text("Server", "1", "89.00", "21"),
            line_from_text("IPv4", "4", "1.50", "21"),
            line_from_text("Domain", "1", "8.00", "9"),
            line_from_text("Course", "1", "100", "exempt"),
        ],
        Currency.of("EUR"),
        Treatment.DOMESTIC,
    )
    assert [(g.category.value, g.rate, g.taxable_cents, g.vat_cents) for g in priced.groups] == [
        ("S", 2100, 9500, 1995),
        ("S", 900, 800, 72),
        ("E", 0, 10000, 0),
    ]
    assert (priced.net_cents, priced.vat_cents, priced.total_cents) == (20300, 2067, 22367)
    # The protocol's one rate of a many-rate invoice: VAT as a share of the net.
    assert priced.single_rate == 1018  # 20.67 / 203.00 = 10.18 %


def test_a_one_rate_invoice_keeps_its_rate() -> None:
    priced = price(
        [line_from_text("Server", "1", "350", "21")], Currency.of("EUR"), Treatment.DOMESTIC
    )
    assert (priced.single_rate, priced.vat_cents) == (2100, 7350)


@pytest.mark.parametrize(
    ("code", "minor_units", "cents", "written"),
    [
        ("EUR", 2, 1250, "12.50"),
        ("jpy", 0, 120000, "1200"),
        ("BHD", 3, 1250, "12.50"),  # amounts of an invoice have at most two decimals
        ("CLF", 4, 1, "0.01"),
    ],
)
def test_currencies_have_their_iso_4217_minor_units(
    code: str, minor_units: int, cents: int, written: str
) -> None:
    currency = Currency.of(code)
    assert currency.minor_units == minor_units
    assert str(currency.amount(cents)) == written


@pytest.mark.parametrize(
    ("code", "needle"),
    [("EURO", "not an ISO 4217"), ("XAU", "not a currency to invoice in"), ("", "not an ISO")],
)
def test_what_is_no_currency_is_refused(code: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Currency.of(code)


def test_an_amount_finer_than_its_currency_is_refused() -> None:
    assert Currency.of("JPY").parse("1200") == 120000
    with pytest.raises(ValueError, match="more than 0 decimals for JPY"):
        Currency.of("JPY").parse("1200.5")
    with pytest.raises(ValueError, match="negative"):
        Currency.of("EUR").parse("-1")


@pytest.mark.parametrize(
    ("vat", "quantity", "price_text", "needle"),
    [
        ("21", "0", "1", "more than zero"),
        ("21", "1.00001", "1", "more than 4 decimals"),
        ("21", "1", "-1", "negative"),
        ("21", "1", "1.00001", "more than 4 decimals"),
        ("101", "1", "1", "between 0 and 100"),
        ("half", "1", "1", "not a valid VAT percentage"),
        ("21", "many", "1", "not a valid quantity"),
    ],
)
def test_a_line_typed_wrong_says_what_is_wrong(
    vat: str, quantity: str, price_text: str, needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        line_from_text("Server", quantity, price_text, vat)


def test_a_line_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        line_from_text("   ", "1", "1", "21")
