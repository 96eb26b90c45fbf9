"""A real ledgerdesk server for the SDK and customer CLI tests, with a seeded customer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_invoice
from tests.servers import free_port, start, stop
from tests.support import Caller

MB = 1024 * 1024


@dataclass(frozen=True)
class Server:
    url: str
    caller: Caller
    runtime: Runtime
    invoice_ids: tuple[int, ...]
    env: dict[str, str]


def serve(tmp: Path, **extra: str) -> Iterator[Server]:
    data = tmp / "data"
    settings = Settings(database_url=f"sqlite+pysqlite:///{data}/ledgerdesk.sqlite3", data_dir=data)
    runtime = Runtime.build(settings)
    upgrade(runtime.engine)
    caller = make_customer(runtime, name="Ann Customer")
    invoices = tuple(
        make_invoice(runtime, caller.user_id, created_on=date.today() - timedelta(days=3)).id
        for _ in range(2)
    )
    port = free_port()
    env = {
        "LEDGERDESK_DATA_DIR": str(data),
        "LEDGERDESK_MAX_ATTACHMENT_BYTES": str(64 * MB),
        "LEDGERDESK_MAX_BODY_BYTES": str(100 * MB),
        "LEDGERDESK_RATE_LIMIT": "100000",
        **extra,
    }
    process = start(["serve", "--port", str(port)], port, env)
    try:
        yield Server(f"http://127.0.0.1:{port}", caller, runtime, invoices, env)
    finally:
        stop(process)
        runtime.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("sdk"))
