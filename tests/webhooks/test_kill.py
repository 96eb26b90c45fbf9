"""Nothing is lost: server processes SIGKILLed again and again while they deliver to a
receiver that is slow and often answers 500; after the restarts every event has reached
every endpoint (counted by distinct ``webhook-id``, each verified with the reference
``standardwebhooks`` package). SQLite with one server; PostgreSQL with two sharing the
database (one killed while the other goes on)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.service import WebhookService
from tests.factories import make_ticket, make_user, recorded_events, system_work
from tests.servers import free_port, kill, start, stop
from tests.webhooks.receiver import receiver_thread

pytestmark = pytest.mark.slow

BATCHES = 4
TICKETS_PER_BATCH = 20


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_kill_test(database_url: str, tmp_path: object, servers: int) -> None:
    environment = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "LEDGERDESK_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.5,1,1,1,1,1,1,1,1,1",
        "LEDGERDESK_WEBHOOK_TIMEOUT": "1",
    }
    settings = Settings.from_env(environment)
    runtime = Runtime.build(settings)
    try:
        with receiver_thread() as receiver:
            paths = {"/ordered": True, "/unordered": False}
            for path, ordered in paths.items():
                with system_work(runtime) as work:
                    made = WebhookService.of(work, settings).create(
                        url=f"http://127.0.0.1:{receiver.port}{path}",
                        event_types=["ticket.*"],
                        ordered=ordered,
                    )
                receiver.path_secrets[path] = [made.secret]
            customer = make_user(runtime, name="Ann")
            ports = [free_port() for _ in range(servers)]
            processes: list[subprocess.Popen[str]] = [
                start(["serve", "--port", str(port)], port, environment) for port in ports
            ]
            try:
                for batch in range(BATCHES):
                    before = len(receiver.requests)
                    for n in range(TICKETS_PER_BATCH):
                        make_ticket(runtime, customer, title=f"{batch}.{n}")
                    # Kill one while it is in the middle of delivering the batch.
                    wait_until(
                        lambda before=before: len(receiver.requests) >= before + 5,  # type: ignore[misc]
                        30,
                        "deliveries to start",
                    )
                    victim = batch % servers
                    kill(processes[victim])
                    processes[victim] = start(
                        ["serve", "--port", str(ports[victim])], ports[victim], environment
                    )
                events = {str(e.id) for e in recorded_events(runtime) if e.type == "ticket.created"}
                assert len(events) == BATCHES * TICKETS_PER_BATCH

                def arrived(path: str) -> set[str]:
                    return {d.webhook_id for d in list(receiver.verified) if d.path == path}

                try:
                    wait_until(
                        lambda: all(arrived(path) >= events for path in paths),
                        120,
                        "every event at every endpoint",
                    )
                except AssertionError:
                    raise AssertionError(_diagnosis(runtime, events, arrived, paths)) from None
            finally:
                for process in processes:
                    stop(process)
        assert not receiver.unverified
        for path in paths:
            assert arrived(path) == events
        assert any(tries > 1 for tries in receiver.tries.values())  # 500s were retried
    finally:
        runtime.engine.dispose()


def _diagnosis(
    runtime: Runtime, events: set[str], arrived: Callable[[str], set[str]], paths: object
) -> str:
    from sqlalchemy import func, select

    from ledgerdesk.db.models import WebhookCursor, WebhookDelivery, WebhookEndpoint

    with runtime.transaction(write=False) as (session, _):
        states = session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.state, func.count()).group_by(
                WebhookDelivery.endpoint_id, WebhookDelivery.state
            )
        ).all()
        gates = session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.held_until, WebhookEndpoint.holder)
        ).all()
        cursor = session.scalar(select(WebhookCursor.last_event_id))
    missing = {str(p): sorted(events - arrived(str(p)))[:10] for p in paths}  # type: ignore[attr-defined]
    return (
        f"missing {missing}; deliveries {states}; gates {gates}; cursor {cursor}; now {time.time()}"
    )


def test_servers_killed_again_and_again_lose_nothing(database_url: str, tmp_path: object) -> None:
    """One server on SQLite (a file on one machine); two sharing PostgreSQL."""
    run_kill_test(database_url, tmp_path, servers=1 if database_url.startswith("sqlite") else 2)


def test_a_worker_delivers_when_serve_leaves_it_to_workers(
    database_url: str, tmp_path: object
) -> None:
    """``serve`` with LEDGERDESK_WEBHOOK_RELAY=false delivers nothing; ``ledgerdesk
    worker`` does, and stops cleanly on SIGTERM."""
    import os
    import signal

    from tests.servers import LEDGERDESK

    environment = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    settings = Settings.from_env(environment)
    runtime = Runtime.build(settings)
    try:
        with receiver_thread() as receiver:
            receiver.script = lambda _, __: (200, "", b"")
            with system_work(runtime) as work:
                made = WebhookService.of(work, settings).create(
                    url=f"http://127.0.0.1:{receiver.port}/w", event_types=["customer.*"]
                )
            receiver.secrets.append(made.secret)
            port = free_port()
            server = start(
                ["serve", "--port", str(port)],
                port,
                {**environment, "LEDGERDESK_WEBHOOK_RELAY": "false"},
            )
            try:
                make_user(runtime, name="Ann")
                time.sleep(2)
                assert receiver.requests == []  # serve leaves delivering to workers
                worker = subprocess.Popen(
                    [*LEDGERDESK, "worker"],
                    env={**os.environ, **environment},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                try:
                    wait_until(lambda: len(receiver.verified) == 1, 30, "the worker's delivery")
                finally:
                    worker.send_signal(signal.SIGTERM)
                    output = worker.communicate(timeout=15)[0]
                assert worker.returncode == 0, output
            finally:
                stop(server)
        assert receiver.verified[0].event["type"] == "customer.created"
    finally:
        runtime.engine.dispose()
