"""The customer CLI (`ledgerdesk invoices`, `ledgerdesk tickets`) against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import MB, Server
from tests.servers import LEDGERDESK


def run(
    server: Server, *args: str, key: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LEDGERDESK_URL": server.url,
        "LEDGERDESK_USER_ID": str(server.caller.user_id),
        "LEDGERDESK_API_KEY": key or server.caller.api_key,
    }
    result = subprocess.run(
        [*LEDGERDESK, *args], capture_output=True, text=True, env=env, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    assert server.caller.api_key not in result.stdout + result.stderr
    return result


def test_invoices_list_and_show(server: Server) -> None:
    table = run(server, "invoices", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "NUMBER", "DATE"]
    assert "423.50" in table
    listed = json.loads(run(server, "invoices", "list", "--status", "unpaid", "--json").stdout)
    assert [i["id"] for i in listed["invoices"]] == list(server.invoice_ids)
    assert listed["invoices"][0]["amount_net"] == "423.50"
    shown = run(server, "invoices", "show", str(server.invoice_ids[0])).stdout
    assert "incl. 73.50 VAT (21.00%)" in shown
    assert "No invoices" in run(server, "invoices", "list", "--status", "paid").stdout
    assert "Still due:   423.50 EUR" in shown
    assert "QUANTITY" in shown


def test_invoices_download_as_pdf_and_e_invoice(server: Server, tmp_path: Path) -> None:
    invoice_id = str(server.invoice_ids[0])
    run(server, "invoices", "download", invoice_id, "-o", f"{tmp_path}/docs/")
    (pdf,) = (tmp_path / "docs").iterdir()
    assert pdf.name.endswith(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    made = json.loads(
        run(
            server, "invoices", "download", invoice_id, "--format", "ubl",
            "-o", str(tmp_path / "e.xml"), "--json",
        ).stdout
    )  # fmt: skip
    assert made["size"] == (tmp_path / "e.xml").stat().st_size
    assert b"urn:cen.eu:en16931:2017" in (tmp_path / "e.xml").read_bytes()
    assert json.loads(
        run(server, "invoices", "list", "--type", "credit-note", "--json").stdout
    ) == {"invoices": []}


def test_a_ticket_from_opening_to_download(server: Server, tmp_path: Path) -> None:
    message = tmp_path / "message.txt"
    message.write_text("The disk is at 97%.\nPlease add one.", encoding="utf-8")
    df = tmp_path / "df.txt"
    df.write_bytes(b"/dev/sda1 97%\n")
    created = run(
        server,
        "tickets",
        "create",
        "--title",
        "Disk almost full",
        "--content-file",
        str(message),
        "--attach",
        str(df),
        "--priority",
        "high",
        "--json",
    )
    ticket_id = json.loads(created.stdout)["ticketId"]
    assert (
        f"Replied to ticket {ticket_id}."
        in run(server, "tickets", "reply", str(ticket_id), "--content", "Any news?").stdout
    )
    shown = run(server, "tickets", "show", str(ticket_id)).stdout
    assert "Disk almost full" in shown
    assert "priority high" in shown
    assert "Please add one." in shown
    thread = json.loads(run(server, "tickets", "show", str(ticket_id), "--json").stdout)
    attachment = thread["replies"][0]["attachments"][0]
    assert attachment["name"] == "df.txt"
    target = tmp_path / "copy.txt"
    run(server, "tickets", "download", str(ticket_id), str(attachment["id"]), "-o", str(target))
    assert target.read_bytes() == df.read_bytes()
    folder = tmp_path / "downloads"
    folder.mkdir()
    run(server, "tickets", "download", str(ticket_id), str(attachment["id"]), "-o", str(folder))
    assert (folder / "df.txt").read_bytes() == df.read_bytes()
    assert "Closed" in run(server, "tickets", "close", str(ticket_id)).stdout
    closed = json.loads(run(server, "tickets", "list", "--status", "closed", "--json").stdout)
    assert ticket_id in [t["id"] for t in closed["tickets"]]
    assert "Reopened" in run(server, "tickets", "reopen", str(ticket_id)).stdout
    table = run(server, "tickets", "list", "--status", "open").stdout
    assert "Disk almost full" in table


def test_large_transfers_show_progress(server: Server, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * MB))
    created = run(
        server,
        "tickets",
        "create",
        "--title",
        "Big",
        "--content",
        "5 MB",
        "--attach",
        str(big),
        "--json",
    )
    assert "Uploading" in created.stderr
    ticket_id = json.loads(created.stdout)["ticketId"]
    thread = json.loads(run(server, "tickets", "show", str(ticket_id), "--json").stdout)
    attachment_id = thread["replies"][0]["attachments"][0]["id"]
    out = tmp_path / "out.bin"
    downloaded = run(
        server, "tickets", "download", str(ticket_id), str(attachment_id), "-o", str(out)
    )
    assert "Downloading" in downloaded.stderr
    assert out.read_bytes() == big.read_bytes()


@pytest.mark.parametrize(
    ("args", "key", "code", "needle"),
    [
        (["tickets", "show", "999999"], None, 4, "(3001)"),
        (["tickets", "list"], "W" * 20, 3, "(2001)"),
        (["tickets", "create", "--title", " ", "--content", "x"], None, 1, "title"),
        (["tickets", "create", "--title", "T"], None, 2, "exactly one of"),
    ],
)
def test_failures_have_their_own_exit_codes(
    server: Server, args: list[str], key: str | None, code: int, needle: str
) -> None:
    result = run(server, *args, key=key, check=False)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr


def test_missing_credentials_and_no_server(server: Server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")}
    missing = subprocess.run(
        [*LEDGERDESK, "tickets", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert missing.returncode == 2
    assert "LEDGERDESK_URL" in missing.stderr
    down = subprocess.run(
        [*LEDGERDESK, "tickets", "--url", "http://127.0.0.1:9", "--user-id", "1", "list"],
        capture_output=True,
        text=True,
        env={**env, "LEDGERDESK_API_KEY": "k" * 20},
        check=False,
    )
    assert down.returncode == 5
    assert "no answer from the server" in down.stderr


def test_help_needs_no_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")}
    for command in (["tickets", "list", "--help"], ["invoices", "show", "--help"]):
        result = subprocess.run(
            [*LEDGERDESK, *command], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


BLOCK_SERVER = """
import sys
from importlib.abc import MetaPathFinder

SERVER = {"sqlalchemy", "starlette", "uvicorn", "pydantic", "alembic", "limits", "redis",
          "psycopg", "python_multipart", "swagger_ui_bundle"}

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from ledgerdesk.cli.main import main
main()
"""


def test_a_customer_install_without_the_server_runs_the_customer_commands(server: Server) -> None:
    """`pip install ledgerdesk` without [server]: the customer's commands work, the
    server's explain what to install."""
    env = {
        **os.environ,
        "LEDGERDESK_URL": server.url,
        "LEDGERDESK_USER_ID": str(server.caller.user_id),
        "LEDGERDESK_API_KEY": server.caller.api_key,
    }

    def ledgerdesk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", BLOCK_SERVER, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    listed = ledgerdesk("invoices", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [i["id"] for i in json.loads(listed.stdout)["invoices"]] == list(server.invoice_ids)
    assert "admin" in ledgerdesk("--help").stdout
    refused = ledgerdesk("admin", "user", "list")
    assert refused.returncode == 1
    assert "pip install 'ledgerdesk[server]'" in refused.stderr


def run_with(
    server: Server, *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEDGERDESK, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        input=stdin,
        check=False,
    )


def no_credentials() -> dict[str, str]:
    return {"LEDGERDESK_URL": "", "LEDGERDESK_USER_ID": "", "LEDGERDESK_API_KEY": ""}


def test_credentials_may_come_after_the_commands_name(server: Server) -> None:
    flags = [
        "--url",
        server.url,
        "--user-id",
        str(server.caller.user_id),
        "--api-key",
        server.caller.api_key,
    ]
    before = run_with(server, "tickets", *flags, "list", "--json", env=no_credentials())
    after = run_with(server, "tickets", "list", *flags, "--json", env=no_credentials())
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    # After the name wins over before it.
    wrong_then_right = run_with(
        server, "invoices", "--api-key", "A" * 20, "list", *flags, env=no_credentials()
    )
    assert wrong_then_right.returncode == 0, wrong_then_right.stderr


def test_missing_credentials_name_the_flags_and_variables(server: Server) -> None:
    result = run_with(server, "tickets", "list", env=no_credentials())
    assert result.returncode == 2
    assert "--url (or LEDGERDESK_URL)" in result.stderr
    assert "--api-key (or LEDGERDESK_API_KEY)" in result.stderr
    assert "base_url" not in result.stderr


def test_a_message_from_standard_input(server: Server) -> None:
    env = {
        "LEDGERDESK_URL": server.url,
        "LEDGERDESK_USER_ID": str(server.caller.user_id),
        "LEDGERDESK_API_KEY": server.caller.api_key,
    }
    created = run_with(
        server,
        "tickets",
        "create",
        "--title",
        "From a pipe",
        "--content-file",
        "-",
        "--json",
        env=env,
        stdin="kernel: eth0 link down\n",
    )
    assert created.returncode == 0, created.stderr
    ticket_id = json.loads(created.stdout)["ticketId"]
    shown = run(server, "tickets", "show", str(ticket_id)).stdout
    assert "kernel: eth0 link down" in shown


def test_downloading_into_a_folder_that_does_not_exist_yet(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    log.write_bytes(b"booted\n")
    ticket_id = json.loads(
        run(
            server,
            "tickets",
            "create",
            "--title",
            "t",
            "--content",
            "c",
            "--attach",
            str(log),
            "--json",
        ).stdout
    )["ticketId"]
    thread = json.loads(run(server, "tickets", "show", str(ticket_id), "--json").stdout)
    attachment_id = thread["replies"][0]["attachments"][0]["id"]
    target = tmp_path / "new" / "folder"
    run(server, "tickets", "download", str(ticket_id), str(attachment_id), "-o", f"{target}/")
    assert (target / "boot.log").read_bytes() == b"booted\n"
    assert target.is_dir()


@pytest.mark.parametrize(
    "command",
    [
        ["tickets", "create"],
        ["tickets", "reply"],
        ["tickets", "download"],
        ["tickets", "list"],
        ["invoices", "list"],
    ],
)
def test_every_command_shows_examples_in_its_help(server: Server, command: list[str]) -> None:
    shown = run_with(server, *command, "--help", env=no_credentials())
    assert shown.returncode == 0
    assert "Example" in shown.stdout
    assert f"ledgerdesk {' '.join(command)}" in shown.stdout
