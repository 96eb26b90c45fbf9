"""Notices shown once after a form (web_notices); expired idempotency rows found by age.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_notices",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("sealed", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_hash"],
            ["web_sessions.token_hash"],
            name=op.f("fk_web_notices_session_hash_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_notices")),
    )
    op.create_index(op.f("ix_web_notices_session_hash"), "web_notices", ["session_hash"])
    op.create_index(
        op.f("ix_idempotent_requests_created_at"), "idempotent_requests", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotent_requests_created_at"), table_name="idempotent_requests")
    op.drop_index(op.f("ix_web_notices_session_hash"), table_name="web_notices")
    op.drop_table("web_notices")
