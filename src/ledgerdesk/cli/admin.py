"""``ledgerdesk admin``: accounts, keys and invoices, run on the server side."""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

from ledgerdesk.accounts.people import INVITE_SECONDS, RESET_SECONDS, PeopleService, Purpose
from ledgerdesk.accounts.service import AccountReader, AccountService
from ledgerdesk.cli.events import events
from ledgerdesk.cli.maintenance import audit, storage
from ledgerdesk.cli.support import (
    CliState,
    IsoDate,
    Parsed,
    ReportingGroup,
    emit,
    json_option,
    pass_state,
)
from ledgerdesk.cli.tickets import ticket
from ledgerdesk.invoices.money import parse_amount, parse_percentage
from ledgerdesk.invoices.service import InvoiceService, invoice_layout, invoices_of


@click.group(cls=ReportingGroup)
def admin() -> None:
    """Administer accounts, API keys and invoices."""


admin.add_command(ticket)
admin.add_command(storage)
admin.add_command(audit)
admin.add_command(events)


# -- users ------------------------------------------------------------------------------


@admin.group(cls=ReportingGroup)
def user() -> None:
    """Customers and staff."""


@user.command("create")
@click.option("--name", required=True, help="Real name; shown as the author of replies.")
@click.option("--email", default=None)
@click.option("--staff", is_flag=True, help="A staff member who answers tickets.")
@json_option
@pass_state
def user_create(state: CliState, name: str, email: str | None, staff: bool, as_json: bool) -> None:
    """Create a user."""
    with state.work() as work:
        created = AccountService(work).create_user(name=name, email=email, staff=staff)
        kind = "staff member" if created.is_staff else "customer"
        emit(as_json, {"userId": created.id}, f"Created {kind} {created.id} ({created.name}).")


@user.command("update")
@click.argument("user_id", type=int)
@click.option("--name", default=None, help="A new name.")
@click.option("--email", default=None, help='A new email address ("" removes it).')
@json_option
@pass_state
def user_update(
    state: CliState, user_id: int, name: str | None, email: str | None, as_json: bool
) -> None:
    """Change a user's name or email address.

    \b
    Example:
      ledgerdesk admin user update 7 --name "Acme B.V." --email billing@acme.example
    """
    if name is None and email is None:
        raise click.UsageError("give --name, --email or both")
    with state.work() as work:
        updated = AccountService(work).update_user(user_id, name=name, email=email)
        emit(
            as_json,
            {"userId": updated.id, "name": updated.name, "email": updated.email},
            f"User {updated.id}: {updated.name} <{updated.email or 'no email'}>.",
        )


@user.command("list")
@json_option
@pass_state
def user_list(state: CliState, as_json: bool) -> None:
    """List users."""
    with state.session() as session:
        users = AccountReader(session).list_users()
        rows = [
            {
                "userId": u.id,
                "name": u.name,
                "email": u.email,
                "isStaff": u.is_staff,
                "disabled": u.disabled_at is not None,
                "canSignIn": u.password_hash is not None,
            }
            for u in users
        ]
        prose = "\n".join(
            f"{u.id:>6}  {'staff   ' if u.is_staff else 'customer'}  {u.name}  {u.email or ''}"
            + ("  (disabled)" if u.disabled_at is not None else "")
            for u in users
        )
        emit(as_json, {"users": rows}, prose or "No users.")


def _link(state: CliState, user_id: int, purpose: Purpose, as_json: bool) -> None:
    with state.work() as work:
        now = work.now
        secret = PeopleService.of(work).issue_link(user_id, purpose, now=now)
        url = f"{state.runtime().settings.public_url}/password/{secret}"
        hours = (INVITE_SECONDS if purpose == "invite" else RESET_SECONDS) // 3600
        what = "Invitation" if purpose == "invite" else "Password reset link"
        emit(
            as_json,
            {"userId": user_id, "url": url, "expiresAt": now + hours * 3600},
            f"{what} for user {user_id} (works once, for {hours} hours):\n{url}",
        )


@user.command("invite")
@click.argument("user_id", type=int)
@json_option
@pass_state
def user_invite(state: CliState, user_id: int, as_json: bool) -> None:
    """Print a one-time link with which USER_ID sets a password (valid 7 days).

    The link starts with LEDGERDESK_PUBLIC_URL; earlier links of the user stop working.
    """
    _link(state, user_id, "invite", as_json)


@user.command("reset-password")
@click.argument("user_id", type=int)
@json_option
@pass_state
def user_reset_password(state: CliState, user_id: int, as_json: bool) -> None:
    """Print a one-time link with which USER_ID sets a new password (valid 2 hours)."""
    _link(state, user_id, "reset", as_json)


@user.command("disable")
@click.argument("user_id", type=int)
@json_option
@pass_state
def user_disable(state: CliState, user_id: int, as_json: bool) -> None:
    """Disable a user: their sessions end, links and API keys stop working at once."""
    with state.work() as work:
        PeopleService.of(work).set_disabled(user_id, True, now=work.now)
        emit(as_json, {"userId": user_id, "disabled": True}, f"User {user_id} is disabled.")


@user.command("enable")
@click.argument("user_id", type=int)
@json_option
@pass_state
def user_enable(state: CliState, user_id: int, as_json: bool) -> None:
    """Enable a disabled user again (their API keys work again; they sign in anew)."""
    with state.work() as work:
        PeopleService.of(work).set_disabled(user_id, False, now=work.now)
        emit(as_json, {"userId": user_id, "disabled": False}, f"User {user_id} is enabled.")


# -- API keys ---------------------------------------------------------------------------


@admin.group(cls=ReportingGroup)
def key() -> None:
    """API keys of customers."""


@key.command("create")
@click.option("--user", "user_id", type=int, required=True, help="The customer's user id.")
@click.option(
    "--category", "categories", multiple=True, help="Allowed category (repeat; default: all)."
)
@click.option(
    "--ip-range", "ip_ranges", multiple=True, help="Allowed CIDR range (repeat; default: any)."
)
@click.option("--expires", type=IsoDate(), default=None, help="Last day the key is valid.")
@click.option("--note", default="", help="What the key is for.")
@json_option
@pass_state
def key_create(
    state: CliState,
    user_id: int,
    categories: tuple[str, ...],
    ip_ranges: tuple[str, ...],
    expires: date | None,
    note: str,
    as_json: bool,
) -> None:
    """Create an API key; the key itself is shown only this once."""
    with state.work() as work:
        new = AccountService(work).create_key(
            user_id=user_id,
            categories=categories,
            ip_ranges=ip_ranges,
            expires_on=expires,
            note=note,
            max_keys=state.runtime().settings.max_keys_per_customer,
        )
        emit(
            as_json,
            {"keyId": new.key.id, "apiKey": new.secret},
            f"Created API key {new.key.id} for user {user_id}.\n"
            f"API key (shown only now): {new.secret}",
        )


@key.command("revoke")
@click.argument("key_id", type=int)
@json_option
@pass_state
def key_revoke(state: CliState, key_id: int, as_json: bool) -> None:
    """Revoke an API key at once."""
    with state.work() as work:
        revoked = AccountService(work).revoke_key(key_id)
        emit(as_json, {"keyId": revoked.id, "revoked": True}, f"Revoked API key {revoked.id}.")


@key.command("list")
@click.option("--user", "user_id", type=int, default=None)
@json_option
@pass_state
def key_list(state: CliState, user_id: int | None, as_json: bool) -> None:
    """List API keys with their scope and usage (never the keys themselves)."""
    state.runtime().flush_key_usage()
    with state.session() as session:
        keys = AccountReader(session).list_keys(user_id)
        rows = [
            {
                "keyId": k.id,
                "userId": k.user_id,
                "categories": k.categories,
                "ipRanges": k.ip_ranges,
                "expires": k.expires_on,
                "note": k.note,
                "created": k.created_at,
                "lastUsed": k.last_used_at,
                "useCount": k.use_count,
                "revoked": k.revoked_at is not None,
            }
            for k in keys
        ]
        prose = "\n".join(
            f"{k.id:>6}  user {k.user_id}  "
            f"{'revoked' if k.revoked_at else 'active '}  "
            f"categories={','.join(k.categories) if k.categories else 'all'}  "
            f"ip={','.join(k.ip_ranges) if k.ip_ranges else 'any'}  "
            f"expires={k.expires_on or 'never'}  last used={_when(k.last_used_at)}  "
            f"uses={k.use_count}  {k.note}"
            for k in keys
        )
        emit(as_json, {"keys": rows}, prose or "No API keys.")


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- invoices ---------------------------------------------------------------------------


@admin.group(cls=ReportingGroup)
def invoice() -> None:
    """Invoices of customers."""


@invoice.command("create")
@click.option("--user", "user_id", type=int, required=True)
@click.option("--title", required=True)
@click.option("--description", default="", help="Multi-line text of what was bought.")
@click.option(
    "--amount-excl-vat",
    "amount_cents",
    type=Parsed("AMOUNT", parse_amount),
    required=True,
    help="Amount excluding VAT, e.g. 350.00.",
)
@click.option(
    "--vat-perc",
    "vat_hundredths",
    type=Parsed("PERCENT", parse_percentage),
    required=True,
    help="VAT percentage, e.g. 21.",
)
@click.option("--date", "created_on", type=IsoDate(), default=None, help="Default: today.")
@click.option("--pay-within-days", type=click.IntRange(0, 3650), default=30, show_default=True)
@json_option
@pass_state
def invoice_create(
    state: CliState,
    user_id: int,
    title: str,
    description: str,
    amount_cents: int,
    vat_hundredths: int,
    created_on: date | None,
    pay_within_days: int,
    as_json: bool,
) -> None:
    """Create an invoice with the next number of its year."""
    with state.work() as work:
        customer = AccountReader(work.session).require_user(user_id)
        view = InvoiceService(work).create(
            customer=customer,
            title=title,
            description=description,
            amount_excl_vat_cents=amount_cents,
            vat_perc_hundredths=vat_hundredths,
            created_on=created_on or state.today(),
            pay_within_days=pay_within_days,
        )
        emit(
            as_json,
            {"invoiceId": view.id, "number": view.number},
            f"Created invoice {view.id} ({view.number}) for user {user_id}: "
            f"{view.amount_net} incl. {view.vat} VAT, pay before {view.pay_before}.",
        )


@invoice.command("mark-paid")
@click.argument("invoice_id", type=int)
@click.option("--date", "paid_on", type=IsoDate(), default=None, help="Default: today.")
@json_option
@pass_state
def invoice_mark_paid(
    state: CliState, invoice_id: int, paid_on: date | None, as_json: bool
) -> None:
    """Mark an invoice paid."""
    with state.work() as work:
        view = InvoiceService(work).mark_paid(invoice_id, paid_on=paid_on or work.today)
        emit(
            as_json,
            {"invoiceId": view.id, "status": view.status},
            f"Invoice {view.id} ({view.number}) is paid (on {view.paid_on}).",
        )


@invoice.command("list")
@click.option("--user", "user_id", type=int, default=None)
@json_option
@pass_state
def invoice_list(state: CliState, user_id: int | None, as_json: bool) -> None:
    """List invoices, oldest first."""
    with state.session() as session:
        views = invoices_of(session, user_id)
        emit(
            as_json,
            {"invoices": [invoice_layout(v) for v in views]},
            "\n".join(
                f"{v.id:>6}  {v.number}  user {v.user_id}  {v.created_on}  "
                f"{v.amount_net:>12}  {v.status:<6}  {v.title}"
                for v in views
            )
            or "No invoices.",
        )
