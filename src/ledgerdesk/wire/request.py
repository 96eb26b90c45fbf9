"""One API request as the protocol endpoint carries it: the HTTP exchange's bookkeeping
(``Exchange``) and what its transaction needs once the body is read (``Request``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledgerdesk.accounts.service import IPAddress, Principal
from ledgerdesk.attachments.incoming import RequestFiles
from ledgerdesk.audit.service import Event
from ledgerdesk.events.work import Origin
from ledgerdesk.http.client_address import limit_key
from ledgerdesk.http.memory_budget import Reservation
from ledgerdesk.wire.body import Body
from ledgerdesk.wire.credentials import Credentials
from ledgerdesk.wire.rate_limit import Quota
from ledgerdesk.wire.registry import Action


@dataclass(slots=True)
class Exchange:
    """One HTTP request's bookkeeping: id, caller's address, quota, memory held."""

    request_id: str
    address: IPAddress | None
    memory: Reservation
    quota: Quota | None = None
    action: str | None = None  # for the request log: which action,
    user_id: int | None = None  # the user its credentials proved to be

    @property
    def limit_key(self) -> str:
        return limit_key(self.address)


@dataclass(slots=True)
class Request:
    """What the worker thread needs of a request whose body has been read."""

    action: Action[Any, Any] | None
    body: Body
    files: RequestFiles
    credentials: Credentials
    address: IPAddress | None
    request_id: str
    idempotency_key: str | None
    # Set once the credentials proved right (in the transaction's thread or greenlet).
    authenticated: bool = False

    @property
    def origin(self) -> Origin:
        """How the request came in, for the events its write records."""
        address = None if self.address is None else str(self.address)
        return Origin("api", address, self.request_id)

    def event(
        self,
        now: int,
        outcome: str,
        principal: Principal | None,
        *,
        error_code: int | None = None,
    ) -> Event:
        """This request's audit event (never its key or its files' bytes)."""
        return Event(
            created_at=now,
            source="api",
            action=self.action.name if self.action is not None else "unknown",
            outcome=outcome,
            user_id=principal.user_id if principal is not None else self.credentials.user_id,
            key_id=principal.key_id if principal is not None else None,
            client_address=None if self.address is None else str(self.address),
            error_code=error_code,
            request_id=self.request_id,
        )
