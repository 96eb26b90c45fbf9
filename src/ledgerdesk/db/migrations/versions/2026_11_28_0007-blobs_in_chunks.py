"""Attachment bytes of the database store in 1 MiB chunks, streamed piece by piece.

Existing blobs become one chunk each (readers take chunks of any size) and get their
size recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blob_chunks",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["blobs.sha256"],
            name=op.f("fk_blob_chunks_sha256_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sha256", "seq", name=op.f("pk_blob_chunks")),
    )
    op.add_column(
        "blobs", sa.Column("size", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
    )
    op.execute("INSERT INTO blob_chunks (sha256, seq, data) SELECT sha256, 0, data FROM blobs")
    op.execute("UPDATE blobs SET size = length(data)")  # bytes, for bytea and BLOB alike
    # A plain ALTER TABLE on SQLite too: recreating "blobs" (batch mode) would delete
    # every chunk through the foreign key.
    op.drop_column("blobs", "data")


def downgrade() -> None:
    op.add_column("blobs", sa.Column("data", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    hashes = [row[0] for row in connection.execute(sa.text("SELECT sha256 FROM blobs"))]
    for sha256 in hashes:
        pieces = connection.execute(
            sa.text("SELECT data FROM blob_chunks WHERE sha256 = :sha256 ORDER BY seq"),
            {"sha256": sha256},
        )
        connection.execute(
            sa.text("UPDATE blobs SET data = :data WHERE sha256 = :sha256"),
            {"data": b"".join(bytes(row[0]) for row in pieces), "sha256": sha256},
        )
    op.drop_table("blob_chunks")
    op.drop_column("blobs", "size")
