"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import alembic_config, head_revision, in_models
from ledgerdesk.db.models import Base
from ledgerdesk.db.prepared import Db
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import QueueFilter, TicketQueries


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": in_models}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_queries_have_their_indexes(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        indexes = {tuple(ix["column_names"]) for ix in inspect(engine).get_indexes("invoices")}
        assert ("user_id", "created_on", "id", "kind") in indexes
    finally:
        engine.dispose()


def test_db_upgrade_reports_the_revision_and_is_repeatable(database_url: str) -> None:
    for _ in range(2):
        result = CliRunner().invoke(
            cli, ["--database-url", database_url, "db", "upgrade", "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"revision": head_revision()}


def test_db_upgrade_creates_the_default_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "db", "upgrade"], env={"LEDGERDESK_DATABASE_URL": ""}
    )
    assert result.exit_code == 0, result.output
    assert (data_dir / "ledgerdesk.sqlite3").is_file()
    assert head_revision() in result.stdout


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    runtime = Runtime.build(Settings.from_env({"LEDGERDESK_DATA_DIR": str(tmp_path)}))
    try:
        with runtime.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        runtime.engine.dispose()


@contextmanager
def old_database(migrated_database: str, tmp_path: Path, **settings: Any) -> Iterator[Runtime]:
    """An empty database of its own, beside the test's, for a migration to start from."""
    # Built with make_url, never by splitting the string: a URL may carry its server's
    # socket in the query (?host=/path, as pgserver's do), after the database name.
    name = f"ledgerdesk_old_{tmp_path.name[-8:]}"
    if migrated_database.startswith("sqlite"):
        url = f"sqlite+pysqlite:///{tmp_path}/old.sqlite3"
    else:
        url = make_url(migrated_database).set(database=name).render_as_string(hide_password=False)
        admin = create_engine(migrated_database, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
    runtime = Runtime.build(Settings(database_url=url, data_dir=tmp_path / "data", **settings))
    try:
        yield runtime
    finally:
        runtime.engine.dispose()
        if not url.startswith("sqlite"):
            admin = create_engine(migrated_database, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            admin.dispose()


def migrate_to(runtime: Runtime, revision: str, **attributes: Any) -> None:
    config = alembic_config()
    config.attributes.update(attributes)
    with runtime.engine.begin() as connection:
        config.attributes["connection"] = connection
        if revision.startswith("-"):
            command.downgrade(config, revision[1:])
        else:
            command.upgrade(config, revision)


def test_blobs_stored_whole_before_0007_are_read_after_it(
    migrated_database: str, tmp_path: Path
) -> None:
    """A database store written by an older version keeps every attachment readable."""
    data = bytes(range(256)) * 5000  # 1.2 MiB, one row before, chunks of any size after
    sha256 = hashlib.sha256(data).hexdigest()
    with old_database(migrated_database, tmp_path, attachment_store="database") as runtime:
        migrate_to(runtime, "0006")
        with runtime.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO blobs (sha256, data) VALUES (:sha256, :data)"),
                {"sha256": sha256, "data": data},
            )
        migrate_to(runtime, "head")
        with runtime.engine.connect() as connection:
            db = Db(connection.connection.driver_connection, connection.dialect)
            content = runtime.blobs.open(db, sha256)
            assert content is not None
            assert content.size == len(data)
            assert content.read() == data


def test_invoices_issued_before_0011_keep_their_amounts_as_one_line(
    migrated_database: str, tmp_path: Path
) -> None:
    """Each invoice of an older version becomes one line in the configured currency, its
    VAT as it was computed then, its numbering going on; and the way back works."""
    with old_database(migrated_database, tmp_path) as runtime:
        migrate_to(runtime, "0010")
        with runtime.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_staff, created_at) VALUES (1, 'Ann', false, 0)"
                )
            )
            for number, amount, rate, paid in (
                ("F26-0000001", 1250, 550, "2026-03-04"),
                ("F26-0000002", 35000, 2100, None),
            ):
                connection.execute(
                    text(
                        "INSERT INTO invoices (user_id, number, title, description, created_on,"
                        " pay_before, amount_excl_vat_cents, vat_perc_hundredths, paid_on)"
                        " VALUES (1, :number, 'Server', '', '2026-03-01', '2026-03-31',"
                        " :amount, :rate, :paid)"
                    ),
                    {"number": number, "amount": amount, "rate": rate, "paid": paid},
                )
            connection.execute(
                text("INSERT INTO invoice_counters (year, last_seq) VALUES (2026, 2)")
            )
        migrate_to(runtime, "head", currency="USD")
        with runtime.engine.connect() as connection:
            db = Db(connection.connection.driver_connection, connection.dialect)
            reader = InvoiceReader(InvoiceQueries(db))
            first = reader.details_with_lines(1, 1)
            second = reader.details_with_lines(1, 2)
        assert (first.view.amount_net, first.view.vat, first.view.status) == (
            Decimal("13.19"),
            Decimal("0.69"),
            "paid",
        )
        assert (first.view.currency, first.view.amount_paid, first.view.amount_due) == (
            "USD",
            Decimal("13.19"),
            0,
        )
        (line,) = second.lines
        assert (line.quantity, line.unit_price, line.vat_perc, line.amount_excl_vat) == (
            1,
            Decimal(350),
            Decimal("21.00"),
            Decimal("350.00"),
        )
        assert second.view.amount_due == Decimal("423.50")
        with runtime.engine.begin() as connection:
            next_number = connection.execute(
                text("SELECT last_seq FROM document_counters WHERE series = 'F' AND year = 2026")
            ).scalar_one()
        assert next_number == 2
        migrate_to(runtime, "-0010")
        with runtime.engine.connect() as connection:
            back = connection.execute(
                text("SELECT amount_excl_vat_cents, vat_perc_hundredths FROM invoices ORDER BY id")
            ).all()
            counters = connection.execute(text("SELECT year, last_seq FROM invoice_counters")).all()
        assert [tuple(row) for row in back] == [(1250, 550), (35000, 2100)]
        assert [tuple(row) for row in counters] == [(2026, 2)]


def test_tickets_from_before_0023_are_found_by_the_search(
    migrated_database: str, tmp_path: Path
) -> None:
    """The search index is filled with every older ticket and message (and the way back
    drops it)."""
    with old_database(migrated_database, tmp_path) as runtime:
        migrate_to(runtime, "0022")
        with runtime.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, email, is_staff, is_admin, created_at)"
                    " VALUES (1, 'Zoë Ådler', 'zoe@example.net', false, false, 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO tickets (id, code, user_id, title, reference, status,"
                    " priority, created_at, status_updated_at, last_updated_at, turn)"
                    " VALUES (7, 12345678, 1, 'Old one', 'ORD-1', 1, 2, 0, 0, 0, 1)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO ticket_replies (ticket_id, author_id, created_at, title,"
                    " content, internal) VALUES (7, 1, 0, 'Old one', 'The kernel panicked.',"
                    " false)"
                )
            )
        migrate_to(runtime, "head")
        with runtime.engine.connect() as connection:
            queries = TicketQueries(Db(connection.connection.driver_connection, connection.dialect))
            for query in ("zoe", "12345678", "ord 1", "kernel panic", "old"):
                found = queries.search(
                    QueueFilter(status=None), query, sort="best", offset=0, limit=5
                )
                assert [row.id for row in found] == [7], query
        migrate_to(runtime, "-0022")
        assert "search_entries" not in inspect(runtime.engine).get_table_names()
