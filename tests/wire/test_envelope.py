"""Answers encoded straight from rows are exactly what their models would give."""

from __future__ import annotations

import pytest

from ledgerdesk.tickets.schemas import TicketOverview
from ledgerdesk.wire import envelope
from ledgerdesk.wire.types import Shaped

TICKET = {
    "userId": 7,
    "ticketId": 1,
    "ticketCode": 12345678,
    "created": 1700000000,
    "title": 'Ünïcode "quoted" </script>',
    "reference": "",
    "status": 1,
    "statusUpdateTime": 1700000000,
    "timeLastUpdated": 1700000001,
    "priorityId": 2,
}


def test_a_shaped_answer_is_byte_for_byte_the_models() -> None:
    shaped = envelope.success(Shaped(TicketOverview, {"tickets": [TICKET]}))
    modelled = envelope.success(TicketOverview.model_validate({"tickets": [TICKET]}))
    assert shaped == modelled


@pytest.mark.parametrize(
    "broken",
    [
        {**TICKET, "status": "1"},  # a type the model would not give
        {k: v for k, v in TICKET.items() if k != "reference"},  # a missing field
        dict(reversed(TICKET.items())),  # fields out of the model's order
    ],
)
def test_the_check_refuses_data_its_model_would_not_give(broken: dict[str, object]) -> None:
    with pytest.raises((AssertionError, ValueError)):
        envelope.success(Shaped(TicketOverview, {"tickets": [broken]}))
