"""``ledgerdesk db`` and ``ledgerdesk serve``: the server's own commands."""

from __future__ import annotations

import signal
from functools import partial

import anyio
import click

from ledgerdesk import logs
from ledgerdesk.cli.support import CliState, ReportingGroup, emit, json_option, pass_state
from ledgerdesk.db.engine import pool_use
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.mail.imap import ImapPoller
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.mail.relay import wanted as mail_wanted
from ledgerdesk.monitoring import Monitoring
from ledgerdesk.retention import prune
from ledgerdesk.serving import run_server
from ledgerdesk.webhooks.relay import Relay


@click.group(cls=ReportingGroup)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_option
@pass_state
def db_upgrade(state: CliState, as_json: bool) -> None:
    """Migrate the database to the current schema."""
    revision = upgrade(state.runtime().engine, currency=state.runtime().settings.currency)
    emit(as_json, {"revision": revision}, f"Database is at revision {revision}.")


@db.command("prune")
@json_option
@pass_state
def db_prune(state: CliState, as_json: bool) -> None:
    """Remove expired rows: idempotent answers older than 24 hours, expired password
    links, ended web sessions, notices nobody came for. Safe while serving (the server
    also does this every ten minutes).

    \b
    Example:
      ledgerdesk db prune --json
    """
    state.require_current_schema()
    removed = prune(state.runtime())
    emit(
        as_json,
        removed,
        "Removed "
        + ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in removed.items())
        + ".",
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@pass_state
def serve(state: CliState, host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database, then serve the API."""
    settings = state.settings()
    revision = upgrade(state.runtime().engine, currency=state.runtime().settings.currency)
    state.close()
    click.echo(f"Database at revision {revision}; serving on http://{host}:{port}", err=True)
    run_server(
        settings,
        environment=state.overrides,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
    )


@click.command()
@pass_state
def worker(state: CliState) -> None:
    """Deliver webhooks and send mail, without serving (run `serve` with
    LEDGERDESK_WEBHOOK_RELAY=false and LEDGERDESK_MAIL_RELAY=false to leave that to
    workers). Any number may run, on any number of machines."""
    state.require_current_schema()
    runtime = state.runtime()
    logs.configure(runtime.settings.log_format)
    consumers: list[Relay | MailRelay | ImapPoller] = [Relay(runtime)]
    if mail_wanted(runtime.settings):
        consumers.append(MailRelay(runtime))
    settings = runtime.settings
    if settings.imap_url is not None and settings.support_address is not None:
        consumers.append(ImapPoller(runtime))
    what = "webhooks and mail" if len(consumers) > 1 else "webhooks"
    click.echo(f"Delivering {what}; Ctrl-C or SIGTERM stops.", err=True)
    # Its deliveries, for Prometheus, on LEDGERDESK_METRICS_LISTEN when set.
    monitoring = Monitoring(runtime, partial(pool_use, runtime.engine))
    monitoring.listen()

    async def until_stopped() -> None:
        async with anyio.create_task_group() as tasks:
            for consumer in consumers:
                tasks.start_soon(consumer.run)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    tasks.cancel_scope.cancel()
                    break

    try:
        anyio.run(until_stopped)
    finally:
        monitoring.close()
        runtime.close()
