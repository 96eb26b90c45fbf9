"""Store an API key's absent categories and IP ranges as SQL NULL, not JSON null.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keys made before this revision kept "all categories" / "any address" as the JSON
    # text null; SQL NULL says the same and needs no decoding on every request.
    for column in ("categories", "ip_ranges"):
        op.execute(
            f"UPDATE api_keys SET {column} = NULL "  # noqa: S608 - fixed column names
            f"WHERE {column} IS NOT NULL AND CAST({column} AS TEXT) = 'null'"
        )


def downgrade() -> None:
    """SQL NULL reads back as None just as JSON null did: nothing to undo."""
