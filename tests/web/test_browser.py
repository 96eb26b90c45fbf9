"""End to end in a real browser: Chromium (Debian's, through Playwright) against a real
ledgerdesk server, on SQLite and on PostgreSQL.

Screenshots of the queue, a ticket and the portal are taken on every run; with
``LEDGERDESK_SCREENSHOTS_DIR=docs/screenshots`` they replace the README's pictures.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pyotp
import pytest
import segno
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from sqlalchemy import create_engine, delete, update

from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.config import Settings
from ledgerdesk.db.models import Base, Reply, Ticket
from ledgerdesk.mail import receiving
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_invoice, make_ticket
from tests.servers import Sink, free_port, smtp_sink, start, stop
from tests.support import Caller, assert_success
from tests.web.conftest import PASSWORD, make_person

pytestmark = pytest.mark.slow  # browser: left out of scripts/test's fast run

CHROMIUM = os.environ.get("LEDGERDESK_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("LEDGERDESK_SCREENSHOTS_DIR")
ENDPOINT = "/api/rest/v2/administration"


def _png() -> bytes:
    picture = io.BytesIO()
    segno.make("rack R12, unit 31", error="m").save(picture, kind="png", scale=6, dark="#17253d")
    return picture.getvalue()


PNG = _png()


@dataclass
class Site:
    url: str
    runtime: Runtime
    screenshots: Path
    mail: Sink

    def api(self, caller: Caller, action: str, **params: object) -> httpx.Response:
        body = caller.body(action, **params)
        return httpx.post(f"{self.url}{ENDPOINT}", json=body, timeout=10)


@pytest.fixture(scope="module")
def site(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A ledgerdesk server on the backend's database, emptied first, for this module."""
    engine = create_engine(migrated_database)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    engine.dispose()
    data = tmp_path_factory.mktemp("browser-data")
    runtime = Runtime.build(Settings(database_url=migrated_database, data_dir=data))
    port = free_port()
    with smtp_sink() as mail:
        env = {
            "LEDGERDESK_DATABASE_URL": migrated_database,
            "LEDGERDESK_DATA_DIR": str(data),
            "LEDGERDESK_RATE_LIMIT": "100000",
            # Mail out (password resets, notifications) to a server of the test's own.
            "LEDGERDESK_SMTP_URL": f"smtp://127.0.0.1:{mail.port}",
            "LEDGERDESK_MAIL_FROM": "Support <support@browser.example>",
            "LEDGERDESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        process = start(["serve", "--port", str(port)], port, env)
        try:
            yield Site(
                f"http://127.0.0.1:{port}", runtime, tmp_path_factory.mktemp("screenshots"), mail
            )
        finally:
            output = stop(process)
            runtime.close()
            assert "Traceback" not in output, output


# Module-scoped: Playwright's synchronous API keeps its event loop marked as running in
# this thread, so it must be stopped before the async tests of other modules run.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if Path(CHROMIUM).exists():
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
    else:
        try:  # Playwright's own Chromium, where `playwright install chromium` could run
            launched = playwright.chromium.launch()
        except Exception:
            pytest.fail(
                f"no Chromium at {CHROMIUM} and none of Playwright's own: "
                "apt-get install chromium (or python -m playwright install chromium), "
                "or set LEDGERDESK_TEST_CHROMIUM",
                pytrace=False,
            )
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 860})
    made.set_default_timeout(15_000)
    yield made
    made.close()


def sign_in(page: Page, site: Site, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{site.url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, site: Site, name: str) -> None:
    path = site.screenshots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if SCREENSHOTS and "sqlite" in site.runtime.settings.database_url:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(SCREENSHOTS) / f"{name}.png")


def test_staff_answer_a_ticket_with_two_files_and_the_customer_reads_it_through_the_api(
    site: Site, context: BrowserContext, tmp_path: Path
) -> None:
    runtime = site.runtime
    make_person(runtime, "Sam Support", "sam@browser.example", staff=True)
    caller = make_customer(runtime, "Northwind Hosting")
    other = make_customer(runtime, "Contoso Games")
    waiting = {}
    for owner, title, priority, hours in (
        (other, "Reverse DNS for 203.0.113.10", 1, 26),
        (caller, "Invoice F26-0000002 has the wrong VAT number", 2, 5),
        (other, "Packet loss towards AMS-IX", 3, 2),
    ):
        waiting[make_ticket(runtime, owner.user_id, title=title, priority=priority)] = hours
    ticket_id = make_ticket(
        runtime,
        caller.user_id,
        title="Server unreachable since 07:12",
        content="Our server in Rotterdam stopped answering at 07:12 UTC. Can you look?",
        priority=4,
    )
    waiting[ticket_id] = 1
    with runtime.engine.begin() as connection:  # as if they came in over the last day
        for waited_id, hours in waiting.items():
            connection.execute(
                update(Ticket)
                .where(Ticket.id == waited_id)
                .values(
                    created_at=Ticket.created_at - hours * 3600,
                    last_updated_at=Ticket.last_updated_at - hours * 3600,
                    customer_said_at=Ticket.customer_said_at - hours * 3600,
                )
            )
            connection.execute(
                update(Reply)
                .where(Reply.ticket_id == waited_id)
                .values(created_at=Reply.created_at - hours * 3600)
            )
    log = tmp_path / "console.log"
    log.write_bytes(b"07:12:01 link down on eth0\n07:12:03 link up\n")
    picture = tmp_path / "rack.png"
    picture.write_bytes(PNG)

    page = context.new_page()
    sign_in(page, site, "sam@browser.example")
    page.wait_for_url(f"{site.url}/console/")
    page.get_by_role("link", name="Tickets", exact=True).click()
    page.wait_for_url("**/console/tickets")
    shot(page, site, "queue")
    page.get_by_role("link", name=re.compile("Server unreachable")).click()
    page.wait_for_url(f"**/console/tickets/{ticket_id}")
    answer = page.get_by_role("form", name="Answer the customer")
    answer.get_by_label("Message").fill(
        "The switch port flapped; we replaced the cable. Logs attached."
    )
    answer.get_by_label("Attachments").set_input_files(str(log))
    # The second file is dropped onto the drop zone, as a person would drag it there.
    page.evaluate(
        """async ([name, bytes]) => {
            const zone = document.querySelector('[data-dropzone]');
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
            zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }""",
        ["rack.png", list(PNG)],
    )
    assert answer.locator("[data-chosen] li").count() == 2
    answer.get_by_role("button", name="Send to the customer").click()
    page.wait_for_url(re.compile(r".*notice=.*"))
    assert page.get_by_role("status").first.inner_text().startswith("Reply sent with 2")
    assert page.locator("img.preview").count() == 1
    shot(page, site, "ticket")

    thread = assert_success(site.api(caller, "getTicket", ticketId=ticket_id))
    reply = thread["replies"][-1]
    assert reply["by"] == "Sam Support"
    assert reply["content"].startswith("The switch port flapped")
    files = {a["name"]: a["attachmentId"] for a in reply["attachments"]}
    assert sorted(files) == ["console.log", "rack.png"]
    download = site.api(
        caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=files["rack.png"]
    )
    assert download.content == PNG


def test_two_agents_take_give_and_park_tickets_by_keyboard(site: Site, browser: Browser) -> None:
    runtime = site.runtime
    make_person(runtime, "Alex Agent", "alex@browser.example", staff=True)
    make_person(runtime, "Bea Backup", "bea@browser.example", staff=True)
    caller = make_customer(runtime, "Fabrikam Cloud")
    backup = make_ticket(runtime, caller.user_id, title="Backups fail since Monday", priority=3)
    certificate = make_ticket(runtime, caller.user_id, title="Renew the TLS certificate")
    alex = browser.new_context(viewport={"width": 1280, "height": 900})
    bea = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = alex.new_page()
        sign_in(page, site, "alex@browser.example")
        page.wait_for_url(f"{site.url}/console/")
        page.goto(f"{site.url}/console/tickets/{backup}")
        page.get_by_role("button", name="Take it").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*notice=.*"))
        expect(page.get_by_role("status").first).to_have_text("The ticket is yours.")
        page.goto(f"{site.url}/console/tickets/{certificate}")
        page.get_by_label("Assign to").select_option(label="Bea Backup")
        page.get_by_role("button", name="Assign", exact=True).click()
        page.wait_for_url(re.compile(r".*notice=.*"))
        page.goto(f"{site.url}/console/tickets/{backup}")
        answer = page.get_by_role("form", name="Answer the customer")
        answer.get_by_label("Message").fill("Which job fails? Please send its log.")
        answer.get_by_label("wait for the customer until").check()
        answer.get_by_label("Wait until").fill("2026-12-24T09:00")
        answer.get_by_role("button", name="Send to the customer").click()
        page.wait_for_url(re.compile(r".*notice=.*"))
        expect(page.get_by_role("status").first).to_have_text(
            "Reply sent; it waits for the customer."
        )
        shot(page, site, "ticket-workflow")
        page.goto(f"{site.url}/console/tickets?turn=ours")
        expect(page.get_by_role("link", name=re.compile("Backups fail"))).to_have_count(0)
        expect(page.get_by_role("link", name=re.compile("Renew the TLS"))).to_have_count(1)

        other = bea.new_page()
        sign_in(other, site, "bea@browser.example")
        other.wait_for_url(f"{site.url}/console/")
        other.goto(f"{site.url}/console/tickets")
        other.get_by_role("link", name="Mine").click()
        expect(other.get_by_role("link", name=re.compile("Renew the TLS"))).to_have_count(1)
        expect(other.get_by_role("link", name=re.compile("Backups fail"))).to_have_count(0)
        shot(other, site, "queue-mine")
    finally:
        alex.close()
        bea.close()


def test_a_customer_creates_a_key_in_the_portal_and_uses_it(
    site: Site, context: BrowserContext
) -> None:
    user_id = make_person(site.runtime, "Demo Customer", "demo@browser.example")
    make_invoice(
        site.runtime, user_id, created_on=site.runtime.day_of(site.runtime.clock.timestamp())
    )
    make_ticket(site.runtime, user_id, title="Please set up a /29 for our VPS")
    page = context.new_page()
    sign_in(page, site, "demo@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    shot(page, site, "portal")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Categories").fill("administration")
    page.get_by_label("Note").fill("billing export")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{20}", secret)
    tickets = assert_success(site.api(Caller(user_id, secret), "getTicketOverview"))["tickets"]
    assert [t["title"] for t in tickets] == ["Please set up a /29 for our VPS"]
    page.reload()
    assert secret not in page.content()


def test_another_customers_ticket_is_a_404_page(site: Site, context: BrowserContext) -> None:
    make_person(site.runtime, "Eve", "eve@browser.example")
    other = make_customer(site.runtime, "Someone Else")
    ticket_id = make_ticket(site.runtime, other.user_id, title="Someone else's outage")
    page = context.new_page()
    sign_in(page, site, "eve@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    response = page.goto(f"{site.url}/account/tickets/{ticket_id}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Someone else" not in page.content()


def test_a_form_sent_without_its_csrf_token_is_refused(site: Site, context: BrowserContext) -> None:
    user_id = make_person(site.runtime, "Carl", "carl@browser.example")
    page = context.new_page()
    sign_in(page, site, "carl@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    page.goto(f"{site.url}/account/keys")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    assert "security token" in page.content()
    keys = httpx.get(f"{site.url}/account/keys", cookies=_cookies(context), timeout=10)
    assert "No API keys yet" in keys.text, user_id


def test_an_internal_note_never_reaches_the_customer(
    site: Site, browser: Browser, context: BrowserContext
) -> None:
    make_person(site.runtime, "Nora Staff", "nora@browser.example", staff=True)
    customer = make_person(site.runtime, "Frank", "frank@browser.example")
    ticket_id = make_ticket(site.runtime, customer, title="Billing question")
    staff = context.new_page()
    sign_in(staff, site, "nora@browser.example")
    staff.wait_for_url(f"{site.url}/console/")
    staff.goto(f"{site.url}/console/tickets/{ticket_id}")
    note = staff.get_by_role("form", name="Internal note")
    note.get_by_label("Message").fill("Frank paid late twice; ask for prepayment.")
    # A file over the limit is refused before it is sent; the form keeps the other one.
    big = site.screenshots / "too-big.bin"
    big.write_bytes(b"x" * (site.runtime.settings.max_attachment_bytes + 1))
    small = site.screenshots / "statement.txt"
    small.write_text("paid 2026-10-03, 2026-11-04")
    note.get_by_label("Attachments").set_input_files([str(big), str(small)])
    expect(note.get_by_text("Not attached")).to_be_visible()
    assert note.locator("[data-chosen] li").count() == 1
    # Sent blank, refused: the page comes back with the note form still a note form.
    note.get_by_label("Message").fill("")
    staff.evaluate("document.querySelector('#f-note-content').removeAttribute('required')")
    note.get_by_role("button", name="Add internal note").click()
    staff.wait_for_load_state()
    note = staff.get_by_role("form", name="Internal note")
    expect(note.get_by_role("alert")).to_contain_text("Message")
    note.get_by_label("Message").fill("Frank paid late twice; ask for prepayment.")
    note.get_by_role("button", name="Add internal note").click()
    staff.wait_for_url(re.compile(r".*notice=.*"))
    expect(staff.get_by_text("Frank paid late twice")).to_be_visible()
    expect(staff.get_by_text("Internal note", exact=True).first).to_be_visible()

    customer_context = browser.new_context()
    try:
        portal = customer_context.new_page()
        sign_in(portal, site, "frank@browser.example")
        portal.wait_for_url(f"{site.url}/account/")
        portal.goto(f"{site.url}/account/tickets/{ticket_id}")
        assert "Billing question" in portal.content()
        assert "paid late" not in portal.content()
    finally:
        customer_context.close()
    from tests.factories import make_key

    _, caller = make_key(site.runtime, customer)
    thread = assert_success(site.api(caller, "getTicket", ticketId=ticket_id))
    assert "paid late" not in str(thread)


def test_sign_in_is_throttled_after_repeated_failures_and_works_by_keyboard(
    site: Site, context: BrowserContext
) -> None:
    make_person(site.runtime, "Gina", "gina@browser.example")
    page = context.new_page()
    page.goto(f"{site.url}/signin")
    for attempt in range(site.runtime.settings.signin_failure_limit):
        page.get_by_label("Email").fill("gina@browser.example")
        page.get_by_label("Password").fill(f"wrong password {attempt}")
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    page.get_by_label("Email").fill("gina@browser.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.get_by_text("Too many tries from your address")).to_be_visible()
    assert "/account" not in page.url
    # A delay, not a lock: a second later the right password works.
    time.sleep(1.1)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/account/")


def test_the_portal_fits_a_phone(site: Site, browser: Browser) -> None:
    user_id = make_person(site.runtime, "Hugo", "hugo@browser.example")
    make_ticket(site.runtime, user_id, title="A rather long ticket title about a server")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = phone.new_page()
        sign_in(page, site, "hugo@browser.example")
        page.wait_for_url(f"{site.url}/account/")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
    finally:
        phone.close()


def _cookies(context: BrowserContext) -> dict[str, str]:
    return {c["name"]: c["value"] for c in context.cookies() if "name" in c and "value" in c}


def test_the_reference_page_renders_and_lists_every_action(
    site: Site, context: BrowserContext
) -> None:
    """/docs showed "Unable to render this definition" (Swagger UI 4 and OpenAPI 3.1)."""
    from ledgerdesk.app import build_registry

    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{site.url}/docs")
    for action in build_registry():
        expect(page.get_by_role("heading", name=action.name, exact=True)).to_be_visible()
        expect(page.get_by_role("link", name=action.name, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="health", exact=True)).to_be_visible()
    page.get_by_role("link", name="getTicketAttachment", exact=True).click()
    section = page.locator("#getTicketAttachment")
    expect(section).to_contain_text('"encoding": "base64"')
    expect(section.get_by_role("cell", name="content", exact=True)).to_be_visible()
    assert errors == []
    shot(page, site, "reference")


# -- pages people tripped over (issue: what people trip over) ---------------------------


def test_the_set_password_field_is_required(site: Site, context: BrowserContext) -> None:
    """A broken attribute (``requiredaria-describedby``) left the field optional."""
    from ledgerdesk.accounts.people import PeopleService
    from tests.web.test_signin import _new_user

    user_id = _new_user(site.runtime, "ivy@browser.example")
    from tests.factories import system_work

    with system_work(site.runtime) as work:
        secret = PeopleService.of(work).issue_link(
            user_id, "invite", now=site.runtime.clock.timestamp()
        )
    page = context.new_page()
    page.goto(f"{site.url}/password/{secret}")
    field = page.get_by_label("New password", exact=True)
    assert field.evaluate("e => e.required") is True
    assert field.get_attribute("aria-describedby") == "h-password"


def test_a_reload_repeats_nothing_and_a_key_is_shown_once(
    site: Site, context: BrowserContext
) -> None:
    make_person(site.runtime, "Jon", "jon@browser.example")
    page = context.new_page()
    sign_in(page, site, "jon@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    page.goto(f"{site.url}/account/keys")
    page.get_by_label("Note").fill("backup box")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url(re.compile(r".*/account/keys\?notice=.*"))
    expect(page.locator("#new-key")).to_be_visible()
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.get_by_role("cell", name=re.compile("backup box"))).to_have_count(1)


def test_a_refused_form_keeps_every_field_and_its_summary_takes_focus(
    site: Site, context: BrowserContext
) -> None:
    make_person(site.runtime, "Kim", "kim@browser.example")
    page = context.new_page()
    sign_in(page, site, "kim@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    page.goto(f"{site.url}/account/keys")
    page.get_by_label("Categories").fill("Bad-Category")
    page.get_by_label("IP ranges").fill("10.0.0.0/99")
    page.get_by_label("Note").fill("kept note")
    page.get_by_role("button", name="Create key").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("2 problems")
    assert page.evaluate("document.activeElement.hasAttribute('data-summary')")
    expect(page.get_by_label("Note")).to_have_value("kept note")
    expect(page.get_by_label("IP ranges")).to_have_value("10.0.0.0/99")
    page.screenshot(path=str(site.screenshots / "refused.png"))


def test_force_close_by_keyboard_needs_a_confirmation(site: Site, context: BrowserContext) -> None:
    """On a just-closed ticket the first button was force-close: Enter force-closed it."""
    make_person(site.runtime, "Lea Staff", "lea@browser.example", staff=True)
    customer = make_person(site.runtime, "Max", "max@browser.example")
    ticket_id = make_ticket(site.runtime, customer, title="Keyboard walk")
    page = context.new_page()
    sign_in(page, site, "lea@browser.example")
    page.wait_for_url(f"{site.url}/console/")
    page.goto(f"{site.url}/console/tickets/{ticket_id}")
    page.get_by_role("button", name="Close", exact=True).click()
    page.wait_for_url(re.compile(r".*notice=.*"))
    # Walking on from Reopen, Enter reaches force-close only as a question.
    page.get_by_role("button", name="Reopen", exact=True).focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("Force-close ticket"))).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    thread = site.runtime.transaction(write=False)
    with thread as (session, _):
        assert session.get(Ticket, ticket_id).status == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("width", [1024, 1280])
def test_mark_paid_buttons_are_in_view_beside_the_issue_form(
    site: Site, browser: Browser, width: int
) -> None:
    make_person(site.runtime, "Ned Staff", f"ned{width}@browser.example", staff=True)
    customer = make_person(site.runtime, "Ora", f"ora{width}@browser.example")
    make_invoice(site.runtime, customer, created_on=date(2026, 11, 1))
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, site, f"ned{width}@browser.example")
        page.wait_for_url(f"{site.url}/console/")
        page.goto(f"{site.url}/console/invoices")
        button = page.get_by_role("link", name="Mark paid…").first
        box = button.bounding_box()
        form = page.locator("#issue").bounding_box()
        assert box is not None
        assert form is not None
        assert box["x"] + box["width"] <= width
        overlaps = (
            box["x"] < form["x"] + form["width"]
            and form["x"] < box["x"] + box["width"]
            and box["y"] < form["y"] + form["height"]
            and form["y"] < box["y"] + box["height"]
        )
        assert not overlaps
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        expect(page.get_by_text(re.compile(r"\d[\d,]*\.\d\d EUR")).first).to_be_visible()
    finally:
        context.close()


def test_phone_tables_keep_their_column_names_and_right_to_left_stays_isolated(
    site: Site, browser: Browser
) -> None:
    user_id = make_person(site.runtime, "שרה כהן", "sara@browser.example")
    make_ticket(site.runtime, user_id, title="השרת לא עונה 502")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = phone.new_page()
        sign_in(page, site, "sara@browser.example")
        page.wait_for_url(f"{site.url}/account/")
        cell = page.locator("table.list td[data-label='Status']").first
        expect(cell).to_be_visible()
        label = cell.evaluate("e => getComputedStyle(e, '::before').content")
        assert "Status" in label
        title = page.locator("table.list bdi", has_text="השרת").first
        expect(title).to_be_visible()
        expect(page.locator("h1 bdi")).to_have_text("שרה כהן")
    finally:
        phone.close()


def test_fields_show_a_focus_ring_date_inputs_too(site: Site, context: BrowserContext) -> None:
    make_person(site.runtime, "Pia", "pia@browser.example")
    page = context.new_page()
    sign_in(page, site, "pia@browser.example")
    page.wait_for_url(f"{site.url}/account/")
    page.goto(f"{site.url}/account/keys")
    date_field = page.get_by_label("Expires after")
    date_field.focus()
    style = date_field.evaluate(
        "e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineColor]; }"
    )
    assert style[0] == "solid"
    assert style[1] in ("rgb(11, 61, 145)",)  # 10.6:1 against white


def set_password(page: Page, site: Site, link: str, email: str, password: str) -> None:
    """A password set through a one-time link, then signed in with it (if the page that
    follows asks for it)."""
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(re.compile(r".*/(signin|account/|console/).*"))
    if "/signin" in page.url:
        sign_in(page, site, email, password)


def two_agents(site: Site, browser: Browser, tag: str) -> tuple[BrowserContext, BrowserContext]:
    """Two staff members signed in, each in a browser of their own."""
    contexts = []
    for name in ("Alex", "Bea"):
        email = f"{name.lower()}-{tag}@browser.example"
        make_person(site.runtime, f"{name} {tag.capitalize()}", email, staff=True, admin=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, email)
        page.wait_for_url(f"{site.url}/console/")
        contexts.append(context)
    return contexts[0], contexts[1]


def test_two_agents_see_changes_live_and_each_other_on_a_ticket(
    site: Site, browser: Browser
) -> None:
    caller = make_customer(site.runtime, "Contoso Racks")
    alex, bea = two_agents(site, browser, "live")
    try:
        queue = alex.pages[0]
        queue.goto(f"{site.url}/console/tickets")
        queue.evaluate("window.notReloaded = true")
        created = site.api(
            caller, "createTicket", title="Switch port flapping", content="Port 12 flaps.",
            priorityId=3,
        )  # fmt: skip
        ticket_id = assert_success(created)["ticketId"]
        # The queue shows it without a reload (the event log moved).
        expect(queue.get_by_role("link", name=re.compile("Switch port flapping"))).to_be_visible(
            timeout=15_000
        )
        assert queue.evaluate("window.notReloaded") is True
        # Its service-level target: when the first answer falls due.
        expect(queue.locator(".queue tbody tr", has_text="Switch port flapping")).to_contain_text(
            re.compile(r"\bin \d")
        )

        page = alex.new_page()
        page.goto(f"{site.url}/console/tickets/{ticket_id}")
        page.evaluate("window.notReloaded = true")
        other = bea.pages[0]
        other.goto(f"{site.url}/console/tickets/{ticket_id}")
        other.get_by_role("form", name="Answer the customer").get_by_label("Message").type(
            "We replaced the optic on port 12."
        )
        # Alex sees Bea on the ticket, writing a reply (the collision warning).
        expect(page.locator("[data-presence]")).to_have_text(
            "Also here: Bea Live (writing a reply)", timeout=15_000
        )
        shot(page, site, "ticket-live")
        other.get_by_role("button", name="Send to the customer").click()
        other.wait_for_url(re.compile(r".*notice=.*"))
        # Bea's answer appears in Alex's thread without a reload.
        expect(page.locator(".thread")).to_contain_text(
            "We replaced the optic on port 12.", timeout=15_000
        )
        assert page.evaluate("window.notReloaded") is True
    finally:
        alex.close()
        bea.close()


def test_one_search_box_finds_by_customer_number_and_words(site: Site, browser: Browser) -> None:
    zoe = make_customer(site.runtime, "Zoë Ådler")
    other = make_customer(site.runtime, "Wide World Importers")
    wanted = make_ticket(site.runtime, zoe.user_id, title="Reverse DNS for 192.0.2.7")
    make_ticket(site.runtime, other.user_id, title="Rack power", content="The PDU in R7 trips.")
    alex, bea = two_agents(site, browser, "search")
    try:
        page = alex.pages[0]
        box = page.get_by_label("Search every ticket")
        box.fill("zoe adler")
        box.press("Enter")
        expect(page.get_by_role("link", name=re.compile("Reverse DNS"))).to_have_count(1)
        expect(page.get_by_role("link", name=re.compile("Rack power"))).to_have_count(0)
        expect(page.get_by_label("Sort")).to_have_value("best")
        shot(page, site, "search")
        with site.runtime.transaction(write=False) as (session, _):
            code = session.get(Ticket, wanted).code  # type: ignore[union-attr]
        box = page.get_by_label("Search every ticket")
        box.fill(f"#{code}")
        box.press("Enter")
        expect(page.locator(".queue tbody tr").first).to_contain_text("Reverse DNS")
        box = page.get_by_label("Search every ticket")
        box.fill("pdu trips")
        box.press("Enter")
        expect(page.get_by_role("link", name=re.compile("Rack power"))).to_have_count(1)
        box = page.get_by_label("Search every ticket")
        box.fill("nothing like this")
        box.press("Enter")
        expect(page.get_by_text("No ticket holds every word of")).to_be_visible()
    finally:
        alex.close()
        bea.close()


def test_saved_replies_merging_and_bulk_tagging_by_two_agents(site: Site, browser: Browser) -> None:
    caller = make_customer(site.runtime, "Tailspin Hosting")
    first = make_ticket(site.runtime, caller.user_id, title="Backup job 1 fails")
    second = make_ticket(site.runtime, caller.user_id, title="Backup job 2 fails too")
    third = make_ticket(site.runtime, caller.user_id, title="Backup quota")
    with site.runtime.transaction(write=False) as (session, _):
        first_code = session.get(Ticket, first).code  # type: ignore[union-attr]
    alex, bea = two_agents(site, browser, "team")
    try:
        page = alex.pages[0]
        page.goto(f"{site.url}/console/replies")
        page.get_by_label("Title").fill("Send the log")
        page.get_by_label("Text").fill(
            "Hello {customer_name}, please send the log of ticket #{ticket_code}.\n\n"
            "**Thank you**, {agent_name}"
        )
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r".*notice=.*"))
        page.goto(f"{site.url}/console/tickets/{first}")
        page.get_by_label("Insert a saved reply").select_option(label="Send the log")
        page.get_by_role("button", name="Insert").focus()
        page.keyboard.press("Enter")
        message = page.get_by_role("form", name="Answer the customer").get_by_label("Message")
        expect(message).to_have_value(
            f"Hello Tailspin Hosting, please send the log of ticket #{first_code}.\n\n"
            "**Thank you**, Alex Team"
        )
        page.get_by_role("button", name="Send to the customer").click()
        page.wait_for_url(re.compile(r".*notice=.*"))
        # Shown as Markdown: bold, never the asterisks.
        expect(page.locator(".thread strong", has_text="Thank you")).to_have_count(1)

        other = bea.pages[0]
        other.goto(f"{site.url}/console/tickets/{second}")
        other.get_by_label("Merge into ticket").fill(str(first_code))
        other.get_by_label("for good").check()
        other.get_by_role("button", name="Merge").click()
        other.wait_for_url(re.compile(r".*notice=.*"))
        # On the ticket it went into: both customers' messages and Alex's answer.
        other.wait_for_url(re.compile(rf".*/console/tickets/{first}\b.*"))
        expect(other.locator(".thread .reply")).to_have_count(3)
        other.goto(f"{site.url}/console/tickets/{second}")
        expect(other.locator(".thread")).to_contain_text(f"Merged into ticket #{first_code}")

        other.goto(f"{site.url}/console/tickets?q=tailspin&status=open&sort=waiting")
        other.get_by_label(re.compile(r"Choose #")).first.check()
        other.get_by_label(re.compile(r"Choose #")).last.check()
        other.get_by_label("Do").select_option(label="tag them")
        other.get_by_label("Tag", exact=True).last.fill("backups")
        other.get_by_role("button", name="Apply").click()
        other.wait_for_url(re.compile(r".*notice=.*"))
        expect(other.get_by_role("status").first).to_have_text("2 tickets: tagged.")
        page.goto(f"{site.url}/console/tickets?tag=backups")
        expect(page.locator(".queue tbody tr")).to_have_count(2)
        expect(page.get_by_role("link", name=re.compile("Backup quota"))).to_have_count(1)
        shot(page, site, "queue-tagged")
        assert third
    finally:
        alex.close()
        bea.close()


def test_a_customer_resets_a_forgotten_password_by_mail_and_turns_on_totp(
    site: Site, context: BrowserContext
) -> None:
    make_person(site.runtime, "Forgetful Customer", "forgetful@browser.example")
    page = context.new_page()
    page.goto(f"{site.url}/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("forgetful@browser.example")
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status").first).to_be_visible()
    link = None
    for _ in range(150):  # the mail relay sends it through the test's SMTP server
        mails = site.mail.to("forgetful@browser.example")
        if mails:
            body = mails[-1].get_body(("plain",))
            assert body is not None
            found = re.search(r"http://\S+/password/reset/\S+", body.get_content())
            assert found, body.get_content()
            link = found.group(0)
            break
        time.sleep(0.1)
    assert link is not None, "no reset mail"
    set_password(page, site, link, "forgetful@browser.example", "a brand new passphrase")
    page.wait_for_url(f"{site.url}/account/")
    page.goto(link)  # the link worked once
    expect(page.get_by_text(re.compile("no longer|expired|used", re.I)).first).to_be_visible()

    page.goto(f"{site.url}/account/security")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    recovery = page.locator("#recovery-codes li").first.inner_text()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, "forgetful@browser.example", "a brand new passphrase")
    # A recovery code in place of the app's code (each works once).
    page.get_by_label("Code").fill(recovery)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{site.url}/account/")


def test_an_admin_invites_a_colleague_who_signs_in_and_is_then_disabled(
    site: Site, browser: Browser
) -> None:
    alex, bea = two_agents(site, browser, "admins")
    try:
        page = alex.pages[0]
        page.goto(f"{site.url}/console/staff")
        page.get_by_label("Name").fill("Cleo New")
        page.get_by_label("Email").fill("cleo@browser.example")
        page.get_by_role("button", name="Invite").click()
        link = page.locator("#staff-link").inner_text()
        shot(page, site, "staff")
        newcomer = browser.new_context()
        try:
            joined = newcomer.new_page()
            set_password(joined, site, link, "cleo@browser.example", "cleo's own passphrase")
            joined.wait_for_url(f"{site.url}/console/")
            page.goto(f"{site.url}/console/staff")
            page.get_by_role("button", name="Disable Cleo New").click()
            page.wait_for_url(re.compile(r".*notice=.*"))
            joined.goto(f"{site.url}/console/tickets")
            joined.wait_for_url(re.compile(r".*/signin.*"))
        finally:
            newcomer.close()
        page.goto(f"{site.url}/console/audit")
        expect(page.get_by_text("staff.disabled").first).to_be_visible()
        page.goto(f"{site.url}/console/")
        page.get_by_role("link", name=re.compile("Response times")).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Response times")
    finally:
        alex.close()
        bea.close()


def test_held_mail_joins_a_ticket_unread_for_the_other_agent_and_answered_in_the_portal(
    site: Site, browser: Browser
) -> None:
    customer_id = make_person(site.runtime, "Fourth Coffee", "four@browser.example")
    ticket_id = make_ticket(site.runtime, customer_id, title="Mail server blacklisted")
    with site.runtime.transaction(write=False) as (session, _):
        code = session.get(Ticket, ticket_id).code  # type: ignore[union-attr]
    # Mail from an address nobody knows, naming the ticket: held for staff to decide.
    taker = Runtime.build(
        Settings(
            database_url=site.runtime.settings.database_url,
            data_dir=site.runtime.settings.data_dir,
            mail_from="Support <support@browser.example>",
            mail_strangers="hold",
        )
    )
    try:
        writer = IncomingWriter(taker.incoming_dir, 10_000_000, "mail")
        writer.write(
            f"From: Ops <ops@fourth.example>\nTo: support@browser.example\n"
            f"Subject: Re: [#{code}] Mail server blacklisted\nMessage-ID: <m1@fourth.example>\n"
            "\nThe listing is gone since this morning, thanks.\n".encode()
        )
        receiving.take(taker, writer.finish("mail.eml", "message/rfc822"), via="pipe")
    finally:
        taker.close()
    alex, bea = two_agents(site, browser, "mail")
    try:
        page = alex.pages[0]
        page.goto(f"{site.url}/console/mail")
        page.get_by_role("link", name=f"Re: [#{code}] Mail server blacklisted").click()
        shot(page, site, "mail-held")
        page.get_by_label("Ticket code").fill(str(code))
        page.get_by_label(re.compile("Trust ops@fourth.example")).check()
        page.get_by_role("button", name="Add to the ticket").click()
        page.wait_for_url(re.compile(r".*notice=.*"))

        other = bea.pages[0]
        other.goto(f"{site.url}/console/tickets?status=all&q=blacklisted")
        row = other.locator(".queue tbody tr", has_text="Mail server blacklisted")
        expect(row.locator(".badge", has_text="unread")).to_have_count(1)
        row.get_by_role("link", name=re.compile("Mail server blacklisted")).click()
        expect(other.locator(".thread")).to_contain_text("The listing is gone")
        answer = other.get_by_role("form", name="Answer the customer")
        answer.get_by_label("Message").fill("Good to hear; we will keep an eye on it.")
        answer.get_by_role("button", name="Send to the customer").click()
        other.wait_for_url(re.compile(r".*notice=.*"))
        other.goto(f"{site.url}/console/tickets?status=all&q=blacklisted")
        expect(
            other.locator(".queue tbody tr", has_text="Mail server blacklisted").locator(
                ".badge", has_text="unread"
            )
        ).to_have_count(0)
    finally:
        alex.close()
        bea.close()
    portal = browser.new_context()
    try:
        page = portal.new_page()
        sign_in(page, site, "four@browser.example")
        page.wait_for_url(f"{site.url}/account/")
        page.get_by_role("link", name=re.compile("Answered by us")).click()
        row = page.locator("tr.answered", has_text="Mail server blacklisted")
        expect(row.locator(".badge", has_text="answered")).to_have_count(1)
        shot(page, site, "portal-answered")
    finally:
        portal.close()
