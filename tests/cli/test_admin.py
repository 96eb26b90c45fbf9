"""The admin CLI of SPEC section 5, through the ``ledgerdesk`` entry point."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.queries import AccountQueries
from ledgerdesk.cli.main import cli
from ledgerdesk.db.prepared import session_db
from ledgerdesk.errors import NotFound
from ledgerdesk.events.work import Actor, Origin, Work


def ok_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def one_line_error(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert lines, "an error must say what went wrong"
    return lines[-1]


def make_customer(run: Any) -> int:
    """A customer invoices can be issued to: the seller's details are set, and the
    customer's billing country."""
    user_id: int = ok_json(run("admin", "user", "create", "--name", "Jane Doe", "--json"))["userId"]
    set_seller(run)
    ok_json(run("admin", "user", "update", str(user_id), "--country", "NL", "--json"))
    return user_id


SELLER_OPTIONS = (
    "--name", "Hosting B.V.",
    "--vat-id", "NL854560178B01",
    "--address-line", "Keizersgracht 1",
    "--city", "Amsterdam",
    "--postcode", "1015 CD",
    "--country", "NL",
    "--iban", "NL91ABNA0417164300",
)  # fmt: skip


def set_seller(run: Any) -> None:
    ok_json(run("admin", "seller", "set", *SELLER_OPTIONS, "--json"))


def test_user_create_prints_the_new_id(run: Any) -> None:
    first = ok_json(run("admin", "user", "create", "--name", "Jane", "--email", "j@x.io", "--json"))
    second = ok_json(run("admin", "user", "create", "--name", "Sam", "--staff", "--json"))
    assert set(first) == {"userId"}
    assert second["userId"] > first["userId"]
    listed = ok_json(run("admin", "user", "list", "--json"))["users"]
    assert [(u["name"], u["isStaff"]) for u in listed] == [("Jane", False), ("Sam", True)]


def test_staff_admins_are_made_and_the_last_one_stays(run: Any) -> None:
    sam = ok_json(run("admin", "user", "create", "--name", "Sam", "--staff", "--admin", "--json"))
    tess = ok_json(run("admin", "user", "create", "--name", "Tess", "--staff", "--json"))
    listed = ok_json(run("admin", "user", "list", "--json"))["users"]
    assert [(u["name"], u["isAdmin"]) for u in listed] == [("Sam", True), ("Tess", False)]
    last = one_line_error(run("admin", "user", "update", str(sam["userId"]), "--no-admin"))
    assert "last enabled admin" in last
    assert "last enabled admin" in one_line_error(
        run("admin", "user", "disable", str(sam["userId"]))
    )
    made = ok_json(run("admin", "user", "update", str(tess["userId"]), "--admin", "--json"))
    assert made["admin"] is True
    taken = ok_json(run("admin", "user", "update", str(sam["userId"]), "--no-admin", "--json"))
    assert taken["admin"] is False
    customer = run("admin", "user", "create", "--name", "Jane", "--admin")
    assert customer.exit_code != 0


def test_user_create_without_json_prints_prose(run: Any) -> None:
    result = run("admin", "user", "create", "--name", "Jane Doe")
    assert result.exit_code == 0
    assert "Created customer" in result.stdout
    assert "Jane Doe" in result.stdout


def test_user_create_refuses_a_bad_email(run: Any) -> None:
    line = one_line_error(run("admin", "user", "create", "--name", "X", "--email", "nope"))
    assert "email" in line


def test_key_create_prints_the_key_once(run: Any) -> None:
    user_id = make_customer(run)
    created = ok_json(
        run(
            "admin",
            "key",
            "create",
            "--user",
            str(user_id),
            "--category",
            "administration",
            "--ip-range",
            "10.0.0.0/8",
            "--ip-range",
            "2001:db8::/32",
            "--expires",
            "2030-01-01",
            "--note",
            "billing",
            "--json",
        )
    )
    assert set(created) == {"keyId", "apiKey"}
    assert len(created["apiKey"]) == 20
    assert created["apiKey"].isalnum()
    (listed,) = ok_json(run("admin", "key", "list", "--user", str(user_id), "--json"))["keys"]
    assert listed["categories"] == ["administration"]
    assert listed["ipRanges"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert listed["expires"] == "2030-01-01"
    assert listed["note"] == "billing"
    assert created["apiKey"] not in json.dumps(listed)


def test_key_revoke(run: Any) -> None:
    user_id = make_customer(run)
    key_id = ok_json(run("admin", "key", "create", "--user", str(user_id), "--json"))["keyId"]
    assert ok_json(run("admin", "key", "revoke", str(key_id), "--json")) == {
        "keyId": key_id,
        "revoked": True,
    }
    (listed,) = ok_json(run("admin", "key", "list", "--json"))["keys"]
    assert listed["revoked"] is True


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--ip-range", "10.0.0.0/33", "10.0.0.0/33"),
        ("--category", "Not A Category", "category"),
        ("--expires", "2001-01-01", "past"),
    ],
)
def test_key_create_refuses_bad_input(run: Any, flag: str, value: str, needle: str) -> None:
    user_id = make_customer(run)
    assert needle in one_line_error(
        run("admin", "key", "create", "--user", str(user_id), flag, value)
    )
    assert ok_json(run("admin", "key", "list", "--json")) == {"keys": []}


def test_key_create_for_unknown_user_fails(run: Any) -> None:
    assert "999999" in one_line_error(run("admin", "key", "create", "--user", "999999"))


def test_key_create_refuses_a_malformed_date(run: Any) -> None:
    user_id = make_customer(run)
    result = run("admin", "key", "create", "--user", str(user_id), "--expires", "31-12-2030")
    assert "YYYY-MM-DD" in one_line_error(result, exit_code=2)


def test_key_revoke_of_unknown_key_fails(run: Any) -> None:
    assert "does not exist" in one_line_error(run("admin", "key", "revoke", "424242"))


def test_invoice_create_and_mark_paid(run: Any) -> None:
    user_id = make_customer(run)
    created = ok_json(
        run(
            "admin",
            "invoice",
            "create",
            "--user",
            str(user_id),
            "--title",
            "Server",
            "--description",
            "Line one\nLine two",
            "--amount-excl-vat",
            "350.00",
            "--vat-perc",
            "21",
            "--date",
            "2026-07-07",
            "--pay-within-days",
            "30",
            "--json",
        )
    )
    assert created == {"invoiceId": created["invoiceId"], "number": "F26-0000001"}
    paid = ok_json(
        run(
            "admin",
            "invoice",
            "mark-paid",
            str(created["invoiceId"]),
            "--date",
            "2026-07-10",
            "--json",
        )
    )
    assert paid == {"invoiceId": created["invoiceId"], "status": "paid"}
    (listed,) = ok_json(run("admin", "invoice", "list", "--json"))["invoices"]
    assert listed["amountNet"] == "423.50"
    assert listed["vat"] == "73.50"
    assert listed["payBefore"] == "2026-08-06"
    assert listed["paidOn"] == "2026-07-10"


INVOICE_OPTIONS = {"--title": "T", "--amount-excl-vat": "10", "--vat-perc": "21"}


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--amount-excl-vat", "-5", "negative"),
        ("--amount-excl-vat", "1.005", "two decimals"),
        ("--amount-excl-vat", "lots", "not a valid amount"),
        ("--vat-perc", "150", "between 0 and 100"),
        ("--date", "2026-13-01", "YYYY-MM-DD"),
        ("--pay-within-days", "-3", "-3"),
    ],
)
def test_invoice_create_refuses_bad_input(run: Any, flag: str, value: str, needle: str) -> None:
    user_id = make_customer(run)
    options = [part for pair in {**INVOICE_OPTIONS, flag: value}.items() for part in pair]
    result = run("admin", "invoice", "create", "--user", str(user_id), *options)
    assert needle in one_line_error(result, exit_code=2)
    assert ok_json(run("admin", "invoice", "list", "--json")) == {"invoices": []}


def test_invoice_for_unknown_user_fails(run: Any) -> None:
    result = run(
        "admin",
        "invoice",
        "create",
        "--user",
        "987654",
        "--title",
        "T",
        "--amount-excl-vat",
        "1",
        "--vat-perc",
        "0",
    )
    assert "987654" in one_line_error(result)


def test_invoice_for_staff_fails(run: Any) -> None:
    staff = ok_json(run("admin", "user", "create", "--name", "Sam", "--staff", "--json"))["userId"]
    result = run(
        "admin",
        "invoice",
        "create",
        "--user",
        str(staff),
        "--title",
        "T",
        "--amount-excl-vat",
        "1",
        "--vat-perc",
        "0",
    )
    assert "staff" in one_line_error(result)


def test_mark_paid_of_unknown_invoice_fails(run: Any) -> None:
    assert "does not exist" in one_line_error(run("admin", "invoice", "mark-paid", "55555"))


def test_mark_paid_before_creation_fails(run: Any) -> None:
    user_id = make_customer(run)
    invoice_id = ok_json(
        run(
            "admin",
            "invoice",
            "create",
            "--user",
            str(user_id),
            "--title",
            "T",
            "--amount-excl-vat",
            "1",
            "--vat-perc",
            "0",
            "--date",
            "2026-05-05",
            "--json",
        )
    )["invoiceId"]
    line = one_line_error(
        run("admin", "invoice", "mark-paid", str(invoice_id), "--date", "2026-05-04")
    )
    assert "before it was created" in line


def test_admin_on_an_unmigrated_database_says_what_to_do(tmp_path: Any) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", url, "admin", "user", "list"])
    assert "ledgerdesk db upgrade" in one_line_error(result)


def test_bad_database_url_is_one_line(tmp_path: Any) -> None:
    result = CliRunner().invoke(cli, ["--database-url", "mysql://x/y", "admin", "user", "list"])
    assert "LEDGERDESK_DATABASE_URL" in one_line_error(result)


# -- people: links, disable, enable -----------------------------------------------------


def test_user_invite_prints_a_link_that_sets_the_password_once(run: Any, database_url: str) -> None:
    user_id = ok_json(
        run("admin", "user", "create", "--name", "Ann", "--email", "ann@example.com", "--json")
    )["userId"]
    printed = ok_json(run("admin", "user", "invite", str(user_id), "--json"))
    assert printed["url"].startswith("http://127.0.0.1:8080/password/")
    secret = printed["url"].rsplit("/", 1)[1]
    engine = create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            now = printed["expiresAt"] - 7 * 24 * 3600
            work = Work(session, Actor.SYSTEM, Origin("system"), now, datetime.date.today())
            people = PeopleService.of(work)
            people.set_password_with_link(secret, "a long enough password", now=now)
            with pytest.raises(NotFound):
                people.link_user(secret, now=now)
    finally:
        engine.dispose()


def test_user_invite_needs_an_email_address(run: Any) -> None:
    user_id = make_customer(run)
    line = one_line_error(run("admin", "user", "invite", str(user_id)))
    assert "no email address" in line


def test_user_disable_stops_the_keys_and_enable_restores_them(run: Any, database_url: str) -> None:
    user_id = make_customer(run)
    ok_json(run("admin", "key", "create", "--user", str(user_id), "--json"))
    engine = create_engine(database_url)
    try:
        assert ok_json(run("admin", "user", "disable", str(user_id), "--json")) == {
            "userId": user_id,
            "disabled": True,
        }
        with Session(engine) as session:
            assert AccountQueries(session_db(session)).usable_keys(user_id) == []
        listed = ok_json(run("admin", "user", "list", "--json"))["users"]
        assert listed[0]["disabled"] is True
        ok_json(run("admin", "user", "enable", str(user_id), "--json"))
        with Session(engine) as session:
            assert len(AccountQueries(session_db(session)).usable_keys(user_id)) == 1
    finally:
        engine.dispose()


def test_user_disable_of_an_unknown_user_is_one_line(run: Any) -> None:
    assert "does not exist" in one_line_error(run("admin", "user", "disable", "999"))


# -- the seller, billing details, invoices with lines, credit notes, payments -----------


def test_the_seller_is_set_checked_and_shown(run: Any) -> None:
    missing = one_line_error(run("admin", "seller", "set", "--name", "Hosting B.V."))
    assert "vat-id: is required" in missing
    assert "country: is required" in missing
    wrong = one_line_error(
        run("admin", "seller", "set", *SELLER_OPTIONS[:-2], "--iban", "NL00ABNA0417164300")
    )
    assert "iban: is not a valid IBAN" in wrong
    bad_vat = [*SELLER_OPTIONS]
    bad_vat[bad_vat.index("--vat-id") + 1] = "NL123"
    assert "vat-id: is not a valid VAT id for NL" in one_line_error(
        run("admin", "seller", "set", *bad_vat)
    )
    set_seller(run)
    changed = ok_json(run("admin", "seller", "set", "--email", "billing@hosting.example", "--json"))
    assert (changed["name"], changed["email"], changed["currency"]) == (
        "Hosting B.V.",
        "billing@hosting.example",
        "EUR",
    )
    moved = one_line_error(run("admin", "seller", "set", "--country", "BE"))
    assert "vat-id: give it again with the new country" in moved
    assert ok_json(run("admin", "seller", "show", "--json"))["vatId"] == "NL854560178B01"


def test_a_customers_billing_details_are_checked(run: Any) -> None:
    user_id = ok_json(run("admin", "user", "create", "--name", "Acme", "--json"))["userId"]
    refused = one_line_error(
        run("admin", "user", "update", str(user_id), "--country", "XX", "--vat-id", "DE1")
    )
    assert "country: is not an ISO 3166 country code" in refused
    updated = ok_json(
        run(
            "admin", "user", "update", str(user_id),
            "--legal-name", "Acme GmbH", "--vat-id", "de 136 695 976", "--country", "de",
            "--city", "Berlin", "--json",
        )
    )  # fmt: skip
    assert (updated["vatId"], updated["country"], updated["legalName"]) == (
        "DE136695976",
        "DE",
        "Acme GmbH",
    )
    cleared = ok_json(run("admin", "user", "update", str(user_id), "--city", "", "--json"))
    assert cleared["city"] is None
    staff = ok_json(run("admin", "user", "create", "--name", "Sam", "--staff", "--json"))["userId"]
    assert "staff have no billing details" in one_line_error(
        run("admin", "user", "update", str(staff), "--country", "NL")
    )


def test_an_invoice_of_many_lines_credit_notes_and_payments(run: Any, tmp_path: Any) -> None:
    user_id = make_customer(run)
    created = ok_json(
        run(
            "admin", "invoice", "create", "--user", str(user_id),
            "--line", "Dedicated server", "1", "89.00", "21",
            "--line", "Extra IPv4 address", "4", "1.50", "21",
            "--line", "Domain", "1", "8.00", "9",
            "--date", "2026-11-02", "--json",
        )
    )  # fmt: skip
    invoice_id = str(created["invoiceId"])
    shown = ok_json(run("admin", "invoice", "show", invoice_id, "--json"))
    assert (shown["amountExclVat"], shown["vat"], shown["amountNet"]) == (
        "103.00",
        "20.67",
        "123.67",
    )
    assert shown["title"] == "Dedicated server and 2 more lines"
    assert [line["vatPerc"] for line in shown["lines"]] == ["21.00", "21.00", "9.00"]
    paid = ok_json(
        run("admin", "invoice", "pay", invoice_id, "--amount", "50", "--method", "SEPA", "--json")
    )
    assert (paid["amountPaid"], paid["amountDue"], paid["status"]) == ("50.00", "73.67", "unpaid")
    too_much = one_line_error(run("admin", "invoice", "pay", invoice_id, "--amount", "100"))
    assert "amount: is more than the 73.67 EUR still due" in too_much
    credit = ok_json(
        run(
            "admin", "invoice", "credit", invoice_id, "--reason", "Outage",
            "--line", "Three days of outage", "3", "2.90", "21", "--json",
        )
    )  # fmt: skip
    assert (credit["number"], credit["amountNet"], credit["correctsInvoiceId"]) == (
        "C26-0000001",
        "10.53",
        created["invoiceId"],
    )
    rest = ok_json(run("admin", "invoice", "mark-paid", invoice_id, "--json"))
    assert rest == {"invoiceId": created["invoiceId"], "status": "paid"}
    after = ok_json(run("admin", "invoice", "show", invoice_id, "--json"))
    assert (after["amountPaid"], after["amountCredited"], after["amountDue"]) == (
        "113.14",
        "10.53",
        "0.00",
    )
    assert after["creditNoteIds"] == [credit["creditNoteId"]]
    for kind in ("pdf", "ubl", "cii"):
        target = tmp_path / f"invoice.{kind}"
        result = run(
            "admin", "invoice", "export", invoice_id, "--format", kind, "--output", str(target)
        )
        assert result.exit_code == 0, result.output
        assert target.read_bytes().startswith(b"%PDF-" if kind == "pdf" else b"<?xml")
    xml = run("admin", "invoice", "export", str(credit["creditNoteId"]), "--format", "ubl")
    assert "<CreditNote" in xml.stdout


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--line", "Server", "1", "10", "21", "--amount-excl-vat", "10"], "not both"),
        ([], "give at least one --line"),
        (["--line", "Server", "0", "10", "21"], "line 1: the quantity must be more than zero"),
        (["--line", "Server", "1", "10", "twenty"], "not a valid VAT percentage"),
        (["--line", "Server", "1", "10", "21", "--currency", "USD"], "exchange-rate: is required"),
        (["--line", "Server", "1", "10", "exempt"], "exemption-reason: is required"),
    ],
)
def test_invoice_lines_and_currencies_are_checked(run: Any, extra: list[str], needle: str) -> None:
    user_id = make_customer(run)
    result = run("admin", "invoice", "create", "--user", str(user_id), *extra)
    assert needle in result.output
    assert result.exit_code in (1, 2)
    assert ok_json(run("admin", "invoice", "list", "--json")) == {"invoices": []}
