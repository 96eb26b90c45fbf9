"""Tickets get an owner and a turn: ``assignee_id`` (the staff member who has it, or
none), ``turn`` (1: ours, the customer spoke last; 2: the customer's, staff spoke
last), ``customer_said_at`` (the customer's last public message: the queue's clock) and
``pending_until`` (waiting for the customer until then; back in our queue when it
passes). Existing tickets get their turn from their last public message.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (users are disabled, never deleted: the assignee needs no foreign key,
    # which SQLite could only add by copying tickets, under every table that names one).
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.add_column(sa.Column("assignee_id", sa.BigInteger, nullable=True))
        tickets.add_column(
            sa.Column("turn", sa.SmallInteger, nullable=False, server_default=sa.text("1"))
        )
        tickets.add_column(sa.Column("customer_said_at", sa.BigInteger, nullable=True))
        tickets.add_column(sa.Column("pending_until", sa.BigInteger, nullable=True))
    # Each ticket's turn and clock from its messages as they stand.
    op.execute(
        """
        UPDATE tickets SET
          customer_said_at = (
            SELECT max(r.created_at) FROM ticket_replies r
            WHERE r.ticket_id = tickets.id AND r.author_id = tickets.user_id
              AND r.internal = false),
          turn = CASE WHEN (
            SELECT u.is_staff FROM ticket_replies r JOIN users u ON u.id = r.author_id
            WHERE r.ticket_id = tickets.id AND r.internal = false
            ORDER BY r.id DESC LIMIT 1) THEN 2 ELSE 1 END
        """
    )
    op.create_index(
        "ix_tickets_status_assignee_id_last_updated_at",
        "tickets",
        ["status", "assignee_id", "last_updated_at", "id"],
    )
    op.create_index(
        "ix_tickets_status_turn_last_updated_at",
        "tickets",
        ["status", "turn", "last_updated_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_status_turn_last_updated_at", "tickets")
    op.drop_index("ix_tickets_status_assignee_id_last_updated_at", "tickets")
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.drop_column("pending_until")
        tickets.drop_column("customer_said_at")
        tickets.drop_column("turn")
        tickets.drop_column("assignee_id")
