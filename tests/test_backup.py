"""``ledgerdesk admin backup``: create while serving, verify, restore into an empty data
directory or database; refusals; a backup under write load keeps every answered write."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from ledgerdesk import backup
from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.models import Ticket
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.servers import LEDGERDESK, free_port, running
from tests.support import Caller, assert_success, call, json_attachment

pytestmark = pytest.mark.anyio


@contextmanager
def empty_database(
    request: pytest.FixtureRequest, backend: str, data_dir: Path
) -> Iterator[Settings]:
    """Settings naming a new, empty database and data directory of the backend's kind."""
    if backend == "sqlite":
        yield Settings(data_dir=data_dir)
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    name = f"ledgerdesk_restore_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        yield Settings(database_url=url, data_dir=data_dir)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def titles(settings: Settings) -> list[str]:
    runtime = Runtime.build(settings)
    try:
        with runtime.transaction(write=False) as (session, _):
            return list(session.scalars(select(Ticket.title).order_by(Ticket.id)))
    finally:
        runtime.engine.dispose()


def storage_verify(settings: Settings) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "--database-url",
            settings.database_url,
            "--data-dir",
            str(settings.data_dir),
            "admin",
            "storage",
            "verify",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


async def test_a_backup_verifies_and_restores_into_an_empty_database(
    client: httpx.AsyncClient,
    runtime: Runtime,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    caller = make_customer(runtime)
    for n in range(3):
        assert_success(
            await call(
                client,
                caller,
                "createTicket",
                title=f"Disk {n}",
                content="Full.",
                attachments=[json_attachment(f"df{n}.txt", f"/dev/sda{n} 100%".encode())],
            )
        )
    manifest = backup.create(runtime, tmp_path / "backup")
    assert manifest["revision"]
    assert manifest["counts"]["tickets"] == 3
    assert manifest["counts"]["attachments"] == 3
    names = {entry["path"] for entry in manifest["files"]}
    if backend == "sqlite":
        assert "ledgerdesk.sqlite3" in names
        assert sum(name.startswith("attachments/") for name in names) == 3
    else:
        assert names == {"database.dump"}  # attachments are in the database
    assert backup.verify(tmp_path / "backup").ok

    with empty_database(request, backend, tmp_path / "restored") as target:
        report = backup.restore(tmp_path / "backup", target)
        assert report.ok, report.problems
        assert titles(target) == ["Disk 0", "Disk 1", "Disk 2"]
        found = storage_verify(target)
        assert (found["checked"], found["missing"], found["corrupt"]) == (3, [], [])
        # Into a database that now holds data: refused, nothing touched.
        with pytest.raises(backup.BackupError, match="empty"):
            backup.restore(tmp_path / "backup", target)
        assert titles(target) == ["Disk 0", "Disk 1", "Disk 2"]


def test_a_changed_or_missing_file_fails_verification(runtime: Runtime, tmp_path: Path) -> None:
    make_customer(runtime)
    directory = tmp_path / "backup"
    manifest = backup.create(runtime, directory)
    database = directory / manifest["files"][0]["path"]
    data = bytearray(database.read_bytes())
    data[len(data) // 2] ^= 0xFF
    database.write_bytes(bytes(data))
    report = backup.verify(directory)
    assert report.problems == [f"{manifest['files'][0]['path']}: changed (size or SHA-256 differs)"]
    database.unlink()
    assert backup.verify(directory).problems == [f"{manifest['files'][0]['path']}: missing"]
    with pytest.raises(backup.BackupError, match="does not verify"):
        backup.restore(directory, Settings(data_dir=tmp_path / "elsewhere"))


def test_refusals(runtime: Runtime, tmp_path: Path, backend: str) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "something").write_text("mine")
    with pytest.raises(backup.BackupError, match="not an empty directory"):
        backup.create(runtime, occupied)
    with pytest.raises(backup.BackupError, match=r"no manifest\.json"):
        backup.verify(occupied)
    directory = tmp_path / "backup"
    backup.create(runtime, directory)
    other = (
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", data_dir=tmp_path)
        if backend == "sqlite"
        else Settings(data_dir=tmp_path / "sqlite")
    )
    with pytest.raises(backup.BackupError, match="is a backup of a"):
        backup.restore(directory, other)
    # A manifest naming a table that is not ledgerdesk's is a problem, not a query.
    manifest = json.loads((directory / "manifest.json").read_text())
    if backend == "sqlite":
        manifest["counts"]['x"; DROP TABLE users; --'] = 1
        (directory / "manifest.json").write_text(json.dumps(manifest))
        assert backup.verify(directory).problems == [
            'x"; DROP TABLE users; --: not a table of ledgerdesk'
        ]


def test_the_commands(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    make_customer(runtime)
    base = ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir)]
    made = CliRunner().invoke(
        cli, [*base, "admin", "backup", "create", str(tmp_path / "b"), "--json"]
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["counts"]["users"] == 1
    checked = CliRunner().invoke(cli, ["admin", "backup", "verify", str(tmp_path / "b")])
    assert checked.exit_code == 0
    assert "verifies" in checked.stdout
    (tmp_path / "b" / "manifest.json").write_text("{")
    broken = CliRunner().invoke(cli, ["admin", "backup", "verify", str(tmp_path / "b")])
    assert broken.exit_code == 1
    assert "not readable JSON" in broken.output


# -- under write load ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_backup_under_write_load_keeps_every_write_answered_before_it_began(
    runtime: Runtime,
    settings: Settings,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    caller = make_customer(runtime)
    runtime.engine.dispose()
    port = free_port()
    env = {
        "LEDGERDESK_DATABASE_URL": settings.database_url,
        "LEDGERDESK_DATA_DIR": str(settings.data_dir),
        "LEDGERDESK_RATE_LIMIT": "1000000",
    }
    answered: list[tuple[float, int]] = []  # when the answer came, the ticket's id
    stop = threading.Event()

    def write(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                body = Caller(caller.user_id, caller.api_key).body(
                    "createTicket",
                    title=f"w{worker}-{n}",
                    content="Load.",
                    attachments=[json_attachment("n.txt", f"{worker}-{n}".encode())],
                )
                answer = http.post("/api/rest/v2/administration", json=body).json()
                assert answer["status"] == "Success", answer
                answered.append((time.monotonic(), answer["data"]["ticketId"]))

    with running(["serve", "--port", str(port)], port, env):
        writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
        for thread in writers:
            thread.start()
        time.sleep(1.5)
        began = time.monotonic()
        made = subprocess.run(
            [*LEDGERDESK, "admin", "backup", "create", str(tmp_path / "backup")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        time.sleep(0.5)
        stop.set()
        for thread in writers:
            thread.join()
    assert made.returncode == 0, made.stderr
    before = {ticket for at, ticket in answered if at < began}
    assert len(before) >= 5
    assert len(answered) > len(before)  # writes went on during the backup
    with empty_database(request, backend, tmp_path / "restored") as target:
        report = backup.restore(tmp_path / "backup", target)
        assert report.ok, report.problems
        restored = Runtime.build(target)
        try:
            with restored.transaction(write=False) as (session, _):
                ids = set(session.scalars(select(Ticket.id)))
        finally:
            restored.engine.dispose()
        assert before <= ids
        found = storage_verify(target)
        assert (found["missing"], found["corrupt"]) == ([], [])
        assert found["checked"] == len(ids)
