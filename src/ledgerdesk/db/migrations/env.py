"""Alembic environment: always driven from ledgerdesk.db.migrate with a live connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ledgerdesk.db.migrate import in_models
from ledgerdesk.db.models import Base

# Any constant works; it only has to be the same for every ledgerdesk process.
_MIGRATION_LOCK_ID = 0x1ED6E7D5


def run_migrations_online() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `ledgerdesk db upgrade`")
    if connection.dialect.name == "postgresql":
        # Several servers may start at once against one database: one migrates, the
        # others wait here and then find nothing left to do.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=in_models,
    )
    context.run_migrations()


run_migrations_online()
