"""One customer's tickets in the staff queue, read in waiting order from an index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_tickets_user_id_last_updated_at"), "tickets", ["user_id", "last_updated_at", "id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_user_id_last_updated_at"), "tickets")
