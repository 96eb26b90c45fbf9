"""Fixtures: a database per backend built by the migrations, and the app on top of it.

Every test that asks for ``database_url`` (directly or through ``app``/``client``) runs
once on SQLite and once on PostgreSQL. The PostgreSQL database is created fresh for the
test session beside ``LEDGERDESK_TEST_POSTGRES_URL`` (default: the local server, or a
throwaway one started by the suite when none answers) and dropped at the end.
``LEDGERDESK_TEST_BACKENDS=sqlite`` limits a local run to SQLite.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import Base
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from tests.support import FrozenClock

# Every answer built from plain rows (wire.types.Shaped) is checked against its model.
envelope.check_shapes = True

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHOSEN_POSTGRES_URL = os.environ.get("LEDGERDESK_TEST_POSTGRES_URL")
BACKENDS = [
    b.strip() for b in os.environ.get("LEDGERDESK_TEST_BACKENDS", "sqlite,postgresql").split(",")
]
CLIENT_ADDRESS = "203.0.113.7"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a test marked slow run first, each file's tests in their order.

    pytest-xdist hands out whole files (``--dist loadfile``, in collection order with
    ``--no-loadscope-reorder``). The slow files take up to two minutes each; started
    last, one of them ran alone on one core while the other sat idle. Started first,
    the many short files fill in around them.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: files stay whole


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL maintenance database to create test databases beside.

    ``LEDGERDESK_TEST_POSTGRES_URL`` when set (CI sets it: the machine's server);
    otherwise the local server at the default address; and when none answers there, a
    throwaway server of the suite's own (pgserver), so a fresh machine runs both halves.
    """
    if CHOSEN_POSTGRES_URL:
        yield CHOSEN_POSTGRES_URL
        return
    if _answers(DEFAULT_POSTGRES_URL):
        yield DEFAULT_POSTGRES_URL
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            import pgserver  # only needed on a machine without PostgreSQL
        except ImportError:
            pytest.fail(
                "no PostgreSQL server answers and pgserver is not installed: "
                "pip install -e '.[test]', or LEDGERDESK_TEST_BACKENDS=sqlite",
                pytrace=False,
            )
        server = pgserver.get_server(tmp_path_factory.mktemp("pgserver"), cleanup_mode="stop")
    # Its own pg_dump and pg_restore (backups) are the ones that match its server.
    tools = Path(pgserver.__file__).parent / "pginstall" / "bin"
    os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    raw = make_url(server.get_uri())
    try:
        yield raw.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    finally:
        server.cleanup()


def _answers(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL, migrated to head once per test session and backend."""
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "ledgerdesk.sqlite3"
        url = f"sqlite+pysqlite:///{path}"
        _migrate(url)
        yield url
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r} in LEDGERDESK_TEST_BACKENDS")
    with fresh_postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new database beside ``admin_url``, migrated to head, dropped afterwards."""
    name = f"ledgerdesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _migrate(url: str) -> None:
    runtime = Runtime.build(Settings(database_url=url, data_dir=Path("/nonexistent")))
    try:
        upgrade(runtime.engine)
    finally:
        runtime.engine.dispose()


@pytest.fixture
def database_url(migrated_database: str) -> str:
    """The migrated database, emptied of rows before the test."""
    engine = create_engine(migrated_database)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    engine.dispose()
    return migrated_database


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
def clock() -> FrozenClock:
    # 2026-11-28 12:00:00 UTC
    return FrozenClock(1795867200)


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[LedgerdeskApp]:
    application = create_app(settings, clock=clock)
    yield application
    application.state.runtime.engine.dispose()


@pytest.fixture
def runtime(app: LedgerdeskApp) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def client(app: LedgerdeskApp) -> httpx.AsyncClient:
    return make_client(app, CLIENT_ADDRESS)


def make_client(app: LedgerdeskApp, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")
