"""Entry point of the ``ledgerdesk`` command."""

from __future__ import annotations

from pathlib import Path

import click

from ledgerdesk import __version__
from ledgerdesk.cli.admin import admin
from ledgerdesk.cli.customer import invoices, tickets
from ledgerdesk.cli.demo import demo
from ledgerdesk.cli.support import CliState, ReportingGroup, emit, json_option, pass_state
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.serving import run_server


@click.group(cls=ReportingGroup)
@click.version_option(__version__, prog_name="ledgerdesk")
@click.option(
    "--database-url",
    default=None,
    metavar="URL",
    help="Overrides LEDGERDESK_DATABASE_URL.",
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Overrides LEDGERDESK_DATA_DIR.",
)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, data_dir: Path | None) -> None:
    """ledgerdesk: invoices and support tickets over the i3D.net API v2 protocol."""
    state = ctx.ensure_object(CliState)
    if database_url:
        state.overrides["LEDGERDESK_DATABASE_URL"] = database_url
    if data_dir:
        state.overrides["LEDGERDESK_DATA_DIR"] = str(data_dir)
    ctx.call_on_close(state.close)


@cli.group(cls=ReportingGroup)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_option
@pass_state
def db_upgrade(state: CliState, as_json: bool) -> None:
    """Migrate the database to the current schema."""
    revision = upgrade(state.runtime().engine)
    emit(as_json, {"revision": revision}, f"Database is at revision {revision}.")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@pass_state
def serve(state: CliState, host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database, then serve the API."""
    settings = state.settings()
    revision = upgrade(state.runtime().engine)
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


cli.add_command(admin)
cli.add_command(demo)
cli.add_command(invoices)
cli.add_command(tickets)


def main() -> None:
    cli(prog_name="ledgerdesk")
