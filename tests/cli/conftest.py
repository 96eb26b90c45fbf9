"""What the command tests share."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledgerdesk.cli.main import cli


@pytest.fixture
def run(database_url: str) -> Any:
    """``ledgerdesk --database-url <the test's database> ARGS...``"""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--database-url", database_url, *args])

    return invoke
