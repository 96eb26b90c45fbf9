"""Who is on a ticket's page now, and who is writing a reply there
(``ticket_views.here_until``, ``typing_until``): the collision warning.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_views", recreate="never") as views:
        views.add_column(sa.Column("here_until", sa.BigInteger, nullable=True))
        views.add_column(sa.Column("typing_until", sa.BigInteger, nullable=True))
    op.create_index(
        "ix_ticket_views_ticket_id_here_until", "ticket_views", ["ticket_id", "here_until"]
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_views_ticket_id_here_until", table_name="ticket_views")
    with op.batch_alter_table("ticket_views", recreate="never") as views:
        views.drop_column("typing_until")
        views.drop_column("here_until")
