"""Exact money: parsing, VAT rounded half up, wire numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerdesk.invoices.money import parse_amount, parse_percentage, vat_cents
from ledgerdesk.wire.types import wire_number


@pytest.mark.parametrize(
    ("amount_cents", "hundredths", "expected"),
    [
        (35000, 2100, 7350),  # 350.00 at 21% = 73.50
        (1250, 2100, 263),  # 2.625 rounds half up to 2.63
        (1999, 2100, 420),  # 4.1979 -> 4.20
        (1, 5000, 1),  # 0.005 -> 0.01
        (1, 4900, 0),  # 0.0049 -> 0.00
        (10, 550, 1),  # 5.5% of 0.10 = 0.0055 -> 0.01
        (0, 2100, 0),
        (12345, 0, 0),
        (10**13, 10000, 10**13),
    ],
)
def test_vat_is_rounded_half_up_to_the_cent(
    amount_cents: int, hundredths: int, expected: int
) -> None:
    assert vat_cents(amount_cents, hundredths) == expected


@pytest.mark.parametrize(
    ("text", "cents"), [("350.00", 35000), ("350", 35000), ("0.1", 10), ("0", 0), (" 12.34 ", 1234)]
)
def test_amounts_parse_to_cents(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "negative"),
        ("1.234", "two decimals"),
        ("abc", "not a valid"),
        ("NaN", "not a valid"),
        ("Infinity", "not a valid"),
        ("1e20", "too large"),
    ],
)
def test_bad_amounts_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


@pytest.mark.parametrize(
    ("text", "hundredths"), [("21", 2100), ("5.5", 550), ("0", 0), ("100", 10000)]
)
def test_percentages_parse_to_hundredths(text: str, hundredths: int) -> None:
    assert parse_percentage(text) == hundredths


@pytest.mark.parametrize("text", ["-1", "100.01", "21.555", "x"])
def test_bad_percentages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="VAT percentage"):
        parse_percentage(text)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [("423.50", "423.5"), ("21.00", "21"), ("0.07", "0.07"), ("123456789.99", "123456789.99")],
)
def test_money_renders_as_a_number_with_at_most_two_decimals(value: str, rendered: str) -> None:
    assert repr(wire_number(Decimal(value))) == rendered
