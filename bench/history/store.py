"""The history store: one SQLite file (default) or a PostgreSQL server, one schema, DataFrames out.

`open_store(url)` takes a path (SQLite, standard library) or a `postgresql://` URL (psycopg 3,
the `rnnbench[postgres]` extra). Writers take the store's write lock for their whole
transaction (SQLite `BEGIN IMMEDIATE` in WAL mode, a PostgreSQL advisory lock), so several
processes and machines can add at once; readers never block them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.errors import UserError, one_line
from bench.history import schema

DEFAULT_STORE = "reports/history.sqlite"
STORE_ENV = "RNNBENCH_HISTORY"
_PG_PREFIXES = ("postgresql://", "postgres://")
_PG_LOCK = 19_190_219  # the advisory lock id that serialises writers of one PostgreSQL store
_BUSY_S = 120.0


def store_url(cli_value: str | None) -> str:
    """The store to use: --store, else $RNNBENCH_HISTORY, else reports/history.sqlite."""
    return cli_value or os.environ.get(STORE_ENV) or DEFAULT_STORE


def is_postgres(url: str) -> bool:
    """True for a postgresql:// (or postgres://) URL."""
    return url.startswith(_PG_PREFIXES)


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:
        return tuple(errors)
    return (*errors, psycopg.Error)


@contextmanager
def _one_line(url: str) -> Iterator[None]:
    """A database error (disk full, read-only file, lost connection) as a one-line UserError."""
    try:
        yield
    except _database_errors() as exc:
        raise UserError(f"history store {url}: {one_line(exc)}") from None


class Store:
    """An open history store; every query answers with a pandas DataFrame."""

    def __init__(self, url: str, conn, backend: str):
        self.url, self._conn, self.backend = url, conn, backend

    # -------------------------------------------------------------- plumbing
    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.backend == "postgresql" else text

    def execute(self, text: str, params: Sequence = ()) -> list[tuple]:
        """Run one statement; its rows (empty for statements without a result)."""
        with _one_line(self.url):
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(text), tuple(params))
                return list(cur.fetchall()) if cur.description else []
            finally:
                cur.close()

    def executemany(self, text: str, rows: Sequence[Sequence]) -> None:
        """Run one statement for many parameter rows."""
        with _one_line(self.url):
            cur = self._conn.cursor()
            try:
                cur.executemany(self._sql(text), [tuple(r) for r in rows])
            finally:
                cur.close()

    def frame(self, text: str, params: Sequence = ()):
        """The result of a query as a DataFrame (columns named by the query)."""
        import pandas as pd

        with _one_line(self.url):
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(text), tuple(params))
                columns = [d[0] for d in cur.description]
                return pd.DataFrame(cur.fetchall(), columns=columns)
            finally:
                cur.close()

    @contextmanager
    def writing(self) -> Iterator[Store]:
        """A write transaction holding the store's write lock; rolled back on any error."""
        with _one_line(self.url):
            if self.backend == "sqlite":
                self._conn.execute("BEGIN IMMEDIATE")
            else:
                self._conn.execute("BEGIN")
                self._conn.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        try:
            yield self
        except BaseException:
            with _one_line(self.url):
                self._conn.rollback()
            raise
        with _one_line(self.url):
            self._conn.commit()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- schema
    def version(self) -> int:
        """The schema version of the store (0 for an empty database)."""
        if not self._has_meta():
            return 0
        rows = self.execute("SELECT value FROM history_meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def _has_meta(self) -> bool:
        if self.backend == "sqlite":
            found = self.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "AND name = 'history_meta'")
        else:
            found = self.execute("SELECT to_regclass('history_meta')")
            found = [r for r in found if r[0] is not None]
        return bool(found)

    def upgrade(self, target: int = schema.SCHEMA_VERSION) -> int:
        """Run the missing schema steps up to `target` in one transaction; the new version."""
        with self.writing():
            version = self.version()
            if version > schema.SCHEMA_VERSION:
                raise UserError(f"{self.url}: history schema_version {version} is newer than "
                                f"this rnnbench understands ({schema.SCHEMA_VERSION}); upgrade "
                                "rnnbench to use this store")
            while version < target:
                for statement in schema.STEPS[version]:
                    self.execute(statement)
                version += 1
                self.execute("INSERT INTO history_meta (key, value) VALUES "
                             "('schema_version', ?) ON CONFLICT (key) DO UPDATE SET "
                             "value = excluded.value", (str(version),))
        return version


def open_store(url: str, *, upgrade_to: int = schema.SCHEMA_VERSION, create: bool = True
               ) -> Store:
    """Open (creating and upgrading as needed) the store at a path or postgresql:// URL."""
    store = _connect_postgres(url) if is_postgres(url) else _connect_sqlite(url, create)
    try:
        store.upgrade(upgrade_to)
    except sqlite3.DatabaseError as exc:
        store.close()
        raise UserError(f"{url}: not a usable history store ({exc})") from None
    except BaseException:
        store.close()
        raise
    return store


def _connect_sqlite(url: str, create: bool) -> Store:
    path = Path(url)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a history store file: give a file path "
                        "such as reports/history.sqlite")
    if not path.exists():
        if not create:
            raise UserError(f"{path}: no such history store (create it with "
                            "`rnnbench history add`)")
        if not path.parent.is_dir():
            raise UserError(f"{path}: folder {path.parent} does not exist")
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_S * 1000)}")
        _switch_to_wal(conn)
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not a usable history store ({exc})") from None
    return Store(str(path), _Conn(conn), "sqlite")


def _switch_to_wal(conn) -> None:
    """PRAGMA journal_mode = WAL, retried while another process holds the lock it needs.

    Several processes opening a new store at once can get "database is locked" here at once:
    SQLite does not wait in its busy handler where waiting could deadlock (a shared lock that
    wants to become exclusive), so the retry, with no lock held in between, waits instead.
    """
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _Conn:
    """A DB-API connection in autocommit mode with explicit BEGIN/COMMIT/ROLLBACK (sqlite3 and
    psycopg alike)."""

    def __init__(self, conn):
        self._c = conn

    def cursor(self):
        return self._c.cursor()

    def execute(self, text: str, params: Sequence = ()):
        return self._c.execute(text, params)

    def commit(self) -> None:
        self._c.execute("COMMIT")

    def rollback(self) -> None:
        # sqlite3 says whether a transaction is open; psycopg accepts a stray ROLLBACK.
        if getattr(self._c, "in_transaction", True):
            self._c.execute("ROLLBACK")

    def close(self) -> None:
        self._c.close()


def _connect_postgres(url: str) -> Store:
    try:
        import psycopg
    except ImportError:
        raise UserError("a postgresql:// store needs psycopg 3: pip install "
                        "'rnnbench[postgres]'") from None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot connect to the history store: {first}") from None
    return Store(_redacted(url), _Conn(conn), "postgresql")


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"
