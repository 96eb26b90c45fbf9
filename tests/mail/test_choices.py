"""The staff's choices of mail are one list, where accounts keep them and where the
notifications read them."""

from __future__ import annotations

from ledgerdesk.accounts.service import MAIL_CHOICES
from ledgerdesk.mail.notifications import CHOICES


def test_the_choices_are_one_list() -> None:
    assert MAIL_CHOICES == CHOICES
