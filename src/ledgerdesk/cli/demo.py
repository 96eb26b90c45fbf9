"""``ledgerdesk demo``: a newcomer's first command.

It migrates the database, makes sure a demo customer with a few invoices exists, gives
it a fresh API key (keys are stored hashed, so an old one cannot be shown again), prints
the credentials and a ready-to-paste curl command, and serves.
"""

from __future__ import annotations

import json
import shlex
from datetime import timedelta

import click

from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.server import run_server
from ledgerdesk.cli.support import CliState, pass_state
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.invoices.repository import InvoiceRepository
from ledgerdesk.invoices.service import InvoiceService

DEMO_EMAIL = "demo@example.com"

DEMO_INVOICES = (
    # days ago, title, description, cents excl. VAT, VAT hundredths, paid
    (
        25,
        "Dell PowerEdge R410 / EU: Rotterdam",
        "Server Type: Dell PowerEdge R410\nLocation: EU: Rotterdam\nPayment Period: 1 month",
        35000,
        2100,
        True,
    ),
    (12, "Game server hosting / 32 slots", "Game: Counter-Strike 2\nSlots: 32", 1999, 2100, False),
    (2, "Additional IPv4 block /29", "IP Addresses: 8\nLocation: EU: Rotterdam", 1250, 2100, False),
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Set up the demo data and print, but do not serve.")
@pass_state
def demo(state: CliState, host: str, port: int, no_serve: bool) -> None:
    """Set up a demo customer with an API key and invoices, then serve."""
    settings = state.settings()
    upgrade(state.runtime().engine)
    with state.transaction() as (session, runtime):
        accounts = AccountService(AccountRepository(session))
        now = runtime.clock.timestamp()
        today = state.today()
        customer = AccountRepository(session).find_user_by_email(DEMO_EMAIL)
        if customer is None:
            customer = accounts.create_user(
                name="Demo Customer", email=DEMO_EMAIL, staff=False, now=now
            )
        invoices = InvoiceService(InvoiceRepository(session))
        if not invoices.list(customer.id):
            for days_ago, title, description, cents, vat, paid in DEMO_INVOICES:
                created = invoices.create(
                    customer=customer,
                    title=title,
                    description=description,
                    amount_excl_vat_cents=cents,
                    vat_perc_hundredths=vat,
                    created_on=today - timedelta(days=days_ago),
                    pay_within_days=30,
                )
                if paid:
                    invoices.mark_paid(created.id, paid_on=created.created_on)
        new_key = accounts.create_key(
            user_id=customer.id,
            categories=(),
            ip_ranges=(),
            expires_on=None,
            note="created by ledgerdesk demo",
            now=now,
            today=today,
        )
        user_id = customer.id
    state.close()

    base = f"http://{host}:{port}"
    body = json.dumps({"userId": user_id, "apiKey": new_key.secret, "action": "getInvoiceIds"})
    click.echo(
        "\n".join(
            [
                f"ledgerdesk demo: data in {settings.data_dir}",
                f"  userId: {user_id}",
                f"  apiKey: {new_key.secret}",
                "",
                "List the demo customer's invoices:",
                f"  curl -s {base}/api/rest/v2/administration "
                f"-H 'Content-Type: application/json' -d {shlex.quote(body)}",
                "",
                f"API documentation: {base}/docs",
            ]
        )
    )
    if not no_serve:
        run_server(settings, environment=state.overrides, host=host, port=port)
