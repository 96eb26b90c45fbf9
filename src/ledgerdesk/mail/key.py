"""The key that signs the tags of what ledgerdesk mails (``mail.tags``): one per
database, shared by every server of it."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledgerdesk.db.models import MailKey

MAIL_KEY_ID = 1


def mail_key(session: Session) -> bytes:
    """The key (made when the database has none: the migration makes it, a database
    emptied by hand has lost it; two servers making it at once agree on the first)."""
    row = session.get(MailKey, MAIL_KEY_ID)
    if row is None:
        try:
            with session.begin_nested():
                session.add(MailKey(id=MAIL_KEY_ID, key=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another transaction made it a moment ago: theirs is the key
        row = session.get(MailKey, MAIL_KEY_ID)
        assert row is not None
    return bytes.fromhex(row.key)
