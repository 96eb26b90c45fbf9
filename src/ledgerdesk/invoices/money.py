"""Exact money: integer cents and hundredths of a percent, Decimal only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_CENTS = 10**13  # 100 billion in any currency is not an invoice but a typo


def parse_amount(text: str) -> int:
    """``"350.00"`` -> 35000 cents; refuses negatives, fractions of cents and nonsense."""
    value = _decimal(text, "amount")
    if value < 0:
        raise ValueError("the amount must not be negative")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError("the amount has more than two decimals")
    if cents > MAX_CENTS:
        raise ValueError("the amount is too large")
    return int(cents)


def parse_percentage(text: str) -> int:
    """``"21"`` -> 2100 hundredths; 0 to 100 with at most two decimals."""
    value = _decimal(text, "VAT percentage")
    hundredths = value * 100
    if hundredths != hundredths.to_integral_value():
        raise ValueError("the VAT percentage has more than two decimals")
    if not 0 <= value <= 100:
        raise ValueError("the VAT percentage must be between 0 and 100")
    return int(hundredths)


def vat_cents(amount_cents: int, vat_hundredths: int) -> int:
    """VAT rounded half up to the cent: amount * perc / 100, with perc in hundredths."""
    if amount_cents < 0 or vat_hundredths < 0:
        raise ValueError("amounts and percentages are never negative")
    # amount_cents * vat_hundredths / 10_000 in cents; adding half the divisor before the
    # floor division rounds halves up, exactly, with no float in sight.
    return (amount_cents * vat_hundredths + 5_000) // 10_000


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def hundredths_to_decimal(hundredths: int) -> Decimal:
    return Decimal(hundredths).scaleb(-2)


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a valid {what}") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a valid {what}")
    return value
