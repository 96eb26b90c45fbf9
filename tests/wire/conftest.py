"""A server for the generated-request tests: one customer with a ticket, no rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_ticket
from tests.support import Caller, FrozenClock


@dataclass(frozen=True)
class Served:
    app: LedgerdeskApp
    runtime: Runtime
    caller: Caller
    ticket_id: int


@pytest.fixture
def served(settings: Settings, clock: FrozenClock) -> Iterator[Served]:
    """Shared by every example of a run, as one server is shared by its clients."""
    app = create_app(
        settings.with_overrides(rate_limit=10**9, auth_failure_limit=10**9), clock=clock
    )
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    yield Served(app, runtime, caller, make_ticket(runtime, caller.user_id))
    runtime.close()
