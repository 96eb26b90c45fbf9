"""Signed tags in what ledgerdesk sends, so that a reply finds its ticket and nothing
forged does.

- A notification's ``Message-ID`` is ``<ld.T.R.N.SIG@domain>``: ticket T, recipient
  (user) R, a random nonce N, and SIG, the first 20 characters of the base32 HMAC-SHA256
  of ``T.R.N`` under the server's mail key. A reply names it in ``In-Reply-To`` or
  ``References``; a guessed or altered one fails the signature.
- A ticket's reply address is the support address with a signed plus-part:
  ``support+T.SIG@domain`` (the same signature over ``T``), so that mail to it reaches
  the ticket even from a client that drops the threading headers.

- A customer's added address is confirmed by a link with ``U.A.SIG``: the customer U, the
  moment A (ms) the address was added, and the signature over ``confirm.U.A.address``:
  valid for that address and that adding only (adding it again makes a new one).

- A forgotten password's link carries ``U.I.SIG``: the user U, the moment I (seconds)
  it was asked for, and the signature over ``reset.U.I.<the stored password hash>``:
  it stops working once any password is set (the link's use included), and after an
  hour (``mail.resets``).

Ticket ids count up, so an unsigned ``[#code]`` or ``+T`` is easy to guess: without a
valid signature such a mail never lands in a ticket it names (see ``mail.threading``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SIGNATURE_CHARS = 20
PREFIX = "ld"


@dataclass(frozen=True)
class Tag:
    ticket_id: int
    recipient_id: int


class Tags:
    """Makes and checks tags under one key, for one mail domain."""

    def __init__(self, key: bytes, domain: str) -> None:
        if len(key) < 16:
            raise ValueError("the mail key must be at least 16 bytes")
        self.key = key
        self.domain = domain.lower()

    def message_id(self, ticket_id: int, recipient_id: int) -> str:
        """A new Message-ID (without angle brackets) for mail about a ticket to a user."""
        nonce = secrets.token_hex(6)
        body = f"{ticket_id}.{recipient_id}.{nonce}"
        return f"{PREFIX}.{body}.{self._sign(body)}@{self.domain}"

    def read_message_id(self, message_id: str) -> Tag | None:
        """The tag of a Message-ID we made, or None (not ours, or not signed by us)."""
        local, at, domain = message_id.strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        parts = local.split(".")
        if len(parts) != 5 or parts[0] != PREFIX:
            return None
        _, ticket, recipient, nonce, signature = parts
        if not (ticket.isdigit() and recipient.isdigit()):
            return None
        if not hmac.compare_digest(signature, self._sign(f"{ticket}.{recipient}.{nonce}")):
            return None
        return Tag(int(ticket), int(recipient))

    def is_ours(self, message_id: str | None) -> bool:
        """Whether a Message-ID is one ledgerdesk made (a loop when it comes back in)."""
        return message_id is not None and self.read_message_id(message_id) is not None

    def reply_address(self, support_address: str, ticket_id: int) -> str:
        local, _, domain = support_address.partition("@")
        return f"{local}+{ticket_id}.{self._sign(str(ticket_id))}@{domain}"

    def read_reply_address(self, address: str, support_address: str) -> int | None:
        """The ticket a signed reply address names, or None."""
        local, _, domain = address.lower().partition("@")
        support_local, _, support_domain = support_address.lower().partition("@")
        base, plus, tag = local.partition("+")
        if not plus or base != support_local or domain != support_domain:
            return None
        ticket, dot, signature = tag.partition(".")
        if not dot or not ticket.isdigit():
            return None
        if not hmac.compare_digest(signature, self._sign(ticket).lower()):
            return None
        return int(ticket)

    def confirm_token(self, user_id: int, added_at: int, address: str) -> str:
        """The token of the link that confirms ``address`` as one of the user's."""
        return f"{user_id}.{added_at}.{self._sign(f'confirm.{user_id}.{added_at}.{address}')}"

    def read_confirm_token(self, token: str) -> tuple[int, int] | None:
        """The user and the moment of adding a token names (its signature is checked by
        ``confirms`` once the address is known), or None when it is no token of ours."""
        user, _, rest = token.partition(".")
        added, _, signature = rest.partition(".")
        if not (user.isdigit() and added.isdigit() and len(signature) == SIGNATURE_CHARS):
            return None
        return int(user), int(added)

    def confirms(self, token: str, address: str) -> bool:
        """Whether ``token`` is the confirmation of ``address``."""
        read = self.read_confirm_token(token)
        return read is not None and hmac.compare_digest(
            token.encode(), self.confirm_token(read[0], read[1], address).encode()
        )

    def reset_token(self, user_id: int, issued: int, password_hash: str) -> str:
        """The token of a forgotten password's link (see the module's text)."""
        return f"{user_id}.{issued}.{self._sign(f'reset.{user_id}.{issued}.{password_hash}')}"

    def _sign(self, text: str) -> str:
        digest = hmac.new(self.key, text.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:SIGNATURE_CHARS].lower()
