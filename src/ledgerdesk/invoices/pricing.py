"""An invoice's arithmetic, as EN 16931 does it: lines, their VAT categories, the VAT
breakdown and the totals. Pure functions of the lines, the currency and the tax
treatment; everything else (the database, the documents) takes its numbers from here.

- A line's net amount (BT-131) is quantity x unit price, rounded half up to the
  currency's step.
- The VAT breakdown (BG-23) has one group per VAT category and rate; its taxable amount
  (BT-116) is the sum of its lines' net amounts, its VAT (BT-117) the taxable amount x
  rate / 100, rounded half up (BR-CO-17, BR-S-08, BR-S-09).
- Total without VAT (BT-109) = sum of the lines (BR-CO-10, BR-CO-13, no document-level
  allowances or charges); total VAT (BT-110) = sum of the groups' VAT (BR-CO-14); total
  with VAT (BT-112) = BT-109 + BT-110 (BR-CO-15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ledgerdesk.invoices.money import (
    Currency,
    parse_percentage,
    parse_price,
    parse_quantity,
)

MAX_LINES = 500
MAX_LINE_DESCRIPTION = 1000


class VatCategory(StrEnum):
    """UNCL 5305 codes of the VAT categories an invoice line may have."""

    STANDARD = "S"
    ZERO_RATED = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    EXPORT = "G"

    @property
    def label(self) -> str:
        return _CATEGORY_LABELS[self]


_CATEGORY_LABELS = {
    VatCategory.STANDARD: "Standard rate",
    VatCategory.ZERO_RATED: "Zero rated",
    VatCategory.EXEMPT: "Exempt from VAT",
    VatCategory.REVERSE_CHARGE: "Reverse charge",
    VatCategory.EXPORT: "Export outside the EU",
}


class Treatment(StrEnum):
    """How VAT applies to a whole invoice, decided from the seller and the buyer."""

    DOMESTIC = "domestic"  # each line's own rate (standard, zero, exempt)
    REVERSE_CHARGE = "reverse_charge"  # EU business customer in another member state
    EXPORT = "export"  # a customer outside the EU

    @property
    def category(self) -> VatCategory | None:
        """The category every line takes under this treatment (None: the line's own)."""
        return {
            Treatment.DOMESTIC: None,
            Treatment.REVERSE_CHARGE: VatCategory.REVERSE_CHARGE,
            Treatment.EXPORT: VatCategory.EXPORT,
        }[self]

    @property
    def statement(self) -> str | None:
        """What the invoice must say about its VAT (BT-120 and a note)."""
        return {
            Treatment.DOMESTIC: None,
            Treatment.REVERSE_CHARGE: "Reverse charge: VAT is to be accounted for by the "
            "customer (Article 196, Council Directive 2006/112/EC).",
            Treatment.EXPORT: "Export outside the EU: VAT exempt (Article 146, Council "
            "Directive 2006/112/EC).",
        }[self]


@dataclass(frozen=True)
class LineInput:
    """A line as staff type it. ``rate`` is the VAT rate in hundredths of a percent, or
    None for a line exempt from VAT."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    rate: int | None


EXEMPT = "exempt"


def line_from_text(description: str, quantity: str, unit_price: str, vat: str) -> LineInput:
    """A line as typed: ``"Dedicated server" 1 89.00 21``; the VAT is a percentage
    (``0``: zero rated) or ``exempt``. ValueError says what is wrong."""
    text = " ".join(description.split())
    if not 1 <= len(text) <= MAX_LINE_DESCRIPTION:
        raise ValueError(f"the description must be 1 to {MAX_LINE_DESCRIPTION} characters")
    rate = None if vat.strip().lower() == EXEMPT else parse_percentage(vat)
    return LineInput(text, parse_quantity(quantity), parse_price(unit_price), rate)


@dataclass(frozen=True)
class Line:
    """A priced line: its VAT category and rate as the invoice states them."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    category: VatCategory
    rate: int  # hundredths of a percent
    net_cents: int


@dataclass(frozen=True)
class VatGroup:
    """One row of the VAT breakdown (BG-23)."""

    category: VatCategory
    rate: int
    taxable_cents: int
    vat_cents: int


@dataclass(frozen=True)
class Priced:
    """The lines, the VAT breakdown and the totals of an invoice or a credit note."""

    currency: Currency
    treatment: Treatment
    lines: tuple[Line, ...]
    groups: tuple[VatGroup, ...]
    net_cents: int  # BT-109
    vat_cents: int  # BT-110
    total_cents: int  # BT-112

    @property
    def single_rate(self) -> int:
        """The VAT rate of the protocol's one-rate answer (``vatPerc``): the rate when
        there is one, else the total VAT as a share of the total without it."""
        rates = {group.rate for group in self.groups}
        if len(rates) == 1:
            return rates.pop()
        if self.net_cents == 0:
            return 0
        return (self.vat_cents * 10_000 * 2 + self.net_cents) // (self.net_cents * 2)

    def vat_in(self, accounting: Currency, rate: Decimal) -> int:
        """The total VAT in the seller's accounting currency (BT-111), at ``rate`` units
        of it for one of the invoice's, rounded half up to that currency's step."""
        return accounting.round(Decimal(self.vat_cents) * rate)


def line_net(quantity: Decimal, unit_price: Decimal, currency: Currency) -> int:
    return currency.round(quantity * unit_price * 100)


def price(lines: Sequence[LineInput], currency: Currency, treatment: Treatment) -> Priced:
    """Price ``lines`` as an invoice in ``currency`` under ``treatment``."""
    priced: list[Line] = []
    for given in lines:
        category, rate = _category(given.rate, treatment)
        net = line_net(given.quantity, given.unit_price, currency)
        priced.append(
            Line(given.description, given.quantity, given.unit_price, category, rate, net)
        )
    groups = regroup(priced, currency)
    net = sum(line.net_cents for line in priced)
    vat = sum(group.vat_cents for group in groups)
    return Priced(currency, treatment, tuple(priced), groups, net, vat, net + vat)


def regroup(lines: Sequence[Line], currency: Currency) -> tuple[VatGroup, ...]:
    """The VAT breakdown of priced lines: one group per category and rate, in the order
    of ``VatCategory``, higher rates first."""
    taxable: dict[tuple[VatCategory, int], int] = {}
    for line in lines:
        key = (line.category, line.rate)
        taxable[key] = taxable.get(key, 0) + line.net_cents
    return tuple(
        VatGroup(category, rate, amount, currency.round(Decimal(amount * rate) / 10_000))
        for (category, rate), amount in sorted(taxable.items(), key=_group_order)
    )


def _category(rate: int | None, treatment: Treatment) -> tuple[VatCategory, int]:
    forced = treatment.category
    if forced is not None:
        return forced, 0
    if rate is None:
        return VatCategory.EXEMPT, 0
    return (VatCategory.STANDARD, rate) if rate > 0 else (VatCategory.ZERO_RATED, 0)


def _group_order(item: tuple[tuple[VatCategory, int], int]) -> tuple[int, int]:
    (category, rate), _ = item
    return list(VatCategory).index(category), -rate
