"""When each staff member last opened each ticket (``ticket_views``): a ticket whose
customer wrote since is unread for them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_views",
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_views_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "ticket_id", name=op.f("pk_ticket_views")),
    )


def downgrade() -> None:
    op.drop_table("ticket_views")
