"""Mail: received messages (kept whole, with where each went), what is known of
addresses (customers' added ones, failing ones), the key that signs outgoing mail's
tags (random, made here: every database its own), and which mail each staff member
wants (``users.mail_notify``: all, own or none).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WITH_ID = sa.text("message_id IS NOT NULL")
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as users:
        users.add_column(
            sa.Column("mail_notify", sa.String(8), nullable=False, server_default="all")
        )
    op.create_table(
        "mail_messages",
        sa.Column("id", Id, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("why", sa.String(500), nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=True),
        sa.Column("reply_id", sa.BigInteger, nullable=True),
        sa.Column("customer_id", sa.BigInteger, nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_mail_messages_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["users.id"],
            name=op.f("fk_mail_messages_customer_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
    )
    op.create_index(
        "ix_mail_messages_message_id_sender",
        "mail_messages",
        ["message_id", "sender"],
        unique=True,
        sqlite_where=WITH_ID,
        postgresql_where=WITH_ID,
    )
    op.create_index("ix_mail_messages_state_id", "mail_messages", ["state", "id"])
    op.create_index("ix_mail_messages_ticket_id", "mail_messages", ["ticket_id"])
    op.create_index("ix_mail_messages_raw_sha256", "mail_messages", ["raw_sha256"])
    op.create_table(
        "mail_addresses",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("failing_since", sa.BigInteger, nullable=True),
        sa.Column("failing_reason", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_addresses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_mail_addresses")),
    )
    op.create_index(op.f("ix_mail_addresses_user_id"), "mail_addresses", ["user_id"])
    key = op.create_table(
        "mail_key",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_key")),
    )
    op.bulk_insert(key, [{"id": 1, "key": secrets.token_hex(32)}])
    op.create_table(
        "mail_outbox",
        sa.Column("id", Id, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("recipient_id", sa.BigInteger, nullable=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("holder", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=True),
        sa.Column("mail_id", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(
        "ix_mail_outbox_due",
        "mail_outbox",
        ["next_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_mail_outbox_ticket_id_id", "mail_outbox", ["ticket_id", "id"])
    op.create_index("ix_mail_outbox_address_created_at", "mail_outbox", ["address", "created_at"])
    cursor = op.create_table(
        "mail_cursor",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_cursor")),
    )
    newest = op.get_bind().scalar(sa.text("SELECT coalesce(max(id), 0) FROM events"))
    op.bulk_insert(cursor, [{"id": 1, "last_event_id": int(newest or 0)}])
    op.create_table(
        "mail_fetchers",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("last_ok_at", sa.BigInteger, nullable=True),
        sa.Column("failing_since", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mail_fetchers")),
    )


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+ can): copying users would trip the foreign keys of
    # every table that names a user.
    with op.batch_alter_table("users", recreate="never") as users:
        users.drop_column("mail_notify")
    op.drop_table("mail_fetchers")
    op.drop_table("mail_cursor")
    op.drop_table("mail_outbox")
    op.drop_table("mail_key")
    op.drop_table("mail_addresses")
    op.drop_table("mail_messages")
