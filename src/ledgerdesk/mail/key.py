"""The key that signs the tags of what ledgerdesk mails (``mail.tags``): one per
database, shared by every server of it."""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from ledgerdesk.db.models import MailKey

MAIL_KEY_ID = 1


def mail_key(session: Session) -> bytes:
    """The key (made when the database has none)."""
    row = session.get(MailKey, MAIL_KEY_ID)
    if row is None:
        row = MailKey(id=MAIL_KEY_ID, key=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.key)
