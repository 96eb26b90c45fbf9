"""Tags on tickets (staff's labels: ``ticket_tags``, a ticket's tag a row), read by the
queue's filter through ``(tag, ticket_id)``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_tags",
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_tags_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "tag", name=op.f("pk_ticket_tags")),
    )
    op.create_index("ix_ticket_tags_tag_ticket_id", "ticket_tags", ["tag", "ticket_id"])


def downgrade() -> None:
    op.drop_table("ticket_tags")
