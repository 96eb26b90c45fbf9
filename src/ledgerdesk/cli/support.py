"""What every command shares: settings, the database, output and error reporting."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from ledgerdesk.clock import today
from ledgerdesk.config import ConfigError, Settings
from ledgerdesk.db.migrate import is_current
from ledgerdesk.db.prepared import Db, read_transaction
from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def _overrides_of_the_command() -> dict[str, str]:
    """The root flags (--database-url, --data-dir), kept in the context's meta."""
    context = click.get_current_context(silent=True)
    if context is None:
        return {}
    overrides: dict[str, str] = context.meta.get("ledgerdesk.overrides", {})
    return overrides


@dataclass
class CliState:
    """Overrides from global flags, applied on top of the environment."""

    overrides: dict[str, str] = field(default_factory=_overrides_of_the_command)
    _runtime: Runtime | None = None

    def __post_init__(self) -> None:
        context = click.get_current_context(silent=True)
        if context is not None:
            context.call_on_close(self.close)

    def settings(self) -> Settings:
        return Settings.from_env({**os.environ, **self.overrides})

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.build(self.settings())
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.incoming.close()
            self._runtime.engine.dispose()
            self._runtime = None

    def require_current_schema(self) -> None:
        if not is_current(self.runtime().engine):
            raise click.ClickException(
                "the database schema is not current; run `ledgerdesk db upgrade` first"
            )

    @contextmanager
    def work(self, actor: Actor = Actor.SYSTEM) -> Iterator[Work]:
        """A unit of work through the CLI's door, on a database that must already be
        migrated. The operator at the shell acts as the system unless a command names
        the staff member it acts for."""
        self.require_current_schema()
        with self.runtime().work(actor, Origin("cli")) as work:
            yield work

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction for reads, or (``write``) for upkeep that changes nothing of the
        domain (pruning): no event is recorded in it."""
        self.require_current_schema()
        with self.runtime().transaction(write=write) as (session, _):
            yield session

    @contextmanager
    def reading(self) -> Iterator[Db]:
        """A read transaction on a database that must already be migrated."""
        self.require_current_schema()
        with read_transaction(self.runtime().engine) as db:
            yield db

    def today(self) -> date:
        runtime = self.runtime()
        return today(runtime.clock, runtime.settings.timezone)


pass_state = click.make_pass_decorator(CliState, ensure=True)


# The services' names for what they refuse, as the commands' options name them.
OPTION_NAMES = {
    "amount_excl_vat": "amount-excl-vat",
    "vat_perc": "vat-perc",
    "pay_within_days": "pay-within-days",
    "paid_on": "date",
    "customer": "user",
    "user_id": "user",
    "categories": "category",
    "ip_ranges": "ip-range",
    "expires_on": "expires",
    "vat_id": "vat-id",
    "address_line": "address-line",
    "legal_name": "legal-name",
    "billing_email": "billing-email",
    "electronic_address": "electronic-address",
    "exchange_rate": "exchange-rate",
    "exemption_reason": "exemption-reason",
    "lines": "line",
    "owner_id": "customer",
    "mail_notify": "mail-notify",
    "event_types": "event",
}


class ReportingGroup(click.Group):
    """Turns domain and configuration errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerdeskError as exc:
            detail = "; ".join(
                f"{OPTION_NAMES.get(e.property, e.property)}: {e.message}" for e in exc.errors
            )
            raise click.ClickException(detail or exc.message) from None
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def json_option(command: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object instead of prose."
    )(command)


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def emit(as_json: bool, payload: dict[str, Any], prose: str) -> None:
    if as_json:
        click.echo(json.dumps(payload, default=_default, ensure_ascii=False))
    else:
        click.echo(prose)


class IsoDate(click.ParamType[date, Any]):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


class Parsed(click.ParamType[Any, Any]):
    """A value parsed by a domain function that raises ValueError with a clear message."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
