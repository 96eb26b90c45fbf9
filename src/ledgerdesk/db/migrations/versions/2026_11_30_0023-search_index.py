"""The console's search index (``search_entries``): one entry a ticket, one a message,
their words folded in Python (``db.search.words``); PostgreSQL indexes them with GIN over
the generated column ``search_vector`` (``to_tsvector('simple', words)``), SQLite with
the FTS5 table ``search_fts``, whose
content is the entries' own column, kept in step by triggers. Existing tickets and
messages get their entries here.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledgerdesk.db.search import ticket_words, words

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

# SQLite's side of the index: FTS5 reading its text from search_entries.words.
SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE search_fts USING fts5(words, content='search_entries', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER search_entries_added AFTER INSERT ON search_entries BEGIN "
    "INSERT INTO search_fts(rowid, words) VALUES (new.id, new.words); END",
    "CREATE TRIGGER search_entries_removed AFTER DELETE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, words) VALUES ('delete', old.id, old.words); "
    "END",
    "CREATE TRIGGER search_entries_changed AFTER UPDATE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, words) VALUES ('delete', old.id, old.words); "
    "INSERT INTO search_fts(rowid, words) VALUES (new.id, new.words); END",
)


def upgrade() -> None:
    op.create_table(
        "search_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=True),
        sa.Column("reply_id", sa.BigInteger, nullable=True),
        sa.Column("words", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_search_entries_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["ticket_replies.id"],
            name=op.f("fk_search_entries_reply_id_ticket_replies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_entries")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_search_entries_ticket_id")),
        sa.UniqueConstraint("reply_id", name=op.f("uq_search_entries_reply_id")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_INDEX:
            bind.exec_driver_sql(statement)
    else:
        # The words as PostgreSQL's lexemes, kept by the database itself: a match that
        # must be checked again (every prefix match is) reads them instead of parsing.
        op.execute(
            "ALTER TABLE search_entries ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', words)) STORED"
        )
    _fill(bind)
    if bind.dialect.name == "postgresql":
        # After the fill: one build of the index instead of a million updates to it.
        op.execute(
            "CREATE INDEX ix_search_entries_search_vector ON search_entries "
            "USING gin (search_vector)"
        )


def _fill(bind: sa.Connection) -> None:
    entries = sa.table(
        "search_entries", sa.column("ticket_id"), sa.column("reply_id"), sa.column("words")
    )
    tickets = sa.text(
        "SELECT t.id, t.code, t.title, t.reference, u.name, u.email FROM tickets t "
        "JOIN users u ON u.id = t.user_id WHERE t.id > :after ORDER BY t.id LIMIT :batch"
    )
    after = 0
    while rows := bind.execute(tickets, {"after": after, "batch": BATCH}).all():
        bind.execute(
            sa.insert(entries),
            [{"ticket_id": row[0], "words": ticket_words(*row[1:])} for row in rows],
        )
        after = rows[-1][0]
    replies = sa.text(
        "SELECT id, content FROM ticket_replies WHERE id > :after ORDER BY id LIMIT :batch"
    )
    after = 0
    while rows := bind.execute(replies, {"after": after, "batch": BATCH}).all():
        bind.execute(
            sa.insert(entries), [{"reply_id": row[0], "words": words(row[1])} for row in rows]
        )
        after = rows[-1][0]


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TABLE search_fts")
    op.drop_table("search_entries")
