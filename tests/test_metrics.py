"""/metrics: what it counts, to whom it answers, and its files with several workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledgerdesk import metrics
from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire.rate_limit import RateLimits
from tests.conftest import make_client
from tests.factories import make_customer, make_ticket
from tests.servers import free_port, running
from tests.support import Caller, assert_error, assert_success, call

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by name and labels, through prometheus_client's own parser."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(app: LedgerdeskApp) -> Samples:
    response = await make_client(app, "127.0.0.1").get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_requests_are_counted_by_action_and_outcome_and_timed(
    app: LedgerdeskApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    before = await scrape(app)
    assert_success(await call(client, caller, "getTicketOverview"))
    assert_success(await call(client, caller, "getTicketOverview"))
    assert_error(
        await call(client, Caller(caller.user_id, "x" * 32), "getTicketOverview"), 2001, 401
    )
    assert_error(await call(client, caller, "noSuchAction"), 1002, 400)
    after = await scrape(app)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "ledgerdesk_api_requests_total"
    assert grew(requests, action="getTicketOverview", outcome="ok") == 2
    assert grew(requests, action="getTicketOverview", outcome="2001") == 1
    # A name the client made up is never a label.
    assert grew(requests, action="(unknown)", outcome="1002") == 1
    assert grew("ledgerdesk_api_request_duration_seconds_count", action="getTicketOverview") == 3
    assert (
        grew(
            "ledgerdesk_api_request_duration_seconds_bucket", action="getTicketOverview", le="+Inf"
        )
        == 3
    )
    # Pages outside the API by door and status: the first scrape itself.
    assert grew("ledgerdesk_http_requests_total", door="metrics", status="200") >= 1
    labels = {label for (_, pairs) in after for label, _ in pairs}
    assert not labels & {"user_id", "userId", "path", "api_key", "apiKey", "key"}
    assert caller.api_key not in {v for (_, pairs) in after for _, v in pairs}


async def test_build_info_pools_and_the_event_logs_lag(
    app: LedgerdeskApp, runtime: Runtime, backend: str
) -> None:
    caller = make_customer(runtime)
    make_ticket(runtime, caller.user_id)
    found = await scrape(app)
    assert any(name == "ledgerdesk_build_info" for name, _ in found)
    assert value(found, "ledgerdesk_event_log_newest_id") >= 1
    # No relay has run in this app: every event is after the consumers' place.
    assert value(found, "ledgerdesk_deliveries_pending", consumer="webhooks") == 0
    assert ("ledgerdesk_event_log_lag_events", frozenset({("consumer", "webhooks")})) in found
    pools = {
        dict(pairs)["pool"] for name, pairs in found if name == "ledgerdesk_db_pool_connections"
    }
    assert "threads" in pools
    if backend == "postgresql":
        assert "event_loop" in pools


async def test_the_lag_counts_events_whose_deliveries_are_not_done(runtime: Runtime) -> None:
    from sqlalchemy import insert

    from ledgerdesk.db.models import WebhookCursor
    from ledgerdesk.monitoring import DatabaseCollector

    caller = make_customer(runtime)
    for _ in range(3):
        make_ticket(runtime, caller.user_id)
    with runtime.transaction(write=True) as (session, _):
        newest = session.scalar(select_newest())
        session.execute(insert(WebhookCursor).values(id=1, last_event_id=newest - 2))
    families = {family.name: family for family in DatabaseCollector(runtime).collect()}
    lag = {
        s.labels["consumer"]: s.value for s in families["ledgerdesk_event_log_lag_events"].samples
    }
    assert lag["webhooks"] == 2
    assert lag["mail"] == 0  # the mail relay has never run


def select_newest():  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from ledgerdesk.db.models import DomainEvent

    return select(func.max(DomainEvent.id))


async def test_rate_limit_refusals_are_counted_by_limit(settings: Settings, clock: object) -> None:
    app = create_app(settings.with_overrides(rate_limit=2))
    try:
        runtime: Runtime = app.state.runtime
        caller = make_customer(runtime)
        client = make_client(app, "198.51.100.4")
        before = await scrape(app)
        for _ in range(2):
            assert_success(await call(client, caller, "getTicketOverview"))
        assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
        after = await scrape(app)
    finally:
        app.state.runtime.engine.dispose()
    name = "ledgerdesk_rate_limit_refusals_total"
    assert value(after, name, limit="key") - value(before, name, limit="key") == 1
    assert isinstance(app.api.limits, RateLimits)


async def test_only_allowed_addresses_may_read_the_metrics(
    app: LedgerdeskApp, settings: Settings
) -> None:
    assert (await make_client(app, "203.0.113.7").get("/metrics")).status_code == 404
    assert (await make_client(app, "::1").get("/metrics")).status_code == 200
    # Behind a trusted proxy, the address it forwards for is the one that counts.
    proxied = create_app(
        settings.with_overrides(trusted_proxies="127.0.0.1", metrics_allow="10.0.0.0/8")
    )
    try:
        via_proxy = make_client(proxied, "127.0.0.1")
        outsider = await via_proxy.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
        insider = await via_proxy.get("/metrics", headers={"x-forwarded-for": "10.1.2.3"})
    finally:
        proxied.state.runtime.engine.dispose()
    assert outsider.status_code == 404
    assert insider.status_code == 200


async def test_a_port_of_their_own(settings: Settings) -> None:
    port = free_port()
    app = create_app(settings.with_overrides(metrics_listen=f"127.0.0.1:{port}"))
    client = make_client(app, "127.0.0.1")
    try:
        async with app.site.router.lifespan_context(app.site):
            assert (await client.get("/metrics")).status_code == 404
            async with httpx.AsyncClient() as outside:
                answer = await outside.get(f"http://127.0.0.1:{port}/metrics")
            assert answer.status_code == 200
            assert "ledgerdesk_build_info" in answer.text
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
    finally:
        app.state.runtime.engine.dispose()


def test_memory_budget_waits_and_refusals_are_counted() -> None:
    import anyio

    from ledgerdesk.errors import ServerBusy
    from ledgerdesk.http.memory_budget import MemoryBudget, Reservation

    budget = MemoryBudget(1024 * 1024, wait_seconds=0.05, reclaim_after=0.02)
    waits = metrics.memory_waits._value.get()
    busy = metrics.memory_refusals.labels("busy")._value.get()

    async def over_budget() -> None:
        first = Reservation(budget, "a")
        await first.take(1024 * 1024)
        with pytest.raises(ServerBusy):
            await Reservation(budget, "a").take(1024 * 1024)

    anyio.run(over_budget)
    assert metrics.memory_waits._value.get() == waits + 1
    assert metrics.memory_refusals.labels("busy")._value.get() == busy + 1


def test_mail_that_cannot_be_taken_is_counted_as_failed(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerdesk.attachments.incoming import IncomingWriter
    from ledgerdesk.mail import receiving
    from ledgerdesk.mail.service import MailIntake

    def broken(*_: object, **__: object) -> None:
        raise ValueError("a bug in the intake")

    monkeypatch.setattr(MailIntake, "take", broken)
    runtime = Runtime.build(runtime.settings.with_overrides(mail_from="support@hosting.example"))
    try:
        writer = IncomingWriter(runtime.incoming_dir, 10_000, "mail.eml")
        writer.write(b"From: ann@example.com\nSubject: Hi\n\nHello\n")
        failed = metrics.mail_received.labels("failed")._value.get()
        taken = receiving.take(runtime, writer.finish("mail.eml", "message/rfc822"), via="pipe")
    finally:
        runtime.close()
    assert taken.state == "failed"
    assert metrics.mail_received.labels("failed")._value.get() == failed + 1


# -- several workers ----------------------------------------------------------------------


WRITER = """
import os, sys
from ledgerdesk import metrics
metrics.requests.labels("getTicket", "ok").inc(int(sys.argv[1]))
metrics.request_seconds.labels("getTicket").observe(0.01)
metrics.connections.inc()
"""


def _dead_worker(directory: Path, count: int) -> None:
    env = {**os.environ, metrics.MULTIPROCESS_VARIABLE: str(directory)}
    subprocess.run([sys.executable, "-c", WRITER, str(count)], env=env, check=True)


def test_files_of_workers_that_are_gone_are_folded_and_counted_once(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    for count in (3, 4, 5):
        _dead_worker(directory, count)
    assert len(list(directory.glob("counter_*.db"))) == 3
    assert metrics.compact(directory) == 9  # a counter, a histogram, a gauge file each
    assert sorted(p.name for p in directory.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    _dead_worker(directory, 10)
    metrics.compact(directory)
    assert len(list(directory.glob("*.db"))) == 2
    os.environ[metrics.MULTIPROCESS_VARIABLE] = str(directory)
    try:
        found = parse(metrics.Collection().exposition().decode())
    finally:
        del os.environ[metrics.MULTIPROCESS_VARIABLE]
    assert value(found, "ledgerdesk_api_requests_total", action="getTicket", outcome="ok") == 22
    assert value(found, "ledgerdesk_api_request_duration_seconds_count", action="getTicket") == 4
    # The open connections of dead workers are gone with them.
    assert value(found, "ledgerdesk_open_connections") == 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``serve --workers 2`` on SQLite with its metrics directory where the test sees it."""
    port = free_port()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"")  # an earlier run's: emptied at start
    env = {
        "LEDGERDESK_DATA_DIR": str(tmp_path / "data"),
        metrics.MULTIPROCESS_VARIABLE: str(directory),
    }
    with running(["serve", "--port", str(port), "--workers", "2"], port, env):
        yield f"http://127.0.0.1:{port}", directory


def _workers(directory: Path) -> set[int]:
    """The processes with a counter file (each worker makes one as it starts)."""
    return {
        int(pid)
        for p in directory.glob("counter_*.db")
        if (pid := p.stem.rpartition("_")[2]).isdigit()
    }


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.slow
def test_several_workers_count_together_and_restarts_keep_the_directory_bounded(
    served: tuple[str, Path],
) -> None:
    base, directory = served
    body = {"userId": 1, "apiKey": "x" * 32, "action": "getTicketOverview"}
    sent = 0
    _wait_for(lambda: len(_workers(directory)) == 2, "two workers")
    for round_ in range(4):
        for _ in range(20):
            # A new connection each, so that both workers take some.
            httpx.post(f"{base}/api/rest/v2/administration", json=body)
            sent += 1

        def counted() -> float:
            found = parse(httpx.get(f"{base}/metrics").text)
            return sum(
                v for (name, _), v in found.items() if name == "ledgerdesk_api_requests_total"
            )

        # Wrong keys, then refusals (4002): every request counted once, whichever worker
        # answered it and whichever answers the scrape, across restarts (each worker
        # hands its counts over every second: wait for that before killing one).
        _wait_for(lambda n=sent: counted() >= n, f"round {round_}: {sent} requests counted", 10)
        assert counted() == sent
        if round_ < 3:
            victim = max(_workers(directory))
            os.kill(victim, signal.SIGKILL)
            _wait_for(
                lambda gone=victim: (
                    gone not in _workers(directory) and len(_workers(directory)) == 2
                ),
                "a worker started again in place of the one killed, its files folded",
            )
    files = sorted(p.name for p in directory.glob("*.db"))
    # Two live workers' files (a counter, a histogram, two kinds of gauge) and the archives.
    assert len(files) <= 2 * 4 + 2, files
    assert "counter_1.db" not in files


async def test_the_grafana_dashboard_uses_only_metrics_that_exist(app: LedgerdeskApp) -> None:
    import json
    import re

    response = await make_client(app, "127.0.0.1").get("/metrics")
    exposed = set()
    for family in text_string_to_metric_families(response.text):
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        exposed |= {family.name + suffix for suffix in suffixes}
    dashboard = json.loads((Path(__file__).parents[1] / "docs/grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"ledgerdesk_[a-z_]+", target["expr"])
    }
    assert len(used) >= 14
    assert used <= exposed, used - exposed


@pytest.mark.slow
def test_several_workers_metrics_on_a_port_of_their_own_and_a_workers(tmp_path: Path) -> None:
    """The supervisor of ``serve --workers 2`` serves every worker's counts on
    LEDGERDESK_METRICS_LISTEN (none on the API's port); ``ledgerdesk worker`` too."""
    from tests.servers import LEDGERDESK

    port, metrics_port, worker_port = free_port(), free_port(), free_port()
    env = {
        "LEDGERDESK_DATA_DIR": str(tmp_path / "data"),
        "LEDGERDESK_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
    }
    with running(["serve", "--port", str(port), "--workers", "2"], port, env):
        body = {"userId": 1, "apiKey": "x" * 32, "action": "getTicketOverview"}
        for _ in range(6):
            httpx.post(f"http://127.0.0.1:{port}/api/rest/v2/administration", json=body)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404

        def counted() -> float:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            found = parse(text)
            return sum(v for (n, _), v in found.items() if n == "ledgerdesk_api_requests_total")

        _wait_for(lambda: counted() == 6, "six requests on the supervisor's port", 10)
    worker = subprocess.Popen(
        [*LEDGERDESK, "worker"],
        env={**os.environ, **env, "LEDGERDESK_METRICS_LISTEN": f"127.0.0.1:{worker_port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            try:
                text = httpx.get(f"http://127.0.0.1:{worker_port}/metrics").text
            except httpx.TransportError:
                return False
            return "ledgerdesk_build_info" in text and "ledgerdesk_event_log_lag_events" in text

        _wait_for(answers, "the worker's metrics", 30)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
