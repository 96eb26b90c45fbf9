"""A ticket merged into another (``tickets.merged_into_id``): its messages and files
moved there; it stays, closed for good, with a message that points to the other.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.add_column(sa.Column("merged_into_id", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets", recreate="never") as tickets:
        tickets.drop_column("merged_into_id")
