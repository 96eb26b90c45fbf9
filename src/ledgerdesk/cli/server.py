"""Running the ASGI server (``serve`` and ``demo``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import uvicorn

from ledgerdesk.app import create_app
from ledgerdesk.config import Settings


def run_server(
    settings: Settings,
    *,
    environment: Mapping[str, str],
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
) -> None:
    """Serve until interrupted.

    uvicorn's own proxy-header handling is off: client addresses come from the socket,
    and ledgerdesk alone decides whose X-Forwarded-For to believe
    (LEDGERDESK_TRUSTED_PROXIES).
    """
    config = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "proxy_headers": False,
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **config)  # type: ignore[arg-type]
        return
    # Each worker process builds its own app (and its own pool) from the environment.
    os.environ.update(environment)
    uvicorn.run(
        "ledgerdesk.app:create_app_from_env",
        factory=True,
        workers=workers,
        **config,  # type: ignore[arg-type]
    )
