"""The event log: every change, recorded by the domain in the change's transaction.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # SQLite: AUTOINCREMENT, so that an id is never handed out twice (without it, the
    # newest row deleted would give its id to the next one).
    op.create_table(
        "events",
        sa.Column("id", Id, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("door", sa.String(16), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.BigInteger, nullable=True),
        sa.Column("key_id", sa.BigInteger, nullable=True),
        sa.Column("customer_id", sa.BigInteger, nullable=True),
        sa.Column("subject_id", sa.BigInteger, nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("client_address", sa.String(45), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_customer_id_id"), "events", ["customer_id", "id"])
    op.create_index(op.f("ix_events_subject_id_id"), "events", ["subject_id", "id"])
    op.create_index(op.f("ix_events_type_id"), "events", ["type", "id"])
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])


def downgrade() -> None:
    op.drop_table("events")
