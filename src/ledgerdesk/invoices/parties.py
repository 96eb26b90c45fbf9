"""The parties of an invoice: the seller (the provider, one row) and the buyer (a
customer's billing details), as an invoice keeps them, and the VAT treatment their
countries and VAT ids decide."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy.orm import Session

from ledgerdesk.accounts.billing import camel, check_details, is_eu
from ledgerdesk.db.models import Seller, User
from ledgerdesk.errors import InvalidState, ParamError, problems_error
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.invoices.money import Currency
from ledgerdesk.invoices.pricing import Treatment

SELLER_ID = 1


@dataclass(frozen=True)
class Party:
    """A seller or a buyer as an invoice names it (EN 16931 BG-4 and BG-7)."""

    name: str
    country: str
    vat_id: str | None = None
    address_line: str | None = None
    city: str | None = None
    postcode: str | None = None
    email: str | None = None
    # The seller's bank account, for payment by credit transfer.
    iban: str | None = None
    bic: str | None = None
    # Where e-invoices reach it (Peppol): "0208:0123456789".
    electronic_address: str | None = None
    # The buyer's customer number at the seller.
    customer_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def of_json(cls, data: dict[str, Any]) -> Party:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class SellerDetails:
    party: Party
    # The currency the seller accounts for VAT in.
    currency: Currency


def treatment(seller: Party, buyer: Party) -> Treatment:
    """How VAT applies between them: an EU seller charges no VAT to a business in
    another member state (reverse charge, the buyer's VAT id says it is a business) nor
    outside the EU (export); otherwise each line's rate applies. A seller outside the
    EU charges its own rates."""
    if not is_eu(seller.country) or buyer.country == seller.country:
        return Treatment.DOMESTIC
    if is_eu(buyer.country):
        return Treatment.REVERSE_CHARGE if buyer.vat_id else Treatment.DOMESTIC
    return Treatment.EXPORT


def buyer_of(user: User) -> Party | None:
    """A customer as an invoice names them; None while they have no billing country."""
    if user.country is None:
        return None
    return Party(
        name=user.legal_name or user.name,
        country=user.country,
        vat_id=user.vat_id,
        address_line=user.address_line,
        city=user.city,
        postcode=user.postcode,
        email=user.billing_email or user.email,
        electronic_address=user.electronic_address,
        customer_id=user.id,
    )


# What `admin seller set` and the console's seller form give, and must give.
SELLER_FIELDS = (
    "name",
    "vat_id",
    "address_line",
    "city",
    "postcode",
    "country",
    "email",
    "iban",
    "bic",
    "electronic_address",
    "currency",
)
REQUIRED = ("name", "vat_id", "address_line", "city", "postcode", "country")


class SellerService:
    """The provider's legal details: set (audited as ``seller.updated``) and read."""

    def __init__(self, work: Work) -> None:
        self.work = work

    def set(self, given: dict[str, str | None], *, default_currency: str) -> SellerDetails:
        """Set the seller's details. Fields left out (None) keep their value; the first
        time, every one of ``REQUIRED`` must be given."""
        session = self.work.session
        row = session.get(Seller, SELLER_ID)
        current = {} if row is None else {n: getattr(row, n) for n in SELLER_FIELDS}
        checked = check_details(
            {k: v for k, v in given.items() if k != "currency"},
            current_country=current.get("country"),
        )
        problems = list(checked.problems)
        values = {**current, **checked.values}
        currency = given.get("currency")
        if currency:
            try:
                values["currency"] = Currency.of(currency).code
            except ValueError as exc:
                problems.append(ParamError("currency", str(exc)))
        values.setdefault("currency", default_currency)
        moved = checked.values.get("country", current.get("country")) != current.get("country")
        if current.get("vat_id") and moved and given.get("vat_id") is None:
            problems.append(ParamError("vat_id", "give it again with the new country"))
        for name in REQUIRED:
            if not values.get(name) and not any(p.property == name for p in problems):
                problems.append(ParamError(name, "is required"))
        if problems:
            raise problems_error(problems)
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if row is None:
            row = Seller(id=SELLER_ID, updated_at=self.work.now, **values)
            session.add(row)
        else:
            for name, value in changed.items():
                setattr(row, name, value)
            row.updated_at = self.work.now
        session.flush()
        if changed:
            self.work.record(
                EventType.SELLER_UPDATED,
                subject_id=SELLER_ID,
                customer_id=None,
                payload={"changed": changed},
            )
        return details_of(row)


def seller_of(session: Session) -> SellerDetails | None:
    row = session.get(Seller, SELLER_ID)
    return None if row is None else details_of(row)


def require_seller(session: Session) -> SellerDetails:
    found = seller_of(session)
    if found is None:
        raise InvalidState(
            "The seller's legal details are not set: set them first "
            "(ledgerdesk admin seller set, or the console's Seller page)."
        )
    return found


def details_of(row: Seller) -> SellerDetails:
    party = Party(
        name=row.name,
        country=row.country,
        vat_id=row.vat_id,
        address_line=row.address_line,
        city=row.city,
        postcode=row.postcode,
        email=row.email,
        iban=row.iban,
        bic=row.bic,
        electronic_address=row.electronic_address,
    )
    return SellerDetails(party, Currency.of(row.currency))


def seller_values(details: SellerDetails) -> dict[str, Any]:
    """The seller's details by field name (``SELLER_FIELDS``), those it has."""
    return {**details.party.as_json(), "currency": details.currency.code}


def seller_layout(details: SellerDetails) -> dict[str, Any]:
    """The seller as JSON lays it out (``admin seller show --json``)."""
    return {camel(name): value for name, value in seller_values(details).items()}
