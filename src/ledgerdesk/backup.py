"""Backups: the database and the attachment bytes it refers to, taken while serving,
checked, and restored into an empty data directory or database.

A backup is a directory:

- ``ledgerdesk.sqlite3`` (SQLite: a copy made by SQLite's online backup, in one step, so
  one consistent moment) or ``database.dump`` (PostgreSQL: ``pg_dump``'s custom format,
  run on a snapshot this module exports and keeps open, so that the dump, the counts and
  the list of attachments are of one moment);
- ``attachments/aa/bb/<sha256>``: the bytes of every attachment and received mail the
  database refers to, when they are kept as files (``LEDGERDESK_ATTACHMENT_STORE=local``);
  in the database store they are in the database itself;
- ``manifest.json``, written last: when, which version and schema, the rows of every
  table, and the size and SHA-256 of every file. A directory without one is a backup
  that did not finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ledgerdesk import __version__
from ledgerdesk.attachments.repository import BlobRepository
from ledgerdesk.attachments.storage import LocalBlobStore
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import current_revision
from ledgerdesk.db.models import Base
from ledgerdesk.runtime import Runtime

FORMAT = "ledgerdesk-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "ledgerdesk.sqlite3"
DUMP_FILE = "database.dump"
ATTACHMENTS = "attachments"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup could not be made, checked or restored; the message says why."""


@dataclass
class Report:
    """What a verify or restore found: problems empty means all is well."""

    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- create ----------------------------------------------------------------------------


def create(runtime: Runtime, directory: Path) -> dict[str, Any]:
    """Back up the database and its attachment bytes into ``directory`` (new or empty)."""
    _empty_target(directory)
    started = _now()
    settings = runtime.settings
    if settings.is_sqlite:
        with _sqlite_copy(settings, directory / SQLITE_FILE) as copy:
            counts, referenced = _contents(copy)
            revision = current_revision(copy.engine)
    else:
        with _postgres_snapshot(runtime) as (connection, snapshot):
            _pg_dump(settings.database_url, snapshot, directory / DUMP_FILE)
            counts, referenced = _contents(connection)
            revision = _revision(connection)
    files = [_file_entry(directory, directory / (SQLITE_FILE if settings.is_sqlite else DUMP_FILE))]
    store = runtime.blobs
    if isinstance(store, LocalBlobStore):
        files += _copy_attachments(store, referenced, directory / ATTACHMENTS)
    manifest = {
        "format": FORMAT,
        "started_at": started,
        "finished_at": _now(),
        "ledgerdesk": __version__,
        "database": "sqlite" if settings.is_sqlite else "postgresql",
        "revision": revision,
        "attachments": "files" if isinstance(store, LocalBlobStore) else "in the database",
        "counts": counts,
        "files": files,
    }
    temporary = directory / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, directory / MANIFEST)
    return manifest


def _empty_target(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not an empty directory; give a new one")
    directory.mkdir(parents=True, exist_ok=True)


@contextmanager
def _sqlite_copy(settings: Settings, target: Path) -> Iterator[Connection]:
    """SQLite's online backup of the live file into ``target``, in one step (a reader
    in WAL mode: writers go on meanwhile), then a connection to the copy."""
    source_path = make_url(settings.database_url).database
    if not source_path or not Path(source_path).is_file():
        raise BackupError(f"there is no SQLite database at {source_path}")
    # One file, read as it is (a WAL copy could not be opened read-only).
    _sqlite_backup(sqlite3.connect(source_path, timeout=30), target, "DELETE")
    engine = create_engine(f"sqlite+pysqlite:///{target}")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def _postgres_snapshot(runtime: Runtime) -> Iterator[tuple[Connection, str]]:
    """A read-only REPEATABLE READ transaction and the snapshot it exports (held until
    the dump and the counts are done)."""
    with runtime.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = str(connection.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            yield connection, snapshot


def _pg_dump(database_url: str, snapshot: str, target: Path) -> None:
    url, environment = _libpq(database_url)
    _run(
        ["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={target}", url],
        environment,
        "pg_dump",
    )


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL for PostgreSQL's own tools, its password in the environment (not in the
    process list)."""
    url = make_url(database_url).set(drivername="postgresql")
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
        url = url.set(password=None)
    return url.render_as_string(hide_password=False), environment


def _run(command: list[str], environment: dict[str, str], what: str) -> str:
    try:
        # PostgreSQL's own tools, with arguments of ledgerdesk's making (no shell).
        done = subprocess.run(command, env=environment, capture_output=True, text=True)  # noqa: S603
    except FileNotFoundError:
        raise BackupError(f"{what} is not installed (PostgreSQL's client tools)") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise BackupError(f"{what} failed: {first}")
    return done.stdout


def _contents(connection: Connection) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Rows of every table ledgerdesk has, and every attachment content referred to."""
    counts = {
        table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        for table in Base.metadata.sorted_tables
    }
    with Session(bind=connection) as session:
        referenced = BlobRepository(session).referenced()
    return counts, referenced


def _revision(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _copy_attachments(
    store: LocalBlobStore, referenced: list[tuple[str, int]], root: Path
) -> list[dict[str, Any]]:
    """Each referred file, checked against its name while it is copied."""
    entries = []
    problems = []
    for sha256, size in referenced:
        source = store.path_of(sha256)
        target = root / source.relative_to(store.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            digest, length = _copy_hashing(source, target)
        except FileNotFoundError:
            problems.append(f"attachment {sha256} is missing from the store")
            continue
        if digest != sha256 or length != size:
            problems.append(f"attachment {sha256} is corrupt in the store")
            continue
        entries.append(
            {"path": str(target.relative_to(root.parent)), "bytes": length, "sha256": digest}
        )
    if problems:
        raise BackupError(
            "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            + "; see `ledgerdesk admin storage verify`"
        )
    return entries


def _copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    length = 0
    with source.open("rb") as reading, target.open("wb") as writing:
        while chunk := reading.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    return digest.hexdigest(), length


def _file_entry(root: Path, path: Path) -> dict[str, Any]:
    digest, length = _hash(path)
    return {"path": str(path.relative_to(root)), "bytes": length, "sha256": digest}


def _hash(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    length = 0
    with path.open("rb") as reading:
        while chunk := reading.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
    return digest.hexdigest(), length


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- verify ----------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{directory} has no {MANIFEST}: not a backup, or one that did not finish"
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{path} is not readable JSON") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a {FORMAT} manifest")
    return manifest


def verify(directory: Path) -> Report:
    """Every file present with its size and SHA-256; the database copy readable, with
    the rows the manifest counted (SQLite) or a dump pg_restore can read (PostgreSQL)."""
    manifest = read_manifest(directory)
    report = Report(manifest)
    for entry in manifest["files"]:
        path = directory / entry["path"]
        if not path.resolve().is_relative_to(directory.resolve()):
            report.problems.append(f"{entry['path']}: outside the backup")
            continue
        if not path.is_file():
            report.problems.append(f"{entry['path']}: missing")
            continue
        digest, length = _hash(path)
        if (digest, length) != (entry["sha256"], entry["bytes"]):
            report.problems.append(f"{entry['path']}: changed (size or SHA-256 differs)")
    if report.problems:
        return report
    if manifest["database"] == "sqlite":
        _verify_sqlite(directory / SQLITE_FILE, manifest, report)
    else:
        try:
            _run(
                ["pg_restore", "--list", str(directory / DUMP_FILE)], dict(os.environ), "pg_restore"
            )
        except BackupError as exc:
            report.problems.append(str(exc))
    return report


def _verify_sqlite(path: Path, manifest: dict[str, Any], report: Report) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if found != "ok":
            report.problems.append(f"{SQLITE_FILE}: integrity check says {found}")
            return
        for table, rows in manifest["counts"].items():
            if table not in Base.metadata.tables:
                report.problems.append(f"{table}: not a table of ledgerdesk")
                continue
            # A name of ledgerdesk's own tables (checked above), never the manifest's text.
            name = Base.metadata.tables[table].name
            counted = connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
            if counted != rows:
                report.problems.append(f"{table}: {counted} rows, the manifest says {rows}")
    finally:
        connection.close()


# -- restore ---------------------------------------------------------------------------


def restore(directory: Path, settings: Settings) -> Report:
    """Restore a verified backup into the empty database and data directory that
    ``settings`` name; then compare its rows with the manifest."""
    report = verify(directory)
    if not report.ok:
        raise BackupError("the backup does not verify: " + "; ".join(report.problems[:5]))
    manifest = report.manifest
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest["database"] != kind:
        raise BackupError(
            f"this is a backup of a {manifest['database']} database; "
            f"LEDGERDESK_DATABASE_URL names a {kind} one"
        )
    has_files = manifest["attachments"] == "files"
    if has_files and settings.attachment_store != "local":
        raise BackupError(
            "the backup holds attachment files; restore with LEDGERDESK_ATTACHMENT_STORE=local"
        )
    store_root = settings.data_dir / "attachments"
    if has_files and store_root.exists() and any(store_root.iterdir()):
        raise BackupError(f"{store_root} is not empty; restore into an empty data directory")
    if settings.is_sqlite:
        _restore_sqlite(directory / SQLITE_FILE, settings)
    else:
        _restore_postgres(directory / DUMP_FILE, settings)
    if has_files:
        for entry in manifest["files"]:
            if entry["path"].startswith(ATTACHMENTS + "/"):
                target = settings.data_dir / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(directory / entry["path"], target)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            restored, _ = _contents(connection)
    finally:
        engine.dispose()
    for table, rows in manifest["counts"].items():
        if restored.get(table) != rows:
            report.problems.append(
                f"{table}: {restored.get(table)} rows restored, the manifest says {rows}"
            )
    return report


def _restore_sqlite(source: Path, settings: Settings) -> None:
    target = make_url(settings.database_url).database
    assert target is not None  # Settings refuses an SQLite URL without a file
    path = Path(target)
    if path.exists() and path.stat().st_size > 0:
        raise BackupError(f"{path} exists; restore into an empty data directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_backup(sqlite3.connect(f"file:{source}?mode=ro", uri=True), path, "WAL")


def _sqlite_backup(source: sqlite3.Connection, target: Path, journal_mode: str) -> None:
    """SQLite's backup of ``source`` into ``target`` in one step, left in this journal
    mode; both closed after."""
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
        destination.execute(f"PRAGMA journal_mode={journal_mode}")
    finally:
        destination.close()
        source.close()


def _restore_postgres(dump: Path, settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the database already has {len(tables)} tables; restore into an empty database"
        )
    url, environment = _libpq(settings.database_url)
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            f"--dbname={url}",
            str(dump),
        ],
        environment,
        "pg_restore",
    )
