"""Mail, continued: the ticket a held mail names (``mail_messages.named_ticket_id``, for
the staff who accept it), when a customer's added address was added and confirmed
(``mail_addresses.added_at``/``confirmed_at``: only a confirmed one threads mail), and
a lease on each IMAP mailbox (``mail_fetchers.holder``/``lease_until``): one server
fetches it at a time.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mail_messages", recreate="never") as messages:
        messages.add_column(sa.Column("named_ticket_id", sa.BigInteger, nullable=True))
    with op.batch_alter_table("mail_addresses", recreate="never") as addresses:
        addresses.add_column(sa.Column("added_at", sa.BigInteger, nullable=True))
        addresses.add_column(sa.Column("confirmed_at", sa.BigInteger, nullable=True))
    with op.batch_alter_table("mail_fetchers", recreate="never") as fetchers:
        fetchers.add_column(sa.Column("holder", sa.String(64), nullable=True))
        fetchers.add_column(sa.Column("lease_until", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_fetchers", recreate="never") as fetchers:
        fetchers.drop_column("lease_until")
        fetchers.drop_column("holder")
    with op.batch_alter_table("mail_addresses", recreate="never") as addresses:
        addresses.drop_column("confirmed_at")
        addresses.drop_column("added_at")
    with op.batch_alter_table("mail_messages", recreate="never") as messages:
        messages.drop_column("named_ticket_id")
