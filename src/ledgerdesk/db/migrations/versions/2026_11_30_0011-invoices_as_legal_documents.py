"""Invoices as legal documents: the seller, customers' billing details, lines,
currencies, credit notes, payments, and a gapless series per kind of document.

Every invoice issued before keeps its one amount as one line (its title, quantity 1,
its amount, its rate) and the currency the server was configured with
(LEDGERDESK_CURRENCY, handed to the migration by ``db.migrate.upgrade``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    currency = str(context.config.attributes.get("currency", "EUR"))
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("legal_name", sa.String(200), nullable=True))
        users.add_column(sa.Column("vat_id", sa.String(32), nullable=True))
        users.add_column(sa.Column("address_line", sa.String(200), nullable=True))
        users.add_column(sa.Column("city", sa.String(100), nullable=True))
        users.add_column(sa.Column("postcode", sa.String(20), nullable=True))
        users.add_column(sa.Column("country", sa.String(2), nullable=True))
        users.add_column(sa.Column("billing_email", sa.String(320), nullable=True))
        users.add_column(sa.Column("electronic_address", sa.String(120), nullable=True))
    op.create_table(
        "seller",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vat_id", sa.String(32), nullable=False),
        sa.Column("address_line", sa.String(200), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("postcode", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("iban", sa.String(34), nullable=True),
        sa.Column("bic", sa.String(11), nullable=True),
        sa.Column("electronic_address", sa.String(120), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller")),
    )
    with op.batch_alter_table("invoices") as invoices:
        invoices.add_column(sa.Column("vat_cents", sa.BigInteger(), nullable=True))
        invoices.add_column(
            sa.Column("kind", sa.String(12), server_default="invoice", nullable=False)
        )
        invoices.add_column(sa.Column("corrects_id", sa.BigInteger(), nullable=True))
        invoices.add_column(
            sa.Column("currency", sa.String(3), server_default=currency, nullable=False)
        )
        invoices.add_column(
            sa.Column("treatment", sa.String(16), server_default="domestic", nullable=False)
        )
        invoices.add_column(sa.Column("exemption_reason", sa.Text(), nullable=True))
        invoices.add_column(sa.Column("tax_currency", sa.String(3), nullable=True))
        invoices.add_column(sa.Column("exchange_rate", sa.String(24), nullable=True))
        invoices.add_column(sa.Column("tax_currency_vat_cents", sa.BigInteger(), nullable=True))
        invoices.add_column(sa.Column("parties", sa.JSON(none_as_null=True), nullable=True))
        invoices.add_column(
            sa.Column("paid_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        invoices.add_column(
            sa.Column("credited_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        invoices.create_foreign_key(
            op.f("fk_invoices_corrects_id_invoices"),
            "invoices",
            ["corrects_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        invoices.create_index(op.f("ix_invoices_corrects_id"), ["corrects_id"])
        # getInvoiceIds reads the kind from the index: invoices, credit notes or both.
        invoices.drop_index("ix_invoices_user_id_created_on")
        invoices.create_index(
            "ix_invoices_user_id_created_on_id_kind", ["user_id", "created_on", "id", "kind"]
        )
    # The VAT of an invoice issued before, as it was computed then (half up to the cent);
    # one paid in full was paid its whole amount.
    op.execute(
        "UPDATE invoices SET vat_cents = (amount_excl_vat_cents * vat_perc_hundredths + 5000)"
        " / 10000"
    )
    op.execute(
        "UPDATE invoices SET paid_cents = amount_excl_vat_cents + vat_cents"
        " WHERE paid_on IS NOT NULL"
    )
    with op.batch_alter_table("invoices") as invoices:
        invoices.alter_column("vat_cents", existing_type=sa.BigInteger(), nullable=False)
        invoices.alter_column("currency", existing_type=sa.String(3), server_default=None)
    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity_e4", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_e4", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(2), nullable=False),
        sa.Column("rate", sa.Integer(), nullable=False),
        sa.Column("net_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "position", name=op.f("pk_invoice_lines")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO invoice_lines (invoice_id, position, description, quantity_e4,"
        " unit_price_e4, category, rate, net_cents)"
        " SELECT id, 1, title, 10000, amount_excl_vat_cents * 100,"
        " CASE WHEN vat_perc_hundredths > 0 THEN 'S' ELSE 'Z' END, vat_perc_hundredths,"
        " amount_excl_vat_cents FROM invoices"
    )
    op.create_table(
        "payments",
        sa.Column("id", Id, nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_payments_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"])
    op.create_table(
        "document_counters",
        sa.Column("series", sa.String(4), nullable=False),
        sa.Column("year", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "year", name=op.f("pk_document_counters")),
    )
    op.execute(
        "INSERT INTO document_counters (series, year, last_seq)"
        " SELECT 'F', year, last_seq FROM invoice_counters"
    )
    op.drop_table("invoice_counters")


def downgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_invoice_counters")),
    )
    op.execute(
        "INSERT INTO invoice_counters (year, last_seq)"
        " SELECT year, last_seq FROM document_counters WHERE series = 'F'"
    )
    op.drop_table("document_counters")
    op.drop_table("payments")
    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices") as invoices:
        invoices.drop_index("ix_invoices_user_id_created_on_id_kind")
        invoices.create_index("ix_invoices_user_id_created_on", ["user_id", "created_on", "id"])
        invoices.drop_index(op.f("ix_invoices_corrects_id"))
        invoices.drop_constraint(op.f("fk_invoices_corrects_id_invoices"), type_="foreignkey")
        for column in (
            "vat_cents",
            "kind",
            "corrects_id",
            "currency",
            "treatment",
            "exemption_reason",
            "tax_currency",
            "exchange_rate",
            "tax_currency_vat_cents",
            "parties",
            "paid_cents",
            "credited_cents",
        ):
            invoices.drop_column(column)
    op.drop_table("seller")
    # Columns dropped in place (SQLite 3.35+ can): copying users to drop them would trip
    # the foreign keys of every table that names a user.
    with op.batch_alter_table("users", recreate="never") as users:
        for column in (
            "legal_name",
            "vat_id",
            "address_line",
            "city",
            "postcode",
            "country",
            "billing_email",
            "electronic_address",
        ):
            users.drop_column(column)
