"""``ledgerdesk admin storage`` and ``ledgerdesk admin audit``: keeping watch over the data."""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from pathlib import Path

import click

from ledgerdesk import backup as backups
from ledgerdesk.audit.repository import AuditRepository
from ledgerdesk.audit.trail import trail
from ledgerdesk.cli.support import CliState, IsoDate, ReportingGroup, emit, json_option, pass_state


@click.group(cls=ReportingGroup)
def storage() -> None:
    """Attachment storage: verify bytes, find orphans and leftovers."""


@storage.command("verify")
@click.option(
    "--repair",
    is_flag=True,
    help="Remove orphaned bytes and leftover uploads (safe while serving).",
)
@json_option
@pass_state
def storage_verify(state: CliState, repair: bool, as_json: bool) -> None:
    """Check every attachment's bytes against its SHA-256 and size.

    Exits 1 when an attachment's bytes are missing or changed; orphans and leftovers
    are listed (and removed with --repair) but are not an error.
    """
    state.require_current_schema()
    report = state.runtime().maintenance.verify(repair=repair)
    lines = [
        f"Store: {report.store}. Checked {report.checked} distinct attachment contents.",
        f"Missing: {len(report.missing)}. Corrupt: {len(report.corrupt)}.",
        *(f"  missing {sha256}" for sha256 in report.missing),
        *(f"  corrupt {sha256}" for sha256 in report.corrupt),
        f"Orphaned bytes (no attachment row): {len(report.orphans)}"
        + (" removed." if repair else "."),
        *(f"  orphan {sha256}" for sha256 in report.orphans),
        f"Leftover uploads of dead processes: {len(report.leftovers)}"
        + (" removed." if repair else "."),
        *(f"  leftover {path}" for path in report.leftovers),
    ]
    emit(
        as_json,
        {
            "store": report.store,
            "checked": report.checked,
            "missing": report.missing,
            "corrupt": report.corrupt,
            "orphans": report.orphans,
            "leftovers": report.leftovers,
            "repaired": repair,
            "removed": report.removed,
            "healthy": report.healthy,
        },
        "\n".join(lines),
    )
    if not report.healthy:
        sys.exit(1)


@click.group(cls=ReportingGroup)
def backup() -> None:
    """Backups: the database and its attachment bytes, while serving."""


BACKUP_DIR = click.Path(file_okay=False, path_type=Path)


@backup.command("create")
@click.argument("directory", type=BACKUP_DIR)
@json_option
@pass_state
def backup_create(state: CliState, directory: Path, as_json: bool) -> None:
    """Back up the database and the attachment bytes it refers to into DIRECTORY (new or
    empty), while the server goes on serving: SQLite's online backup, or pg_dump on one
    snapshot; then manifest.json with the rows of every table and each file's SHA-256.

    \b
    Example (nightly, from cron or a systemd timer):
      ledgerdesk admin backup create /var/backups/ledgerdesk/$(date +%F)
    """
    state.require_current_schema()
    try:
        manifest = backups.create(state.runtime(), directory)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = manifest["counts"]
    emit(
        as_json,
        {"directory": str(directory), **manifest},
        f"Backed up {manifest['database']} at revision {manifest['revision']} into {directory}: "
        f"{rows.get('tickets', 0)} tickets, {rows.get('invoices', 0)} invoices, "
        f"{len(manifest['files'])} files.",
    )


@backup.command("verify")
@click.argument("directory", type=BACKUP_DIR)
@json_option
def backup_verify(directory: Path, as_json: bool) -> None:
    """Check a backup: every file's size and SHA-256, the database copy's integrity and
    rows (SQLite) or that pg_restore reads the dump. Exits 1 when anything is wrong."""
    try:
        report = backups.verify(directory)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    _report(report, as_json, f"{directory} verifies: {len(report.manifest['files'])} files.")


@backup.command("restore")
@click.argument("directory", type=BACKUP_DIR)
@json_option
@pass_state
def backup_restore(state: CliState, directory: Path, as_json: bool) -> None:
    """Restore a backup into the empty database and data directory the settings name
    (LEDGERDESK_DATABASE_URL, LEDGERDESK_DATA_DIR); refuses one that holds data. The
    backup is verified first and the restored rows compared with its manifest."""
    try:
        report = backups.restore(directory, state.settings())
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    _report(
        report,
        as_json,
        f"Restored {directory} (revision {report.manifest['revision']}); run "
        "`ledgerdesk admin storage verify` to check the attachments.",
    )


def _report(report: backups.Report, as_json: bool, fine: str) -> None:
    emit(
        as_json,
        {"ok": report.ok, "problems": report.problems, "manifest": report.manifest},
        fine if report.ok else "\n".join(["Problems:", *(f"  {p}" for p in report.problems)]),
    )
    if not report.ok:
        sys.exit(1)


@click.group("audit", cls=ReportingGroup, invoke_without_command=True)
@click.option("--user", "user_id", type=int, default=None, help="Only events of this user.")
@click.option("--since", type=IsoDate(), default=None, help="Only events on or after this day.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most."
)
@json_option
@pass_state
@click.pass_context
def audit(
    ctx: click.Context,
    state: CliState,
    user_id: int | None,
    since: date | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit trail, newest first: every change (the event log) and every write or
    authentication that failed or was replayed."""
    if ctx.invoked_subcommand is not None:
        return
    runtime = state.runtime()
    state.require_current_schema()
    runtime.flush_audit()
    start = None if since is None else _start_of(since, state)
    with state.session() as session:
        rows = trail(session, user_id=user_id, since=start, limit=limit)
    prose = "\n".join(
        f"{r['time']}  {r['source']:<7}  user {r['userId'] if r['userId'] is not None else '-':<6}"
        f"  key {r['keyId'] if r['keyId'] is not None else '-':<5}"
        f"  {r['clientAddress'] or '-':<15}  {r['action']:<22}"
        f"  {r['targetId'] if r['targetId'] is not None else '-':<6}  {r['outcome']}"
        + (f" {r['errorCode']}" if r["errorCode"] is not None else "")
        + (f"  {r['requestId']}" if r["requestId"] else "")
        for r in rows
    )
    emit(as_json, {"events": rows}, prose or "No audit events.")


@audit.command("prune")
@click.option(
    "--before", type=IsoDate(), required=True, help="Remove events of days before this one."
)
@json_option
@pass_state
def audit_prune(state: CliState, before: date, as_json: bool) -> None:
    """Remove old audit events (keep what your retention policy asks for)."""
    state.runtime().flush_audit()
    with state.session(write=True) as session:
        removed = AuditRepository(session).delete_before(_start_of(before, state))
    emit(as_json, {"removed": removed}, f"Removed {removed} audit events before {before}.")


def _start_of(day: date, state: CliState) -> int:
    """The first second of ``day`` in the configured time zone."""
    zone = state.runtime().settings.timezone
    return int(datetime.combine(day, time(), zone).timestamp())
