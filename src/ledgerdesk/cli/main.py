"""Entry point of the ``ledgerdesk`` command.

The customer's commands (``invoices``, ``tickets``) need only the SDK; the server's
(``serve``, ``db``, ``admin``, ``demo``) are loaded when they are run, so a customer can
install ledgerdesk without the server's stack (``pip install ledgerdesk`` versus
``pip install 'ledgerdesk[server]'``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from ledgerdesk import __version__
from ledgerdesk.cli.customer import invoices, tickets

OVERRIDES = "ledgerdesk.overrides"

# name -> (module, attribute, one-line help shown without importing the module)
SERVER_COMMANDS = {
    "admin": ("ledgerdesk.cli.admin", "admin", "Administer accounts, API keys and invoices."),
    "db": ("ledgerdesk.cli.server", "db", "Database schema."),
    "demo": (
        "ledgerdesk.cli.demo",
        "demo",
        "Set up a demo customer with an API key and invoices, then serve.",
    ),
    "mail": ("ledgerdesk.cli.mail", "mail", "Mail into ledgerdesk."),
    "serve": ("ledgerdesk.cli.server", "serve", "Migrate the database, then serve the API."),
    "worker": ("ledgerdesk.cli.server", "worker", "Deliver webhooks and mail, without serving."),
}


class LedgerdeskGroup(click.Group):
    """Loads the server's commands on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SERVER_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SERVER_COMMANDS:
            return super().get_command(ctx, name)
        module_name, attribute, summary = SERVER_COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            missing = error.name or "a server dependency"
            return _missing_server(name, summary, missing)
        command: click.Command = getattr(module, attribute)
        return command


def _missing_server(name: str, summary: str, missing: str) -> click.Command:
    def explain() -> None:
        raise click.ClickException(
            f"`ledgerdesk {name}` is part of the server, which is not installed "
            f"({missing} is missing): pip install 'ledgerdesk[server]'"
        )

    return click.Command(
        name,
        callback=explain,
        help=summary,
        short_help=summary,
        # Whatever followed (`admin user list ...`) gets the same explanation.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=LedgerdeskGroup)
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
    overrides: dict[str, Any] = ctx.meta.setdefault(OVERRIDES, {})
    if database_url:
        overrides["LEDGERDESK_DATABASE_URL"] = database_url
    if data_dir:
        overrides["LEDGERDESK_DATA_DIR"] = str(data_dir)


cli.add_command(invoices)
cli.add_command(tickets)


def main() -> None:
    cli(prog_name="ledgerdesk")
