"""A customer's ticket overview read from one covering index.

The overview (the action customers poll most) read 20 ticket rows from the table after
finding them in ``(user_id, created_at, id)``: at a million tickets, random page reads
were half of the query's time. The new index holds every column the answer needs and
starts with the same three, so every query that used the old one uses it instead.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = [
    "user_id",
    "created_at",
    "id",
    "code",
    "title",
    "reference",
    "status",
    "priority",
    "status_updated_at",
    "last_updated_at",
]


def upgrade() -> None:
    op.create_index("ix_tickets_overview", "tickets", _COLUMNS)
    op.drop_index("ix_tickets_user_id_created_at", "tickets")


def downgrade() -> None:
    op.create_index("ix_tickets_user_id_created_at", "tickets", ["user_id", "created_at", "id"])
    op.drop_index("ix_tickets_overview", "tickets")
