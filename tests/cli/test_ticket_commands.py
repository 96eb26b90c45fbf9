"""The staff side of tickets in the admin CLI, seen by the customer through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_ticket, make_user
from tests.support import Caller, assert_error, assert_success, call

pytestmark = pytest.mark.anyio


@pytest.fixture
def run(settings: Settings) -> Any:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir), *args],
            env=env,
        )

    return invoke


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime, "Jane Customer")


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def failure(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    return result.stderr.strip().splitlines()[-1]


async def test_staff_reply_with_files_reaches_the_customer(
    run: Any, runtime: Runtime, client: httpx.AsyncClient, caller: Caller, tmp_path: Path
) -> None:
    staff_id = make_user(runtime, name="Sam Support", staff=True)
    ticket_id = make_ticket(runtime, caller.user_id)
    log = tmp_path / "traceroute.txt"
    log.write_bytes(b"1  gw (198.51.100.1)\n\x00\xff binary tail")
    picture = tmp_path / "graph.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    answer = ok_json(
        run(
            "admin",
            "ticket",
            "reply",
            str(ticket_id),
            "--staff-user",
            str(staff_id),
            "--content",
            "Fixed; see attachments.",
            "--attach",
            str(log),
            "--attach",
            str(picture),
            "--json",
        )
    )
    assert answer == {"ticketId": ticket_id}
    thread = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    reply = thread["replies"][1]
    assert (reply["by"], reply["userId"], reply["content"]) == (
        "Sam Support",
        staff_id,
        "Fixed; see attachments.",
    )
    infos = reply["attachments"]
    assert [(a["name"], a["contentType"]) for a in infos] == [
        ("traceroute.txt", "text/plain"),
        ("graph.png", "image/png"),
    ]
    for info, path in zip(infos, (log, picture), strict=True):
        download = await call(
            client,
            caller,
            "getTicketAttachment",
            ticketId=ticket_id,
            attachmentId=info["attachmentId"],
        )
        assert download.content == path.read_bytes()


def test_reply_by_a_customer_account_is_refused(run: Any, runtime: Runtime, caller: Caller) -> None:
    ticket_id = make_ticket(runtime, caller.user_id)
    result = run(
        "admin",
        "ticket",
        "reply",
        str(ticket_id),
        "--staff-user",
        str(caller.user_id),
        "--content",
        "x",
    )
    assert "not a staff member" in failure(result)


def test_reply_to_unknown_ticket_fails(run: Any, runtime: Runtime) -> None:
    staff_id = make_user(runtime, name="Sam", staff=True)
    result = run(
        "admin", "ticket", "reply", "424242", "--staff-user", str(staff_id), "--content", "x"
    )
    assert "424242" in failure(result)


def test_reply_with_a_missing_file_fails_before_anything(
    run: Any, runtime: Runtime, caller: Caller
) -> None:
    staff_id = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, caller.user_id)
    result = run(
        "admin",
        "ticket",
        "reply",
        str(ticket_id),
        "--staff-user",
        str(staff_id),
        "--content",
        "x",
        "--attach",
        "/nonexistent/file.txt",
    )
    assert "does not exist" in failure(result, exit_code=2)


def test_reply_with_a_file_over_the_limit_fails(
    run: Any, runtime: Runtime, caller: Caller, tmp_path: Path
) -> None:
    staff_id = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, caller.user_id)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    result = run(
        "admin",
        "ticket",
        "reply",
        str(ticket_id),
        "--staff-user",
        str(staff_id),
        "--content",
        "x",
        "--attach",
        str(big),
        env={"LEDGERDESK_MAX_ATTACHMENT_BYTES": "1024"},
    )
    assert "limit" in failure(result)


def test_reply_with_blank_content_fails(run: Any, runtime: Runtime, caller: Caller) -> None:
    staff_id = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, caller.user_id)
    result = run(
        "admin", "ticket", "reply", str(ticket_id), "--staff-user", str(staff_id), "--content", "  "
    )
    assert "content" in failure(result)


async def test_force_close_is_final_for_the_customer(
    run: Any, runtime: Runtime, client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = make_ticket(runtime, caller.user_id)
    assert ok_json(run("admin", "ticket", "force-close", str(ticket_id), "--json")) == {
        "ticketId": ticket_id,
        "status": 2,
    }
    assert_error(
        await call(client, caller, "replyTicket", ticketId=ticket_id, content="?"), 3002, 409
    )
    assert_error(await call(client, caller, "reopenTicket", ticketId=ticket_id), 3002, 409)


def test_force_close_of_unknown_ticket_fails(run: Any) -> None:
    assert "777777" in failure(run("admin", "ticket", "force-close", "777777"))


def test_list_filters_by_status_and_user(run: Any, runtime: Runtime, caller: Caller) -> None:
    other = make_customer(runtime, "Other")
    mine = make_ticket(runtime, caller.user_id, title="Mine")
    theirs = make_ticket(runtime, other.user_id, title="Theirs")
    run("admin", "ticket", "force-close", str(theirs))
    every = ok_json(run("admin", "ticket", "list", "--json"))["tickets"]
    assert {t["ticketId"] for t in every} == {mine, theirs}
    forced = ok_json(run("admin", "ticket", "list", "--status", "2", "--json"))["tickets"]
    assert [t["ticketId"] for t in forced] == [theirs]
    only_mine = ok_json(run("admin", "ticket", "list", "--user", str(caller.user_id), "--json"))
    assert [t["title"] for t in only_mine["tickets"]] == ["Mine"]
    prose = run("admin", "ticket", "list")
    assert "Mine" in prose.stdout
    assert "forcibly closed" in prose.stdout


def test_show_prints_the_thread(run: Any, runtime: Runtime, caller: Caller) -> None:
    ticket_id = make_ticket(runtime, caller.user_id, title="Disk full", content="Help please")
    shown = ok_json(run("admin", "ticket", "show", str(ticket_id), "--json"))
    assert shown["thread"]["title"] == "Disk full"
    assert [(r["by"], r["content"]) for r in shown["replies"]] == [("Jane Customer", "Help please")]
    prose = run("admin", "ticket", "show", str(ticket_id)).stdout
    assert "Jane Customer" in prose
    assert "Help please" in prose
