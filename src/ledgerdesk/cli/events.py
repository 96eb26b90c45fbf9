"""``ledgerdesk admin events``: the event log, read in order, and followed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from ledgerdesk.cli.support import CliState, json_option, pass_state
from ledgerdesk.events.log import EventLog, EventRecord, check_type_filter

# How often --follow looks for new events.
FOLLOW_SECONDS = 0.5


@click.command("events")
@click.option(
    "--after", "after_id", type=click.IntRange(0), default=0, help="Only events after this id."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Only events of this type; repeat for more; ticket.* for all of a subject's.",
)
@click.option(
    "--customer", "customer_id", type=int, default=None, help="Only events about this customer."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=None,
    help="At most this many (default: 100; with --follow, no limit).",
)
@click.option("--follow", is_flag=True, help="Keep printing events as they are committed.")
@json_option
@pass_state
def events(
    state: CliState,
    after_id: int,
    types: tuple[str, ...],
    customer_id: int | None,
    limit: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    """The event log, oldest first: every change any door made, with who, through which
    door and when. --json prints one JSON object per line.

    \b
    Examples:
      ledgerdesk admin events --type ticket.replied --customer 7
      ledgerdesk admin events --after 1200 --follow --json
    """
    try:
        patterns = check_type_filter(types)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--type") from None
    remaining = limit if limit is not None else (None if follow else 100)
    last = after_id
    printed_any = False
    while True:
        batch = 1000 if remaining is None else min(remaining, 1000)
        with state.session() as session:
            found = EventLog(session).after(
                last, types=patterns, customer_id=customer_id, limit=batch
            )
        for event in found:
            click.echo(json.dumps(event.as_json(), ensure_ascii=False) if as_json else _line(event))
            printed_any = True
        if found:
            last = found[-1].id
        if remaining is not None:
            remaining -= len(found)
            if remaining <= 0:
                return
        if len(found) == batch:
            continue  # more are waiting
        if not follow:
            if not printed_any and not as_json:
                click.echo("No events.")
            return
        time.sleep(FOLLOW_SECONDS)


def _line(event: EventRecord) -> str:
    when = datetime.fromtimestamp(event.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    actor = event.actor_kind + (f" {event.actor_id}" if event.actor_id is not None else "")
    if event.key_id is not None:
        actor += f" (key {event.key_id})"
    about = f"customer {event.customer_id}" if event.customer_id is not None else "-"
    subject = f"#{event.subject_id}" if event.subject_id is not None else ""
    return (
        f"{event.id:>8}  {when}  {event.type:<24} {subject:<8}  {about:<14}"
        f"  {actor}  via {event.door}"
    )
