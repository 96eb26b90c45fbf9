"""Service levels on tickets: since when the customer waits for an answer
(``waiting_since``: their first unanswered message, or the end of waiting for them),
when staff first answered (``answered_at``: the first response's target is met, the
next ones count from then on), and when the running target falls due (``due_at``; none
while it is the customer's turn or the ticket is closed), which the queue sorts by.
Existing tickets: answered from their first public staff message; a target is set on
each one's next change.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.add_column(sa.Column("waiting_since", sa.BigInteger, nullable=True))
        tickets.add_column(sa.Column("answered_at", sa.BigInteger, nullable=True))
        tickets.add_column(sa.Column("due_at", sa.BigInteger, nullable=True))
    op.execute(
        """
        UPDATE tickets SET
          answered_at = (
            SELECT min(r.created_at) FROM ticket_replies r JOIN users u ON u.id = r.author_id
            WHERE r.ticket_id = tickets.id AND r.internal = false AND u.is_staff = true),
          waiting_since = CASE WHEN turn = 1 AND status = 1 THEN customer_said_at END
        """
    )
    op.create_index("ix_tickets_status_due_at", "tickets", ["status", "due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_status_due_at", "tickets")
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.drop_column("due_at")
        tickets.drop_column("answered_at")
        tickets.drop_column("waiting_since")
