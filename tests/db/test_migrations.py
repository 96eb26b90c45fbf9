"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import alembic_config, head_revision
from ledgerdesk.db.models import Base
from ledgerdesk.db.prepared import Db
from ledgerdesk.runtime import Runtime


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
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


def test_blobs_stored_whole_before_0007_are_read_after_it(
    migrated_database: str, tmp_path: Path
) -> None:
    """A database store written by an older version keeps every attachment readable."""
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
    runtime = Runtime.build(
        Settings(database_url=url, data_dir=tmp_path / "data", attachment_store="database")
    )
    data = bytes(range(256)) * 5000  # 1.2 MiB, one row before, chunks of any size after
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        config = alembic_config()
        with runtime.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
            connection.execute(
                text("INSERT INTO blobs (sha256, data) VALUES (:sha256, :data)"),
                {"sha256": sha256, "data": data},
            )
        with runtime.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        with runtime.engine.connect() as connection:
            db = Db(connection.connection.driver_connection, connection.dialect)
            content = runtime.blobs.open(db, sha256)
            assert content is not None
            assert content.size == len(data)
            assert content.read() == data
    finally:
        runtime.engine.dispose()
        if not url.startswith("sqlite"):
            admin = create_engine(migrated_database, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            admin.dispose()
