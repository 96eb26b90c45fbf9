"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import head_revision
from ledgerdesk.db.models import Base
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
        assert ("user_id", "created_on", "id") in indexes
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
