"""A set of invoices and credit notes covering what ledgerdesk issues: one line, many
lines at three VAT rates, reverse charge, export, exempt with a reason, USD (with the
VAT in EUR too), JPY, a partial and a full credit note, and a Peppol invoice.

Used by the tests, and run as a script it writes every document of the set to a folder
(``python -m tests.invoices.samples OUT``) for CI to check against the official EN 16931
rules and for the README's pictures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.demo import DEMO_SELLER
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.invoices.documents import FORMATS, render
from ledgerdesk.invoices.parties import SellerService
from ledgerdesk.invoices.pricing import LineInput
from ledgerdesk.invoices.service import InvoiceService
from ledgerdesk.invoices.stored import stored_invoice
from ledgerdesk.runtime import Runtime

ISSUED = date(2026, 11, 30)

# The demo's seller, reachable on Peppol.
SELLER: dict[str, str | None] = {**DEMO_SELLER, "electronic_address": "0106:12345678"}

# name -> billing details of the customer
CUSTOMERS: dict[str, dict[str, str | None]] = {
    "dutch": {
        "legal_name": "Jansen Webdesign",
        "address_line": "Oudegracht 2",
        "city": "Utrecht",
        "postcode": "3511 AB",
        "country": "NL",
        "billing_email": "jan@jansen.example",
    },
    "german": {
        "legal_name": "Acme GmbH",
        "vat_id": "DE136695976",
        "address_line": "Hauptstr. 5",
        "city": "Berlin",
        "postcode": "10115",
        "country": "DE",
    },
    "american": {
        "legal_name": "Initech Inc.",
        "address_line": "4120 Freidrich Lane",
        "city": "Austin",
        "postcode": "78744",
        "country": "US",
    },
    "japanese": {
        "legal_name": "Kaisha K.K.",
        "address_line": "1-1 Marunouchi",
        "city": "Tokyo",
        "postcode": "100-0005",
        "country": "JP",
    },
    "belgian": {
        "legal_name": "Peppol BV",
        "vat_id": "BE0403170701",
        "address_line": "Rue de la Loi 16",
        "city": "Brussels",
        "postcode": "1000",
        "country": "BE",
        "electronic_address": "0208:0403170701",
    },
}


def line(description: str, quantity: str, price: str, vat: str | None) -> LineInput:
    rate = None if vat is None else int(Decimal(vat) * 100)
    return LineInput(description, Decimal(quantity), Decimal(price), rate)


SERVER = line("Dedicated server R410, December", "1", "89.00", "21")
LONG = [
    SERVER,
    line("Extra IPv4 address", "4", "1.50", "21"),
    line("Domain registration example.nl, 1 year", "1", "8.00", "9"),
    line("Backup storage, per GB", "250", "0.0042", "21"),
    line("Setup fee", "1", "49.00", "21"),
    line("Remote hands, per 15 minutes", "3", "17.50", "21"),
    line("Printed manual", "1", "12.00", "0"),
    *[line(f"Virtual server vps-{n:02d}, December", "1", "9.95", "21") for n in range(1, 16)],
]


@dataclass(frozen=True)
class Sample:
    name: str
    invoice_id: int


def build(runtime: Runtime) -> list[Sample]:
    """Issue the set in ``runtime``'s (migrated, empty) database."""
    samples: list[Sample] = []
    with runtime.work(Actor.SYSTEM, Origin("system")) as work:
        SellerService(work).set(dict(SELLER), default_currency="EUR")
        accounts = AccountService(work)
        customers = {}
        for name, billing in CUSTOMERS.items():
            user = accounts.create_user(name=str(billing["legal_name"]), email=None, staff=False)
            accounts.update_user(user.id, billing=billing)
            customers[name] = user
        service = InvoiceService(work)

        def issue(name: str, customer: str, lines: list[LineInput], **more: object) -> int:
            view = service.issue(
                customer=customers[customer],
                lines=lines,
                created_on=ISSUED,
                pay_within_days=14,
                **more,  # type: ignore[arg-type]
            )
            samples.append(Sample(name, view.id))
            return view.id

        issue("one-line", "dutch", [SERVER])
        long = issue("three-rates", "dutch", LONG, description="Your services in December 2026.")
        issue(
            "exempt",
            "dutch",
            [SERVER, line("Linux administration course, 1 day", "1", "450.00", None)],
            exemption_reason="Education, Article 132(1)(i) Directive 2006/112/EC",
        )
        reverse = issue("reverse-charge", "german", [SERVER, line("Extra IPv4", "8", "1.50", "21")])
        issue(
            "export-usd",
            "american",
            [line("Dedicated server R640, December", "2", "149.00", "21")],
            currency="USD",
            exchange_rate=Decimal("0.9125"),
        )
        issue(
            "jpy",
            "japanese",
            [line("Colocation, 1U, December", "1", "18000", "21")],
            currency="JPY",
            exchange_rate=Decimal("0.0061"),
        )
        issue("peppol", "belgian", [SERVER])
        partial = service.credit(
            long,
            lines=[line("Dedicated server R410, 3 days of outage", "3", "2.90", "21")],
            reason="Outage from 3 to 5 December",
            created_on=ISSUED,
        )
        samples.append(Sample("credit-partial", partial.id))
        full = service.credit(reverse, lines=None, reason="Cancelled order", created_on=ISSUED)
        samples.append(Sample("credit-full", full.id))
    return samples


def write_all(runtime: Runtime, samples: list[Sample], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with runtime.transaction(write=False) as (session, _):
        for sample in samples:
            stored = stored_invoice(session, sample.invoice_id)
            for kind in FORMATS:
                document = render(stored, kind)
                suffix = {"pdf": ".pdf", "ubl": ".ubl.xml", "cii": ".cii.xml"}[kind]
                path = folder / f"{sample.name}{suffix}"
                path.write_bytes(document.content)
                written.append(path)
    return written


def main(folder: Path) -> None:
    data = folder / "data"
    settings = Settings.from_env({"LEDGERDESK_DATA_DIR": str(data)})
    runtime = Runtime.build(settings)
    try:
        upgrade(runtime.engine)
        for path in write_all(runtime, build(runtime), folder):
            print(path)
    finally:
        runtime.engine.dispose()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
