"""A party's legal details as an invoice names them: legal name, VAT id, postal address,
country, billing email, bank account. Checked with the libraries made for it:
python-stdnum for VAT ids, IBANs and BICs, pycountry for ISO 3166 countries.

Used for a customer's billing details (``AccountService.update_user``) and for the
seller's (``invoices.parties``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import pycountry
from stdnum import bic, get_cc_module, iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

from ledgerdesk.errors import ParamError

EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# Greece writes its VAT ids with EL, not its ISO code GR (BR-CO-09 allows it).
_VAT_PREFIX = {"GR": "EL"}
EU_MEMBER_STATES = frozenset(code.upper() for code in eu_vat.MEMBER_STATES if code != "xi")

# The longest each text field may be.
LIMITS = {
    "legal_name": 200,
    "name": 200,
    "address_line": 200,
    "city": 100,
    "postcode": 20,
    "email": 320,
    "billing_email": 320,
}

# A customer's billing details, as columns of users and options of `admin user update`.
BILLING_FIELDS = (
    "legal_name",
    "vat_id",
    "address_line",
    "city",
    "postcode",
    "country",
    "billing_email",
    "electronic_address",
)


def camel(name: str) -> str:
    """A field's name as JSON writes it: ``vat_id`` -> ``vatId``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def country_code(text: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper case; ValueError for anything else."""
    code = text.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("is not an ISO 3166 country code (two letters, like NL or DE)")
    return code


def country_name(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code)
    return code if found is None else str(found.name)


def is_eu(country: str | None) -> bool:
    return country is not None and country in EU_MEMBER_STATES


def vat_id(text: str, country: str | None) -> str:
    """A VAT id, compact and with its country prefix (``NL 8545.60.178 B01`` ->
    ``NL854560178B01``), checked by python-stdnum for the party's country."""
    compact = re.sub(r"[\s.\-/]", "", text).upper()
    if country is None:
        raise ValueError("needs the country of the same party")
    prefix = _VAT_PREFIX.get(country, country)
    if not compact.startswith(prefix):
        if compact[:2].isalpha():
            raise ValueError(f"must start with {prefix}, the prefix of the party's country")
        compact = prefix + compact
    try:
        if country in EU_MEMBER_STATES:
            return str(eu_vat.validate(compact))
        module = get_cc_module(country.lower(), "vat")
        if module is not None and not module.is_valid(compact):
            module.validate(compact[len(prefix) :])  # a module that knows no prefix
    except ValidationError as exc:
        raise ValueError(f"is not a valid VAT id for {country}: {exc}") from None
    if not 4 <= len(compact) <= 20 or not compact.isalnum():
        raise ValueError("is not a VAT id")
    return compact


def iban_number(text: str) -> str:
    try:
        return str(iban.validate(text))
    except ValidationError as exc:
        raise ValueError(f"is not a valid IBAN: {exc}") from None


def bic_code(text: str) -> str:
    try:
        return str(bic.validate(text))
    except ValidationError as exc:
        raise ValueError(f"is not a valid BIC: {exc}") from None


_EAS = re.compile(r"(?:\d{4}|EM):[^\s:][^\s]{0,99}")


def electronic_address(text: str) -> str:
    """An e-invoicing address: an EAS scheme code and an id, ``0208:0123456789``
    (Peppol participant ids are written so)."""
    value = text.strip()
    if not _EAS.fullmatch(value):
        raise ValueError("must be an EAS scheme code and an id, like 0208:0123456789")
    return value


def email_address(text: str) -> str:
    text = text.strip()
    if len(text) > 320 or not EMAIL.fullmatch(text):
        raise ValueError("is not an email address")
    return text


@dataclass(frozen=True)
class Checked:
    """Given values, checked: the cleaned ones (None where the value clears the field)
    and what was wrong, by field name."""

    values: dict[str, str | None]
    problems: list[ParamError]


def check_details(
    given: Mapping[str, str | None], *, current_country: str | None = None
) -> Checked:
    """Check legal details given by name (``None``: not given; ``""``: clear the field).
    The VAT id is checked for the country given, or else the party's ``current_country``."""
    values: dict[str, str | None] = {}
    problems: list[ParamError] = []
    country = current_country
    if given.get("country") is not None:
        country = None

    def take(name: str, check: Callable[[str], str]) -> None:
        nonlocal country
        raw = given.get(name)
        if raw is None:
            return
        if not raw.strip():
            values[name] = None
            return
        try:
            values[name] = check(raw)
        except ValueError as exc:
            problems.append(ParamError(name, str(exc)))
            return
        if name == "country":
            country = values[name]

    take("country", country_code)
    for name, limit in LIMITS.items():
        if "email" not in name:
            take(name, partial(_text, limit=limit))
    for name in ("email", "billing_email"):
        take(name, email_address)
    take("iban", iban_number)
    take("bic", bic_code)
    take("electronic_address", electronic_address)
    if given.get("vat_id") is not None and not any(p.property == "country" for p in problems):
        take("vat_id", lambda raw: vat_id(raw, country))
    return Checked(values, problems)


def _text(raw: str, limit: int) -> str:
    text = " ".join(raw.split())
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    return text
