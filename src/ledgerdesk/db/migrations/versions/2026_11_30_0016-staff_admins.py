"""Staff members who administer the others (``users.is_admin``): they invite, disable
and enable staff, give and take the admin role, and read the audit trail in the
console. Every staff member there before is one (each could do everything).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place: copying users would trip the foreign keys of every table that names one.
    with op.batch_alter_table("users", recreate="never") as users:
        users.add_column(
            sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute(sa.text("UPDATE users SET is_admin = is_staff"))


def downgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as users:
        users.drop_column("is_admin")
