"""Prepared reads: SQLAlchemy statements compiled once, run straight on the DBAPI cursor.

Why this exists: executing a statement through SQLAlchemy's ORM or Core costs 40-90 µs
of Python per statement on this hardware (see bench/), more than the whole budget of a
request that must keep up with a bare ASGI app. The statements are still written with
SQLAlchemy (so they stay portable between SQLite and PostgreSQL and follow the models),
compiled once per dialect, and then run with the driver's own cursor: a few µs each.

Only what the hot read paths need is supported: plain bind parameters (no expanding
``IN`` lists), positional (SQLite) or named (psycopg) parameter styles, and the type
conversions SQLAlchemy would apply on either side.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ReturningInsert, UpdateBase

Processor = Callable[[Any], Any]

# SQLite caps it at its compile-time maximum (2 GiB on Linux); larger files are read
# through the mapping up to there and with read() beyond.
SQLITE_MMAP_BYTES = 1 << 31


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None
    defaults: Mapping[str, Any]
    binders: Mapping[str, Processor]
    readers: tuple[Processor | None, ...]

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = {**self.defaults, **given} if self.defaults else dict(given)
        for name, bind in self.binders.items():
            values[name] = bind(values[name])
        if self.positional is not None:
            return tuple([values[name] for name in self.positional])
        return values

    def convert(self, rows: list[Any]) -> list[Any]:
        readers = self.readers
        if not any(readers):
            return rows
        return [
            tuple(
                [
                    value if read is None or value is None else read(value)
                    for read, value in zip(readers, row, strict=True)
                ]
            )
            for row in rows
        ]


class Prepared:
    """A SELECT (or an INSERT ... RETURNING) compiled on first use for each dialect, then
    reused forever."""

    __slots__ = ("_by_dialect", "_lock", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]] | ReturningInsert[Any]) -> None:
        self.statement = statement
        # By dialect and driver: psycopg and asyncpg both speak "postgresql".
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._by_dialect.get(key)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(key) or self._compile(dialect)
                self._by_dialect[key] = found
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        binders: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binders[name] = processor
        returned = (
            [column.type for column in self.statement.selected_columns]
            if isinstance(self.statement, Select)
            else [column["type"] for column in self.statement.returning_column_descriptions]
        )
        readers = tuple(
            kind.dialect_impl(dialect).result_processor(dialect, None) for kind in returned
        )
        positional = tuple(compiled.positiontup or ()) if compiled.positional else None
        return _Compiled(
            sql=compiled.string,
            positional=positional,
            defaults=compiled.params,
            binders=binders,
            readers=readers,
        )


class Db:
    """A driver connection inside one transaction, for prepared reads.

    With ``begin``, the transaction is only begun by the first query: a request whose
    reads were all answered from memory never touches the database.
    """

    __slots__ = ("begin", "connection", "dialect")

    def __init__(
        self, connection: Any, dialect: Dialect, begin: Callable[[], None] | None = None
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.begin = begin

    def rows(self, query: Prepared, **params: Any) -> list[tuple[Any, ...]]:
        return self._rows(query, params, binary=False)

    def binary_rows(self, query: Prepared, **params: Any) -> list[tuple[Any, ...]]:
        """``rows``, with results in PostgreSQL's binary format where the driver takes it
        (psycopg): bytes come unencoded, not as hex text twice their size to decode."""
        return self._rows(query, params, binary=self.dialect.driver == "psycopg")

    def _rows(
        self, query: Prepared, params: dict[str, Any], *, binary: bool
    ) -> list[tuple[Any, ...]]:
        if self.begin is not None:
            self.begin()
            self.begin = None
        compiled = query.compiled(self.dialect)
        cursor = self.connection.cursor()
        try:
            if binary:
                cursor.execute(compiled.sql, compiled.parameters(params), binary=True)
            else:
                cursor.execute(compiled.sql, compiled.parameters(params))
            return compiled.convert(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, query: Prepared, **params: Any) -> tuple[Any, ...] | None:
        rows = self.rows(query, **params)
        return rows[0] if rows else None

    def column(self, query: Prepared, **params: Any) -> list[Any]:
        return [row[0] for row in self.rows(query, **params)]


_WRITES: dict[tuple[UpdateBase, str, str], tuple[str, tuple[str, ...]]] = {}


def compiled_write(statement: UpdateBase, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """A positional-parameter statement's SQL for ``dialect`` and its parameter names in
    order, compiled once (for bookkeeping writes run straight on a driver connection)."""
    key = (statement, dialect.name, dialect.driver)
    found = _WRITES.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        found = _WRITES[key] = (compiled.string, tuple(compiled.positiontup or ()))
    return found


class PreparedInsert:
    """One row into a mapped table through a prepared ``INSERT ... RETURNING id``.

    For writes on the hot path (a new ticket and its reply hold the write lock): an ORM
    flush or a Core ``insert()`` costs several times the statement itself. Columns left
    None take their scalar defaults, as the ORM would give them.
    """

    def __init__(self, model: type[Any]) -> None:
        table = model.__table__
        self.columns = [column for column in table.columns if column.key != "id"]
        self.defaults = {
            column.key: column.default.arg
            for column in self.columns
            if column.default is not None and column.default.is_scalar
        }
        self.statement = Prepared(
            insert(model)
            .values(
                {column.key: bindparam(column.key, type_=column.type) for column in self.columns}
            )
            .returning(model.id)
        )

    def insert(self, db: Db, values: Mapping[str, Any]) -> int:
        """Insert a row of these column values; the new row's id."""
        given = {}
        for column in self.columns:
            value = values.get(column.key)
            given[column.key] = self.defaults.get(column.key) if value is None else value
        created = db.first(self.statement, **given)
        assert created is not None
        new_id: int = created[0]
        return new_id


def session_db(session: Session) -> Db:
    """Prepared reads inside an ORM session's transaction (for actions that write)."""
    connection = session.connection()
    return Db(connection.connection.driver_connection, connection.dialect)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Db]:
    """A pooled connection for the reads of one request.

    SQLite: one snapshot for all of them (our connections run in autocommit mode, see
    db.engine, so it takes an explicit BEGIN). PostgreSQL: each statement on its own
    (autocommit), which saves the BEGIN and ROLLBACK round trips; every read of a
    request is scoped by id, so a commit landing between two of them cannot mix
    customers or invent rows, at worst show the newer state in the later read.
    """
    pooled = engine.raw_connection()
    try:
        connection: Any = pooled.driver_connection
        if engine.dialect.name == "sqlite":
            connection.execute("BEGIN")
            try:
                yield Db(connection, engine.dialect)
            finally:
                connection.execute("COMMIT")
        else:
            connection.autocommit = True
            try:
                yield Db(connection, engine.dialect)
            finally:
                connection.autocommit = False
    finally:
        pooled.close()


class PinnedReader:
    """Read transactions on one connection kept out of the pool, for a single thread.

    The event loop runs SQLite reads itself (see wire.dispatch); taking a connection
    from the pool and giving it back for each request would cost more than the reads.
    The connection still counts against the pool. It is replaced after any error.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pooled: Any = None
        # Which connection this is: a replaced one starts a new generation.
        self._generation = 0

    def _connection(self) -> Any:
        if self._pooled is None:
            self._pooled = self.engine.raw_connection()
            self._generation += 1
            # Its small writes (try_write) never checkpoint the WAL: that fsync is left
            # to the writers' connections, off the event loop.
            self._pooled.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
            # Read pages straight from the operating system's page cache instead of a
            # read() into the connection's own 2 MB cache: at a million rows most pages
            # a request needs are not in the latter. Only here, on the hot reader:
            # writers' connections with a mapping made mixed traffic 15% slower.
            self._pooled.driver_connection.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        return self._pooled.driver_connection

    def try_write(self, statement: UpdateBase, rows: list[dict[str, Any]]) -> bool:
        """Run ``statement`` for each row in one transaction on this connection, if the
        write lock is free now; False (nothing written) when another writer holds it.

        For small bookkeeping writes made on the event loop, which must never wait for
        a lock. A connection's own commits do not change its ``data_version``, so they
        leave the read cache alone.
        """
        sql, names = compiled_write(statement, self.engine.dialect)
        connection = self._connection()
        try:
            connection.execute("PRAGMA busy_timeout=0")
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # "database is locked": a writer is busy
                return False
            try:
                connection.executemany(sql, [tuple(row[n] for n in names) for row in rows])
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return True
        except BaseException:
            self.close()
            raise
        finally:
            if self._pooled is not None:
                connection.execute("PRAGMA busy_timeout=30000")

    def data_version(self) -> tuple[int, int]:
        """Changes whenever another connection has committed (SQLite's data_version).

        The pragma only compares commits of *other* connections with the connection it
        is asked on, so its value is paired with the connection's generation: after the
        connection is replaced (it went back to the pool, where a writer may have used
        it), the pair differs from every earlier one and nothing cached survives.
        """
        try:
            version: int = self._connection().execute("PRAGMA data_version").fetchone()[0]
        except BaseException:
            self.close()
            raise
        return self._generation, version

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """A read transaction, begun by the first query that needs it."""
        connection = self._connection()
        begun = False

        def begin() -> None:
            nonlocal begun
            connection.execute("BEGIN")
            begun = True

        try:
            try:
                yield Db(connection, self.engine.dialect, begin)
            finally:
                if begun:
                    connection.execute("COMMIT")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is not None:
            pooled.close()
