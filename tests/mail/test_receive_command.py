"""``ledgerdesk mail receive``: one mail from an MTA's pipe; 0 when taken, 75 when it
cannot be stored now (the MTA tries again), 65 when too large; killed mid-message it
stores nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.main import cli
from ledgerdesk.db.models import MailMessage, Ticket
from ledgerdesk.runtime import Runtime
from tests.factories import make_user, recorded_events, system_work

SUPPORT = "Hosting Support <support@hosting.example>"
MAIL = (
    b"From: Ann <ann@example.com>\nTo: support@hosting.example\nSubject: Disk full\n"
    b"Message-ID: <p1@example.com>\n\nweb01 is full.\n"
)


def ann(runtime: Runtime) -> int:
    user_id = make_user(runtime, name="Ann")
    with system_work(runtime) as work:
        AccountService(work).update_user(user_id, email="ann@example.com")
    return user_id


def count(runtime: Runtime, model: type) -> int:
    with runtime.transaction(write=False) as (session, _):
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def received(outcome: str) -> float:
    found = REGISTRY.get_sample_value("ledgerdesk_inbound_mail_total", {"outcome": outcome})
    return found or 0.0


def test_a_piped_mail_opens_a_ticket(runtime: Runtime, database_url: str, tmp_path: Path) -> None:
    customer = ann(runtime)
    processed = received("processed")
    result = CliRunner().invoke(
        cli,
        ["--database-url", database_url, "--data-dir", str(tmp_path), "mail", "receive"],
        input=MAIL,
        env={"LEDGERDESK_MAIL_FROM": SUPPORT},
    )
    assert result.exit_code == 0, result.output
    assert "opened (ticket" in result.stderr
    created = [e for e in recorded_events(runtime) if e.type == "ticket.created"]
    assert [(e.door, e.actor_kind, e.actor_id) for e in created] == [("mail", "customer", customer)]
    again = CliRunner().invoke(
        cli,
        ["--database-url", database_url, "--data-dir", str(tmp_path), "mail", "receive"],
        input=MAIL,
        env={"LEDGERDESK_MAIL_FROM": SUPPORT},
    )
    assert again.exit_code == 0
    assert count(runtime, Ticket) == 1  # an MTA's second try takes nothing twice
    assert received("processed") == processed + 2  # /metrics: the same mail, taken once


def test_mail_not_set_up_or_no_database_is_a_temporary_failure(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    unset = CliRunner().invoke(
        cli,
        ["--database-url", database_url, "--data-dir", str(tmp_path), "mail", "receive"],
        input=MAIL,
        env={"LEDGERDESK_MAIL_FROM": ""},
    )
    assert unset.exit_code == 75
    assert "LEDGERDESK_MAIL_FROM is not set" in unset.stderr
    down = CliRunner().invoke(
        cli,
        [
            "--database-url",
            "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "--data-dir",
            str(tmp_path),
            "mail",
            "receive",
        ],
        input=MAIL,
        env={"LEDGERDESK_MAIL_FROM": SUPPORT, "LEDGERDESK_DB_CONNECT_TIMEOUT": "1"},
    )
    assert down.exit_code == 75
    assert "cannot take mail now" in down.stderr
    assert count(runtime, MailMessage) == 0


def test_unreadable_mail_is_taken_into_the_queue(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--database-url", database_url, "--data-dir", str(tmp_path), "mail", "receive"],
        input=b"garbage without a sender\n",
        env={"LEDGERDESK_MAIL_FROM": SUPPORT},
    )
    assert result.exit_code == 0
    assert "unreadable" in result.stderr
    assert count(runtime, MailMessage) == 1


@pytest.mark.slow
def test_killed_mid_message_it_stores_nothing(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    ann(runtime)
    env = {
        **os.environ,
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_MAIL_FROM": SUPPORT,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ledgerdesk", "mail", "receive"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(MAIL[: len(MAIL) // 2])
    process.stdin.flush()
    time.sleep(1.5)  # it is reading the rest
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdin.close()
    assert process.stderr is not None
    process.stderr.close()
    assert (count(runtime, MailMessage), count(runtime, Ticket)) == (0, 0)
    # The MTA tries again with the whole mail: taken once.
    whole = subprocess.run(
        [sys.executable, "-m", "ledgerdesk", "mail", "receive"],
        input=MAIL,
        capture_output=True,
        env=env,
        check=False,
    )
    assert whole.returncode == 0, whole.stderr
    assert (count(runtime, MailMessage), count(runtime, Ticket)) == (1, 1)
    leftovers = (
        list((tmp_path / "incoming").rglob("*.part")) if (tmp_path / "incoming").exists() else []
    )
    assert len(leftovers) <= 1  # the killed one's upload, swept at the next start
