"""``ledgerdesk admin``: accounts, keys and invoices, run on the server side."""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

from ledgerdesk.accounts.billing import BILLING_FIELDS, camel
from ledgerdesk.accounts.people import INVITE_SECONDS, RESET_SECONDS, PeopleService, Purpose
from ledgerdesk.accounts.service import MAIL_CHOICES, AccountReader, AccountService
from ledgerdesk.cli.events import events
from ledgerdesk.cli.invoices import invoice, seller
from ledgerdesk.cli.maintenance import audit, backup, storage
from ledgerdesk.cli.support import (
    CliState,
    IsoDate,
    ReportingGroup,
    emit,
    json_option,
    pass_state,
)
from ledgerdesk.cli.tickets import ticket
from ledgerdesk.cli.webhooks import webhook


@click.group(cls=ReportingGroup)
def admin() -> None:
    """Administer accounts, API keys and invoices."""


admin.add_command(ticket)
admin.add_command(storage)
admin.add_command(backup)
admin.add_command(audit)
admin.add_command(events)
admin.add_command(invoice)
admin.add_command(seller)
admin.add_command(webhook)


# -- users ------------------------------------------------------------------------------


@admin.group(cls=ReportingGroup)
def user() -> None:
    """Customers and staff."""


@user.command("create")
@click.option("--name", required=True, help="Real name; shown as the author of replies.")
@click.option("--email", default=None)
@click.option("--staff", is_flag=True, help="A staff member who answers tickets.")
@click.option(
    "--admin",
    is_flag=True,
    help="With --staff: one who administers staff in the console (invites, disables, "
    "the audit trail).",
)
@json_option
@pass_state
def user_create(
    state: CliState, name: str, email: str | None, staff: bool, admin: bool, as_json: bool
) -> None:
    """Create a user."""
    if admin and not staff:
        raise click.UsageError("--admin is for staff (add --staff)")
    with state.work() as work:
        created = AccountService(work).create_user(name=name, email=email, staff=staff, admin=admin)
        kind = ("admin " if created.is_admin else "") + (
            "staff member" if created.is_staff else "customer"
        )
        emit(as_json, {"userId": created.id}, f"Created {kind} {created.id} ({created.name}).")


@user.command("update")
@click.argument("user_id", type=int)
@click.option("--name", default=None, help="A new name.")
@click.option("--email", default=None, help='A new email address ("" removes it).')
@click.option("--legal-name", default=None, help="The name invoices give the customer.")
@click.option("--vat-id", default=None, help="VAT id, e.g. DE136695976 (checked).")
@click.option("--address-line", default=None, help="Street and number.")
@click.option("--city", default=None)
@click.option("--postcode", default=None)
@click.option("--country", default=None, help="ISO 3166 code, e.g. DE.")
@click.option("--billing-email", default=None, help="Where invoices go, if not --email.")
@click.option(
    "--electronic-address", default=None, help="Peppol address: scheme:id, e.g. 0208:0123456789."
)
@click.option(
    "--mail-notify",
    type=click.Choice(MAIL_CHOICES),
    default=None,
    help="Staff: mail about new tickets and replies: all, own (customers they helped), none.",
)
@click.option(
    "--admin/--no-admin",
    default=None,
    help="Staff: give or take the admin role (the last enabled admin keeps it).",
)
@json_option
@pass_state
def user_update(
    state: CliState,
    /,
    user_id: int,
    name: str | None,
    email: str | None,
    mail_notify: str | None,
    admin: bool | None,
    as_json: bool,
    **billing: str | None,
) -> None:
    """Change a user's name, email address or a customer's billing details ("" clears
    one). An invoice needs the customer's country; its VAT treatment follows from the
    country and the VAT id.

    \b
    Example:
      ledgerdesk admin user update 7 --name "Acme B.V." --email billing@acme.example
      ledgerdesk admin user update 7 --legal-name "Acme B.V." --vat-id NL854560178B01 \\
        --address-line "Keizersgracht 1" --city Amsterdam --postcode "1015 CD" --country NL
    """
    if (
        name is None
        and email is None
        and mail_notify is None
        and admin is None
        and all(v is None for v in billing.values())
    ):
        raise click.UsageError("give at least one of the options to change")
    with state.work() as work:
        updated = AccountService(work).update_user(
            user_id, name=name, email=email, billing=billing, mail_notify=mail_notify, admin=admin
        )
        # Customers' billing details; staff have none.
        details = {} if updated.is_staff else {f: getattr(updated, f) for f in BILLING_FIELDS}
        emit(
            as_json,
            {
                "userId": updated.id,
                "name": updated.name,
                "email": updated.email,
                **(
                    {"mailNotify": updated.mail_notify, "admin": updated.is_admin}
                    if updated.is_staff
                    else {}
                ),
                **{camel(f): v for f, v in details.items()},
            },
            f"User {updated.id}: {updated.name} <{updated.email or 'no email'}>"
            + "".join(f"; {f.replace('_', ' ')} {v}" for f, v in details.items() if v)
            + ".",
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
                "isAdmin": u.is_admin,
                "disabled": u.disabled_at is not None,
                "canSignIn": u.password_hash is not None,
            }
            for u in users
        ]
        prose = "\n".join(
            f"{u.id:>6}  {('admin   ' if u.is_admin else 'staff   ') if u.is_staff else 'customer'}"
            f"  {u.name}  {u.email or ''}" + ("  (disabled)" if u.disabled_at is not None else "")
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
