"""Opening the database, and the service that owns the daemon's connection.

SQLite connections are bound to the thread that made them, so the daemon keeps one
connection inside a dedicated single-thread pool and sends every query there; the reactor
never waits on SQLite. The admin CLI opens its own connection to the same file (WAL lets
it write while the daemon reads).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from pypid.changes import NOTHING, ChangeSignal
from pypid.store import schema
from pypid.store.registry import Registry

BUSY_TIMEOUT_SECONDS = 5.0
DATABASE_NAME = "pypid.sqlite3"

P = ParamSpec("P")
T = TypeVar("T")


def connect(path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite_utils.Database:
    """Open (and create or upgrade) the database with the settings pypid relies on."""
    # isolation_level=None: pypid opens its transactions itself, with BEGIN IMMEDIATE,
    # so the CLI and the daemon never deadlock upgrading a read lock to a write lock.
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk when it returns; an accepted upload survives power loss.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        schema.upgrade(conn, path)
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


def open_registry(data_dir: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Registry:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Registry(connect(data_dir / DATABASE_NAME, busy_timeout))


def run_job(registry: Registry, function: Callable[..., T], args: tuple[Any, ...],
            kwargs: dict[str, Any], job_times: Any = None,
            signal: ChangeSignal | None = None, scope: int = NOTHING) -> T:
    """function(registry, ...): timed (job_times, a Histogram) and, if it committed a
    change, published on signal under scope. The daemon's database thread runs every job
    so (NOTHING: the web layer publishes what its changes drop); the admin CLI its
    command (EVERYTHING)."""
    changes = registry.db.conn.total_changes
    started = time.perf_counter() if job_times is not None else 0.0
    try:
        return function(registry, *args, **kwargs)
    finally:
        if job_times is not None:
            job_times.observe(time.perf_counter() - started)
        if signal is not None and registry.db.conn.total_changes != changes:
            signal.publish(scope)


class DatabaseService(Service):
    """Owns the daemon's single connection in a one-thread pool; `run` sends work there."""

    def __init__(self, reactor: IReactorFromThreads, data_dir: Path,
                 job_times: Any = None, signal: ChangeSignal | None = None) -> None:
        """signal: told of every job that committed a change (see pypid.changes.NOTHING)."""
        self._reactor = reactor
        self._signal = signal
        self._job_times = job_times  # a Histogram (pypid.web.metrics), observed here
        self._data_dir = data_dir
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="pypid-db")
        self._registry: Registry | None = None

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def open(self) -> Deferred[Registry]:
        """Open the connection inside the pool's thread (it may only be used there)."""

        def opened() -> Registry:
            self._registry = open_registry(self._data_dir)
            return self._registry

        return deferToThreadPool(self._reactor, self._pool, opened)

    def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Call function(registry, *args, **kwargs) in the database thread."""

        def call() -> T:
            assert self._registry is not None, "database used before it was opened"
            return run_job(self._registry, function, args, kwargs, self._job_times,
                           self._signal)

        return deferToThreadPool(self._reactor, self._pool, call)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()

        def close() -> None:
            if self._registry is not None:
                self._registry.close()
                self._registry = None

        def stop_pool(_: object) -> None:
            self._pool.stop()

        if not self._pool.started:
            return None
        closing = deferToThreadPool(self._reactor, self._pool, close)
        closing.addBoth(stop_pool)
        return closing
