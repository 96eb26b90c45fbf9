"""Run the Alembic migrations from code (``ledgerdesk db upgrade`` and ``serve``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "ledgerdesk.db:migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s-%%(slug)s")
    return config


# What the models leave to migration 0023: the full-text index over search_entries
# (PostgreSQL's generated column and its index, SQLite's FTS5 table and its tables).
NOT_IN_MODELS = ("search_fts", "search_vector", "ix_search_entries_search_vector")


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: whether the models describe a schema object."""
    return not (name or "").startswith(NOT_IN_MODELS)


def upgrade(engine: Engine, *, currency: str = "EUR") -> str:
    """Bring the database to the newest schema and return the revision it is at.

    ``currency``: the server's configured currency (LEDGERDESK_CURRENCY), which invoices
    issued before invoices had a currency of their own were issued in."""
    config = alembic_config()
    config.attributes["currency"] = currency
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Building an index on a million rows may take longer than any request may.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
