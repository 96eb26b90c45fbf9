"""Documents per second for a 20-line invoice, in each format (one process, one core).

    python bench/documents.py [--seconds 5]

Issues one invoice of 20 lines at two VAT rates in a fresh SQLite database, then makes
its UBL, CII and PDF (Factur-X: the layout, the CII embedded, PDF/A-3 metadata) over and
over for ``--seconds`` each, reading the stored invoice from the database every time (as
a download does). Prints documents per second, the mean time of one, and its size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
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


def twenty_lines() -> list[LineInput]:
    lines = [
        LineInput(f"Virtual server vps-{n:02d}, December", Decimal(1), Decimal("9.95"), 2100)
        for n in range(1, 19)
    ]
    lines.append(LineInput("Extra IPv4 address", Decimal(4), Decimal("1.50"), 2100))
    lines.append(LineInput("Domain registration, 1 year", Decimal(1), Decimal("8.00"), 900))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runtime = Runtime.build(Settings.from_env({"LEDGERDESK_DATA_DIR": str(Path(folder))}))
        upgrade(runtime.engine)
        with runtime.work(Actor.SYSTEM, Origin("system")) as work:
            SellerService(work).set(dict(DEMO_SELLER), default_currency="EUR")
            accounts = AccountService(work)
            customer = accounts.create_user(name="Acme B.V.", email=None, staff=False)
            accounts.update_user(customer.id, billing={"country": "NL", "city": "Utrecht"})
            invoice = InvoiceService(work).issue(
                customer=customer,
                lines=twenty_lines(),
                created_on=date(2026, 11, 30),
                pay_within_days=14,
            )
        print(f"{'format':<8}{'documents/s':>14}{'ms each':>10}{'bytes':>10}")
        for kind in FORMATS:
            done, size = 0, 0
            started = time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                with runtime.transaction(write=False) as (session, _):
                    size = len(render(stored_invoice(session, invoice.id), kind).content)
                done += 1
            elapsed = time.perf_counter() - started
            print(f"{kind:<8}{done / elapsed:>14.1f}{1000 * elapsed / done:>10.2f}{size:>10}")
        runtime.engine.dispose()


if __name__ == "__main__":
    main()
