"""``ledgerdesk admin webhook``: endpoints, their delivery log, replays and tests."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ledgerdesk.cli.support import CliState, ReportingGroup, emit, json_option, pass_state
from ledgerdesk.clock import moment_of
from ledgerdesk.webhooks.service import (
    DeliveryView,
    EndpointView,
    WebhookReader,
    WebhookService,
    WithSecret,
)


@click.group(cls=ReportingGroup)
def webhook() -> None:
    """Webhook endpoints: where every event is delivered, signed, and the log of it."""


@webhook.command("create")
@click.option(
    "--url", required=True, help="https://... (http:// only inside the allowed networks)."
)
@click.option(
    "--event",
    "event_types",
    multiple=True,
    help="Only events of this type (repeat; ticket.* for all of a subject's). Default: all.",
)
@click.option("--note", default="", help="What the endpoint is for.")
@click.option(
    "--customer",
    "owner_id",
    type=int,
    default=None,
    help="A customer's own endpoint: only events about that customer.",
)
@click.option(
    "--unordered",
    is_flag=True,
    help="Deliver without waiting for older deliveries that are being retried.",
)
@json_option
@pass_state
def webhook_create(
    state: CliState,
    url: str,
    event_types: tuple[str, ...],
    note: str,
    owner_id: int | None,
    unordered: bool,
    as_json: bool,
) -> None:
    """Register an endpoint; prints its signing secret, once.

    \b
    Example:
      ledgerdesk admin webhook create --url https://hooks.example.com/ledgerdesk \\
          --event 'ticket.*' --event invoice.issued --note provisioning
    """
    with state.work() as work:
        made = WebhookService.of(work, state.settings()).create(
            url=url, event_types=event_types, note=note, owner_id=owner_id, ordered=not unordered
        )
        _with_secret(as_json, made, f"Created webhook endpoint {made.endpoint.id}.")


@webhook.command("list")
@click.option("--customer", "owner_id", type=int, default=None, help="Only this customer's own.")
@click.option("--all", "everyone", is_flag=True, help="Provider-wide and customers' own.")
@json_option
@pass_state
def webhook_list(state: CliState, owner_id: int | None, everyone: bool, as_json: bool) -> None:
    """List endpoints: the provider-wide ones, a customer's own, or all."""
    with state.session() as session:
        found = WebhookReader(session).endpoints(owner_id=owner_id, everyone=everyone)
    emit(
        as_json,
        {"endpoints": [e.as_json() for e in found]},
        "\n".join(_line(e) for e in found) or "No webhook endpoints.",
    )


@webhook.command("disable")
@click.argument("endpoint_id", type=int)
@json_option
@pass_state
def webhook_disable(state: CliState, endpoint_id: int, as_json: bool) -> None:
    """Stop delivering to an endpoint; its pending deliveries wait until it is enabled."""
    _switch(state, endpoint_id, False, as_json)


@webhook.command("enable")
@click.argument("endpoint_id", type=int)
@json_option
@pass_state
def webhook_enable(state: CliState, endpoint_id: int, as_json: bool) -> None:
    """Deliver to an endpoint again (after a 410, days of failures, or by hand)."""
    _switch(state, endpoint_id, True, as_json)


@webhook.command("delete")
@click.argument("endpoint_id", type=int)
@json_option
@pass_state
def webhook_delete(state: CliState, endpoint_id: int, as_json: bool) -> None:
    """Remove an endpoint, its pending deliveries and its log."""
    with state.work() as work:
        WebhookService.of(work, state.settings()).delete(endpoint_id)
    emit(as_json, {"endpointId": endpoint_id, "deleted": True}, f"Deleted endpoint {endpoint_id}.")


@webhook.command("rotate-secret")
@click.argument("endpoint_id", type=int)
@json_option
@pass_state
def webhook_rotate(state: CliState, endpoint_id: int, as_json: bool) -> None:
    """A new signing secret; the old one signs too for LEDGERDESK_WEBHOOK_ROTATION_HOURS."""
    with state.work() as work:
        made = WebhookService.of(work, state.settings()).rotate_secret(endpoint_id)
        until = made.endpoint.as_json()["previousSecretUntil"]
        grace = f" The previous secret signs too until {until}." if until else ""
        _with_secret(as_json, made, f"New secret for endpoint {endpoint_id}.{grace}")


@webhook.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--failed", is_flag=True, help="Only deliveries whose last attempt failed.")
@click.option("--event", "event_id", type=int, default=None, help="Only this event's.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@pass_state
def webhook_deliveries(
    state: CliState,
    endpoint_id: int,
    failed: bool,
    event_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """An endpoint's deliveries, newest first, with every attempt (time, duration,
    status, the start of the answer, the error)."""
    with state.session() as session:
        reader = WebhookReader(session)
        reader.endpoint(endpoint_id)
        found = reader.deliveries(endpoint_id, failed=failed, event_id=event_id, limit=limit)
        attempts = {d.id: reader.attempts(d.id) for d in found}
    if as_json:
        emit(
            True,
            {
                "deliveries": [
                    {**d.as_json(), "attempts": [a.as_json() for a in attempts[d.id]]}
                    for d in found
                ]
            },
            "",
        )
        return
    lines = []
    for delivery in found:
        lines.append(_delivery_line(delivery))
        for tried in attempts[delivery.id]:
            status = str(tried.status) if tried.status is not None else "---"
            lines.append(
                f"    {_when_ms(tried.at)}  {status}  {tried.milliseconds} ms"
                + (f"  {tried.error}" if tried.error else "")
            )
    click.echo("\n".join(lines) or "No deliveries.")


@webhook.command("replay")
@click.argument("endpoint_id", type=int)
@click.option("--event", "event_id", type=int, default=None, help="The event to deliver again.")
@click.option(
    "--since",
    default=None,
    metavar="DATETIME",
    help="Every event from this moment (2026-11-30T08:00; LEDGERDESK_TIMEZONE unless it "
    "says its offset) ...",
)
@click.option("--until", default=None, metavar="DATETIME", help="... to this one (default: now).")
@json_option
@pass_state
def webhook_replay(
    state: CliState,
    endpoint_id: int,
    event_id: int | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Deliver one event again, or every event of a time range the endpoint receives.

    \b
    Examples:
      ledgerdesk admin webhook replay 3 --event 1207
      ledgerdesk admin webhook replay 3 --since 2026-11-30T08:00 --until 2026-11-30T12:00
    """
    if (event_id is None) == (since is None):
        raise click.UsageError("give --event, or --since (and perhaps --until)")
    if until is not None and since is None:
        raise click.UsageError("--until goes with --since")
    zone = state.settings().timezone
    moments = {}
    for option, text in (("--since", since), ("--until", until)):
        try:
            moments[option] = None if text is None else moment_of(text, zone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    with state.work() as work:
        count = WebhookService.of(work, state.settings()).replay(
            endpoint_id, event_id=event_id, since=moments["--since"], until=moments["--until"]
        )
    emit(
        as_json,
        {"endpointId": endpoint_id, "deliveries": count},
        f"Replaying {count} event{'s' if count != 1 else ''} to endpoint {endpoint_id}.",
    )


@webhook.command("test")
@click.argument("endpoint_id", type=int)
@json_option
@pass_state
def webhook_test(state: CliState, endpoint_id: int, as_json: bool) -> None:
    """Send a webhook.tested event to the endpoint, the way real events go."""
    with state.work() as work:
        WebhookService.of(work, state.settings()).send_test(endpoint_id)
    emit(
        as_json,
        {"endpointId": endpoint_id, "test": True},
        f"A test event is on its way to endpoint {endpoint_id}; "
        f"see `ledgerdesk admin webhook deliveries {endpoint_id}`.",
    )


def _switch(state: CliState, endpoint_id: int, enabled: bool, as_json: bool) -> None:
    with state.work() as work:
        view = WebhookService.of(work, state.settings()).set_enabled(endpoint_id, enabled)
    emit(
        as_json,
        view.as_json(),
        f"Endpoint {endpoint_id} is {'enabled' if view.enabled else 'disabled'}.",
    )


def _with_secret(as_json: bool, made: WithSecret, prose: str) -> None:
    emit(
        as_json,
        {**made.endpoint.as_json(), "secret": made.secret},
        f"{prose}\nSigning secret (shown once; keep it where the receiver can read it):\n"
        f"  {made.secret}",
    )


def _line(endpoint: EndpointView) -> str:
    state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
    owner = f"customer {endpoint.owner_id}" if endpoint.owner_id is not None else "everyone"
    types = ",".join(endpoint.event_types) or "all events"
    order = "" if endpoint.ordered else "  unordered"
    note = f"  {endpoint.note}" if endpoint.note else ""
    return f"{endpoint.id:>5}  {endpoint.url}  {owner}  {types}  {state}{order}{note}"


def _delivery_line(delivery: DeliveryView) -> str:
    what = f"event {delivery.event_id} {delivery.event_type}"
    kind = "" if delivery.kind == "event" else f" ({delivery.kind})"
    state = delivery.state
    if state == "pending" and delivery.attempts:
        state += f", next attempt {_when_ms(delivery.next_at)}"
    return f"{delivery.id:>8}  {what}{kind}  {state}  {delivery.attempts} attempt(s)"


def _when_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
