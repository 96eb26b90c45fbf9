"""Free-text search that means the same on SQLite and PostgreSQL.

Two tools. ``like_pattern`` finds a piece of text anywhere in a short column (a
customer's name in the console's list of customers). The console's ticket search goes
through an index instead: every ticket and every message has an entry in
``search_entries`` whose ``words`` are its text folded here, in Python, to plain
lower-case words without accents (``words``), so that "zoe" finds "Zoë" and both
databases see the same words: PostgreSQL indexes them with ``to_tsvector('simple', ...)``
(GIN), SQLite with FTS5 (``search_fts``). A query is folded the same way and every word
of it must be a word of one entry (the ticket's or one message's), the last one possibly
only its start (it may still be being typed): a whole word is one lookup in the index,
the start of a word several.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from ledgerdesk.db.models import SearchEntry, Ticket, User
from ledgerdesk.db.prepared import PreparedInsert, session_db

# The escape character of every pattern made by like_pattern.
ESCAPE = "\\"
# A query's words beyond these are ignored (each one is a lookup in the index).
MAX_TERMS = 8
# Shorter words of a query are looked for whole ("ip" never means every word starting
# with i-p: a prefix of one or two letters would read most of the index).
MIN_PREFIX = 3

_WORD = re.compile(r"[^\W_]+")
# Combining marks left by NFKD (accents, diaereses, cedillas, ...): removed.
_MARKS = dict.fromkeys(
    c
    for low, high in ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF))
    for c in range(low, high + 1)
) | dict.fromkeys(range(0xFE20, 0xFE30))


def like_pattern(text: str) -> str:
    """A LIKE pattern finding ``text`` anywhere in a lower-cased column, wildcards escaped.

    Used as ``func.lower(column).like(like_pattern(text), escape=ESCAPE)``.
    """
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def words(*texts: str | None) -> str:
    """The words of ``texts``, folded for the index: compatibility-decomposed, accents
    dropped, case-folded, everything but letters and digits a space between words;
    the databases see nothing else, so both split them into the same words
    ("Zoë's  ÉCOLE-12" -> "zoe s ecole 12")."""
    joined = " ".join(text for text in texts if text)
    folded = unicodedata.normalize("NFKD", joined).translate(_MARKS).casefold()
    # Composed again: marks that are part of a letter (Japanese kana's) stay with it.
    return " ".join(_WORD.findall(unicodedata.normalize("NFC", folded)))


def terms(query: str) -> list[str]:
    """What a search for ``query`` looks for: its folded words, at most ``MAX_TERMS``."""
    return list(dict.fromkeys(words(query).split()))[:MAX_TERMS]


def _prefix(found: list[str], index: int) -> bool:
    """Whether a term may be the start of a word: the last one (as it is being typed),
    of ``MIN_PREFIX`` letters or more."""
    return index == len(found) - 1 and len(found[index]) >= MIN_PREFIX


def fts5_match(found: list[str]) -> str:
    """An FTS5 query: every term a whole word, the last one possibly its start (terms
    are letters and digits only, so quoting them is safe)."""
    return " ".join(
        f'"{term}"*' if _prefix(found, n) else f'"{term}"' for n, term in enumerate(found)
    )


def tsquery(found: list[str]) -> str:
    """The same as a PostgreSQL ``to_tsquery('simple', ...)`` text."""
    return " & ".join(f"{term}:*" if _prefix(found, n) else term for n, term in enumerate(found))


def match_for(dialect: str, found: list[str]) -> str:
    """The index's query for these terms on this database (SQLAlchemy's dialect name)."""
    return fts5_match(found) if dialect == "sqlite" else tsquery(found)


class SearchIndex:
    """Keeps ``search_entries`` in step with the tickets, messages and customers it
    describes; called by the services, inside the write's own transaction (a write and
    its index entry commit together)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_ticket(self, ticket_id: int) -> None:
        row = self.session.execute(_TICKET_WORDS.where(Ticket.id == ticket_id)).one()
        _ENTRY.insert(
            session_db(self.session), {"ticket_id": ticket_id, "words": ticket_words(*row)}
        )

    def add_message(self, reply_id: int, content: str) -> None:
        _ENTRY.insert(session_db(self.session), {"reply_id": reply_id, "words": words(content)})

    def customer_changed(self, user_id: int) -> None:
        """A customer's name or email changed: so did the entries of their tickets."""
        rows = self.session.execute(
            _TICKET_WORDS.add_columns(Ticket.id).where(Ticket.user_id == user_id)
        ).all()
        if rows:
            entries = SearchEntry.__table__
            assert isinstance(entries, Table)
            self.session.connection().execute(
                update(entries)
                .where(entries.c.ticket_id == bindparam("ticket"))
                .values(words=bindparam("folded")),
                [{"ticket": row[-1], "folded": ticket_words(*row[:-1])} for row in rows],
            )


# What a ticket's entry holds: its code, title, reference, and who its customer is.
_TICKET_WORDS = select(Ticket.code, Ticket.title, Ticket.reference, User.name, User.email).join(
    User, User.id == Ticket.user_id
)
_ENTRY = PreparedInsert(SearchEntry)


def ticket_words(code: int, title: str, reference: str, name: str, email: str | None) -> str:
    """A ticket's entry."""
    return words(str(code), title, reference, name, email)
