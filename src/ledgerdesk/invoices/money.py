"""Exact money: integer hundredths of a currency's unit ("cents") and hundredths of a
percent, Decimal only at the edges; ISO 4217 currencies with their minor units.

Every amount is kept in hundredths whatever the currency, because EN 16931 allows at most
two decimals in any amount of an invoice (BR-DEC-09 to BR-DEC-28): a currency with fewer
minor units rounds to whole steps of them (JPY: 100 hundredths, one yen), one with more
(BHD, three) rounds to hundredths like the euro.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

import iso4217

MAX_CENTS = 10**13  # 100 billion in any currency is not an invoice but a typo
# A quantity or a unit price: at most this many decimals (a price per GB may be 0.0042).
QUANTITY_DECIMALS = 4
PRICE_DECIMALS = 4
MAX_QUANTITY = Decimal(10**9)
_STEPS = {decimals: Decimal(1).scaleb(-decimals) for decimals in range(3)}


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency: its code and its minor units (JPY 0, EUR 2, BHD 3)."""

    code: str
    minor_units: int

    @staticmethod
    @lru_cache(maxsize=512)
    def of(code: str) -> Currency:
        """The currency of an ISO 4217 code; ValueError for anything else (and for the
        codes that are no money: gold, testing, "no currency")."""
        text = code.strip().upper()
        try:
            found = iso4217.Currency(text)
        except ValueError:
            raise ValueError(f"{code!r} is not an ISO 4217 currency code") from None
        if found.exponent is None:
            raise ValueError(f"{text} ({found.currency_name}) is not a currency to invoice in")
        return Currency(text, int(found.exponent))

    @property
    def step(self) -> int:
        """The smallest amount an invoice in this currency carries, in hundredths."""
        return int(10 ** (2 - min(self.minor_units, 2)))

    @property
    def decimals(self) -> int:
        """Decimals an amount is written with (at most two, see the module's note)."""
        return min(self.minor_units, 2)

    def round(self, hundredths: Decimal) -> int:
        """An exact amount in hundredths, rounded half up to this currency's step."""
        steps = (hundredths / self.step).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(steps) * self.step

    def amount(self, cents: int) -> Decimal:
        """Hundredths as the decimal an invoice writes: ``1250`` EUR -> ``12.50``,
        ``120000`` JPY -> ``1200``."""
        value = Decimal(cents).scaleb(-2)  # two decimals already: most currencies' own
        return value if self.decimals == 2 else value.quantize(_STEPS[self.decimals])

    def parse(self, text: str, what: str = "amount") -> int:
        """An amount typed in this currency, in hundredths: never negative, never finer
        than the currency's step."""
        return self.cents(_decimal(text, what), what)

    def cents(self, value: Decimal, what: str = "amount") -> int:
        """An exact amount in hundredths (see ``parse``); ValueError says what is wrong."""
        if value < 0:
            raise ValueError(f"the {what} must not be negative")
        cents = value * 100
        if cents != cents.to_integral_value() or int(cents) % self.step:
            raise ValueError(f"the {what} has more than {self.decimals} decimals for {self.code}")
        if cents > MAX_CENTS:
            raise ValueError(f"the {what} is too large")
        return int(cents)


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


def parse_quantity(text: str) -> Decimal:
    """A line's quantity: more than zero, at most four decimals."""
    value = _decimal(text, "quantity")
    if value <= 0:
        raise ValueError("the quantity must be more than zero")
    if value > MAX_QUANTITY:
        raise ValueError("the quantity is too large")
    return _at_most(value, QUANTITY_DECIMALS, "quantity")


def parse_price(text: str) -> Decimal:
    """A line's unit price: not negative, at most four decimals (finer than a cent is
    allowed for a price, never for an amount)."""
    value = _decimal(text, "unit price")
    if value < 0:
        raise ValueError("the unit price must not be negative")
    if value * 100 > MAX_CENTS:
        raise ValueError("the unit price is too large")
    return _at_most(value, PRICE_DECIMALS, "unit price")


def parse_rate(text: str) -> Decimal:
    """An exchange rate: units of the seller's currency for one of the invoice's; more
    than zero, at most six decimals."""
    value = _decimal(text, "exchange rate")
    if value <= 0:
        raise ValueError("the exchange rate must be more than zero")
    if value > 10**9:
        raise ValueError("the exchange rate is too large")
    return _at_most(value, 6, "exchange rate")


def vat_cents(amount_cents: int, vat_hundredths: int) -> int:
    """VAT rounded half up to the cent: amount * perc / 100, with perc in hundredths."""
    if amount_cents < 0 or vat_hundredths < 0:
        raise ValueError("amounts and percentages are never negative")
    # amount_cents * vat_hundredths / 10_000 in cents; adding half the divisor before the
    # floor division rounds halves up, exactly, with no float in sight.
    return (amount_cents * vat_hundredths + 5_000) // 10_000


def hundredths_to_decimal(hundredths: int) -> Decimal:
    return Decimal(hundredths).scaleb(-2)


def plain(value: Decimal) -> str:
    """A decimal as a document writes it: no exponent, no trailing zeros past the point
    (``2.5000`` -> ``2.5``, ``1E+2`` -> ``100``)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _at_most(value: Decimal, decimals: int, what: str) -> Decimal:
    if value != value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP):
        raise ValueError(f"the {what} has more than {decimals} decimals")
    return value


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a valid {what}") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a valid {what}")
    return value
