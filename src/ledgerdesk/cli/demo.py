"""``ledgerdesk demo``: a newcomer's first command.

It migrates the database, makes sure a demo customer with a few invoices and tickets
exists, gives it a fresh API key (keys are stored hashed, so an old one cannot be shown
again), prints the credentials and ready-to-paste curl commands, and serves.
"""

from __future__ import annotations

import json
import shlex
from datetime import timedelta
from decimal import Decimal

import click

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.cli.support import CliState, pass_state
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import User
from ledgerdesk.db.prepared import session_db
from ledgerdesk.events.work import Work
from ledgerdesk.invoices.parties import SellerService, seller_of
from ledgerdesk.invoices.pricing import LineInput
from ledgerdesk.invoices.service import InvoiceService, invoices_of
from ledgerdesk.serving import run_server
from ledgerdesk.tickets.queries import TicketQueries
from ledgerdesk.tickets.service import TicketReader, TicketService

DEMO_EMAIL = "demo@example.com"
STAFF_EMAIL = "support@example.com"
TRACEROUTE = b"""traceroute to 203.0.113.10, 30 hops max
 1  gw.example.net (198.51.100.1)  0.412 ms
 2  core1.rtm.example.net (198.51.100.9)  1.204 ms
 3  * * *
"""

# The demo's provider and its customer, as their invoices name them.
DEMO_SELLER = {
    "name": "Demo Hosting B.V.",
    "vat_id": "NL854560178B01",
    "address_line": "Keizersgracht 1",
    "city": "Amsterdam",
    "postcode": "1015 CD",
    "country": "NL",
    "iban": "NL91ABNA0417164300",
    "bic": "ABNANL2A",
    "email": "billing@hosting.example",
}
DEMO_BILLING: dict[str, str | None] = {
    "legal_name": "Demo Customer B.V.",
    "address_line": "Oudegracht 2",
    "city": "Utrecht",
    "postcode": "3511 AB",
    "country": "NL",
}
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
    upgrade(state.runtime().engine, currency=state.runtime().settings.currency)
    state.require_current_schema()
    runtime = state.runtime()
    writer = IncomingWriter(runtime.incoming_dir, runtime.settings.max_attachment_bytes, "t")
    writer.write(TRACEROUTE)
    traceroute = writer.finish("traceroute.txt", "text/plain")
    with state.work() as work:
        accounts = AccountService(work)
        reader = accounts.reader
        now = work.now
        today = work.today
        customer = reader.find_user_by_email(DEMO_EMAIL)
        if customer is None:
            customer = accounts.create_user(name="Demo Customer", email=DEMO_EMAIL, staff=False)
        if seller_of(work.session) is None:
            SellerService(work).set(dict(DEMO_SELLER), default_currency=settings.currency)
        if customer.country is None:
            accounts.update_user(customer.id, billing=DEMO_BILLING)
        invoices = InvoiceService(work)
        if not invoices_of(work.session, customer.id):
            for days_ago, title, description, cents, vat, paid in DEMO_INVOICES:
                line = LineInput(title, Decimal(1), Decimal(cents).scaleb(-2), vat)
                created = invoices.issue(
                    customer=customer,
                    lines=[line],
                    title=title,
                    description=description,
                    created_on=today - timedelta(days=days_ago),
                    pay_within_days=30,
                )
                if paid:
                    invoices.mark_paid(created.id, paid_on=created.created_on)
        staff = reader.find_user_by_email(STAFF_EMAIL)
        if staff is None:
            staff = accounts.create_user(
                name="Sam Support", email=STAFF_EMAIL, staff=True, admin=True
            )
        db = session_db(work.session)
        if not TicketReader(TicketQueries(db)).overview(user_id=customer.id, status=None):
            _seed_tickets(work, customer, staff, traceroute)
            work.now = now
        # One-time links to set the web passwords (the old ones, if any, stop working).
        people = PeopleService.of(work)
        links = {
            who.email: people.issue_link(
                who.id, "reset" if who.password_hash else "invite", now=now
            )
            for who in (staff, customer)
        }
        new_key = accounts.create_key(
            user_id=customer.id,
            categories=(),
            ip_ranges=(),
            expires_on=None,
            note="created by ledgerdesk demo",
        )
        user_id = customer.id
    traceroute.discard()
    state.close()

    base = f"http://{host}:{port}"

    def curl(action: str) -> str:
        body = json.dumps({"userId": user_id, "apiKey": new_key.secret, "action": action})
        return (
            f"  curl -s {base}/api/rest/v2/administration "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )

    click.echo(
        "\n".join(
            [
                f"ledgerdesk demo: data in {settings.data_dir}",
                f"  userId: {user_id}",
                f"  apiKey: {new_key.secret}",
                "",
                "List the demo customer's invoices:",
                curl("getInvoiceIds"),
                "",
                "List the demo customer's support tickets:",
                curl("getTicketOverview"),
                "",
                f"API documentation: {base}/docs",
                "",
                f"Staff console: set a password for {STAFF_EMAIL}, then sign in at {base}/signin",
                f"  {base}/password/{links[STAFF_EMAIL]}",
                f"Customer portal: set a password for {DEMO_EMAIL} the same way",
                f"  {base}/password/{links[DEMO_EMAIL]}",
            ]
        )
    )
    if not no_serve:
        run_server(settings, environment=state.overrides, host=host, port=port)


def _seed_tickets(work: Work, customer: User, staff: User, traceroute: IncomingFile) -> None:
    """Two tickets with a backdated story (each step at its own time in the past)."""
    tickets = TicketService(work)
    now = work.now
    work.now = now - 5 * 86400
    closed = tickets.create(
        customer_id=customer.id,
        title="Request for reverse DNS on 203.0.113.10",
        content="Please set the PTR record of 203.0.113.10 to mail.example.com.",
        reference="",
        priority=1,
        files=[],
    )
    work.now = now - 4 * 86400
    tickets.reply(
        closed.id,
        author=staff,
        content="Done: 203.0.113.10 now resolves to mail.example.com.",
        files=[],
    )
    tickets.close(closed.id, user_id=customer.id)
    work.now = now - 3600
    urgent = tickets.create(
        customer_id=customer.id,
        title="Server unreachable since this morning",
        content="Our server in Rotterdam stopped answering at 07:12 UTC.",
        reference="INC-2026-0042",
        priority=4,
        files=[],
    )
    work.now = now - 1800
    tickets.reply(
        urgent.id,
        author=staff,
        content="We see packet loss at our core router and are on it; traceroute attached.",
        files=[traceroute],
    )
