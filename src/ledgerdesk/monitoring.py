"""``/metrics``: what this server and its database say, for Prometheus.

The counts each process keeps are in ``metrics``; this module adds what is read when
Prometheus asks (the event log's lag behind its consumers, deliveries waiting, the
pools' connections) and serves the text: on the API's port to addresses in
``LEDGERDESK_METRICS_ALLOW`` only, or on a port of its own (``LEDGERDESK_METRICS_LISTEN``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ledgerdesk import __version__, metrics
from ledgerdesk.db.models import DomainEvent, MailCursor, MailOutbox, WebhookCursor, WebhookDelivery
from ledgerdesk.http.client_address import IPAddress, is_trusted
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.metrics")

Pools = Callable[[], dict[str, tuple[int, int]]]


class DatabaseCollector(Collector):
    """Read from the database at each scrape: how far each consumer of the event log is
    behind (events after the newest one all of whose deliveries are done) and how many
    deliveries wait. A database that fails leaves these out, with a line in the log."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        try:
            with self.runtime.transaction(write=False) as (session, _):
                newest = int(session.scalar(select(func.max(DomainEvent.id))) or 0)
                found = {
                    "webhooks": _behind(
                        session.scalar(select(WebhookCursor.last_event_id)),
                        session.scalar(
                            select(func.min(WebhookDelivery.event_id)).where(
                                WebhookDelivery.state == "pending"
                            )
                        ),
                        session.scalar(
                            select(func.count()).where(WebhookDelivery.state == "pending")
                        ),
                    ),
                    "mail": _behind(
                        session.scalar(select(MailCursor.last_event_id)),
                        session.scalar(
                            select(func.min(MailOutbox.event_id)).where(
                                MailOutbox.state == "pending"
                            )
                        ),
                        session.scalar(select(func.count()).where(MailOutbox.state == "pending")),
                    ),
                }
        except Exception as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            return []
        newest_metric = GaugeMetricFamily(
            "ledgerdesk_event_log_newest_id", "The id of the newest event in the event log."
        )
        newest_metric.add_metric([], newest)
        lag = GaugeMetricFamily(
            "ledgerdesk_event_log_lag_events",
            "Events after the newest one whose deliveries are all done, by consumer "
            "(newest event minus newest delivered).",
            labels=["consumer"],
        )
        pending = GaugeMetricFamily(
            "ledgerdesk_deliveries_pending",
            "Deliveries waiting to be made or retried, by consumer.",
            labels=["consumer"],
        )
        for consumer, (done_up_to, waiting) in found.items():
            lag.add_metric([consumer], max(0, newest - done_up_to) if done_up_to is not None else 0)
            pending.add_metric([consumer], waiting)
        return [newest_metric, lag, pending]


def _behind(
    cursor: int | None, oldest_pending: int | None, waiting: int | None
) -> tuple[int | None, int]:
    """The newest event id up to which everything is delivered (None: the consumer has
    never run), and how many deliveries wait."""
    if cursor is None:
        return None, int(waiting or 0)
    done = int(cursor)
    if oldest_pending is not None:
        done = min(done, int(oldest_pending) - 1)
    return done, int(waiting or 0)


class PoolCollector(Collector):
    """Writes the pools' connections now to this process's gauges, before they are read
    (and, with several workers, every few seconds: see ``app``); yields nothing itself."""

    def __init__(self, pools: Pools) -> None:
        self.pools = pools

    def sample(self) -> None:
        for pool, (in_use, idle) in self.pools().items():
            metrics.pool_connections.labels(pool, "in_use").set(in_use)
            metrics.pool_connections.labels(pool, "idle").set(idle)

    def collect(self) -> Iterable[Metric]:
        self.sample()
        return []


class Monitoring:
    """This process's metrics page."""

    def __init__(self, runtime: Runtime, pools: Pools) -> None:
        self.settings = runtime.settings
        self.pools = PoolCollector(pools)
        self.collection = metrics.Collection([self.pools, DatabaseCollector(runtime)])
        metrics.set_build_info(__version__)
        self._server: tuple[WSGIServer, threading.Thread] | None = None

    def allowed(self, client: IPAddress | None) -> bool:
        """Whether an address may read /metrics on the API's port."""
        if self.settings.metrics_listen is not None:
            return False  # served on its own port alone
        return client is not None and is_trusted(client, self.settings.metrics_allow)

    def exposition(self) -> bytes:
        return self.collection.exposition()

    def listen(self) -> None:
        """Serve /metrics on LEDGERDESK_METRICS_LISTEN, in a thread, when it is set (with
        several workers, their supervisor serves it: ``serving.run_server``)."""
        address = self.settings.metrics_address
        if address is not None and self._server is None and not metrics.multiprocess():
            self._server = listen_on(address, self.collection.registry)

    def close(self) -> None:
        if self._server is not None:
            stop(self._server)
            self._server = None


def listen_on(
    address: tuple[str, int], registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """prometheus_client's own HTTP server for ``registry``, in a thread."""
    host, port = address
    return start_http_server(port, addr=host, registry=registry)


def stop(server: tuple[WSGIServer, threading.Thread]) -> None:
    wsgi, thread = server
    wsgi.shutdown()
    wsgi.server_close()
    thread.join(timeout=5)
