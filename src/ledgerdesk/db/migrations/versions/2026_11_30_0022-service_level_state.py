"""Which service levels the tickets' due times were computed with (``service_level_state``,
one row: a fingerprint of the business hours, holidays, zone and targets). A server that
starts with other settings computes every open ticket's due time again (and the first
start after 0021 computes them for the tickets from before it).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_level_state",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_level_state")),
    )


def downgrade() -> None:
    op.drop_table("service_level_state")
