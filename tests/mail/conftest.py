"""What the mail tests share: an SMTP server that receives what ledgerdesk sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Sink, smtp_sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as found:
        yield found
