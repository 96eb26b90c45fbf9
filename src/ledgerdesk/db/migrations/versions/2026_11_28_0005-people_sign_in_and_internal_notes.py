"""People sign in (passwords, sessions, links, TOTP); internal notes; staff list indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        users.add_column(sa.Column("disabled_at", sa.BigInteger, nullable=True))
        users.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        users.add_column(sa.Column("totp_last_step", sa.BigInteger, nullable=True))
        users.add_column(sa.Column("recovery_codes", sa.JSON, nullable=True))
    with op.batch_alter_table("ticket_replies") as replies:
        replies.add_column(
            sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index(
        op.f("ix_tickets_status_last_updated_at"), "tickets", ["status", "last_updated_at", "id"]
    )
    op.create_index(
        op.f("ix_tickets_status_priority_last_updated_at"),
        "tickets",
        ["status", "priority", "last_updated_at", "id"],
    )
    op.create_index(
        op.f("ix_invoices_unpaid_pay_before"),
        "invoices",
        ["pay_before", "id"],
        sqlite_where=sa.text("paid_on IS NULL"),
        postgresql_where=sa.text("paid_on IS NULL"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
    op.create_table(
        "user_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_tokens")),
    )
    op.create_index(op.f("ix_user_tokens_user_id"), "user_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("user_tokens")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_invoices_unpaid_pay_before"), "invoices")
    op.drop_index(op.f("ix_tickets_status_priority_last_updated_at"), "tickets")
    op.drop_index(op.f("ix_tickets_status_last_updated_at"), "tickets")
    with op.batch_alter_table("ticket_replies") as replies:
        replies.drop_column("internal")
    with op.batch_alter_table("users") as users:
        for column in (
            "recovery_codes",
            "totp_last_step",
            "totp_secret",
            "disabled_at",
            "password_hash",
        ):
            users.drop_column(column)
