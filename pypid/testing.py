"""Test doubles shared by the tests: synchronous runners and an in-memory blob store.

With these, a whole RegistryApp runs inside a SynchronousTestCase under StubTreq: every
"thread" call completes before it returns (STYLE.md pitfall 10a).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from zope.interface import implementer

from pypid.audit import AuditLog
from pypid.authenticator import RegistryAuthenticator
from pypid.caches import Caches
from pypid.domain.access import Principal
from pypid.interfaces import IAuthenticator, IBlobStore
from pypid.publish import Publisher
from pypid.queue import BoundedQueue
from pypid.store.db import open_registry
from pypid.store.registry import Registry, utc_now
from pypid.web.app import RegistryApp
from pypid.web.metrics import Metrics, Stats
from pypid.web.ratelimit import FailedAuthLimiter


def run_now(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """A thread-pool runner that runs the call at once, in this thread (positional
    arguments only, like the daemon's, so that a call the daemon cannot make fails here)."""
    return maybeDeferred(function, *args)


class SyncDatabase:
    """DatabaseService.run, done at once on one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(function, self.registry, *args, **kwargs)


@implementer(IBlobStore)
class MemoryBlobs:
    """IBlobStore keeping committed blobs in a dict (temp files stay real files)."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        temp_dir.mkdir(parents=True, exist_ok=True)
        self.blobs: dict[str, bytes] = {}
        self.synced: set[str] = set()
        self.made: set[str] = set()

    def new_temp(self) -> IO[bytes]:
        stream = tempfile.NamedTemporaryFile(dir=self.temp_dir, delete=False)
        self.made.add(stream.name)
        return stream

    def sync_temp(self, temp_path: str) -> None:
        self.synced.add(temp_path)

    def commit(self, temp_path: str, sha256: str) -> None:
        if temp_path not in self.synced:
            raise AssertionError("commit of a temp file that was not synced first")
        with open(temp_path, "rb") as stream:
            self.blobs.setdefault(sha256, stream.read())
        os.unlink(temp_path)
        self.synced.discard(temp_path)

    def discard(self, temp_path: str) -> None:
        Path(temp_path).unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(key, data)
        return key

    def open(self, sha256: str) -> IO[bytes] | None:
        data = self.blobs.get(sha256)
        return None if data is None else io.BytesIO(data)

    open_local = open

    def modified(self, sha256: str) -> float | None:
        return 0.0 if sha256 in self.blobs else None

    def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    def verify(self, sha256: str) -> bool:
        data = self.blobs.get(sha256)
        return data is not None and hashlib.sha256(data).hexdigest() == sha256

    def keys(self) -> list[str]:
        return sorted(self.blobs)

    def sweep_temp(self) -> int:
        removed = 0
        for path in self.temp_dir.iterdir():
            if str(path) not in self.made:  # its own are in use: this process lives
                path.unlink()
                removed += 1
        return removed


@implementer(IAuthenticator)
class MemoryAuthenticator:
    """IAuthenticator on a dict: personal tokens count with any user name, deploy tokens
    only with their own (as the registry's). Everything is in memory, so `cached` always
    knows."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[Principal, str | None]] = {}

    def add(self, secret: str, principal: Principal) -> None:
        username = principal.name if principal.is_deploy_token else None
        self._tokens[secret] = (principal, username)

    def revoke(self, secret: str) -> None:
        self._tokens.pop(secret, None)

    def cached(self, username: str | None, secret: str, digest: str | None = None
               ) -> tuple[bool, Principal | None]:
        found = self._tokens.get(secret)
        if found is None:
            return True, None
        principal, required = found
        return True, principal if required is None or required == username else None

    def authenticate(self, username: str | None, secret: str) -> Deferred[Principal | None]:
        return succeed(self.cached(username, secret)[1])


@dataclass
class AppHarness:
    app: RegistryApp
    registry: Registry
    database: SyncDatabase
    blobs: IBlobStore
    caches: Caches


def make_app(
    data_dir: Path, blobs: IBlobStore | None = None, max_upload_size: int = 52_428_800,
    public_url: str | None = None, now: Callable[[], datetime] = utc_now,
    queue_workers: int = 4, queue_waiting: int = 64,
    run_worker: Callable[..., Deferred[Any]] = run_now,
    limiter: FailedAuthLimiter | None = None,
    busy_timeout: float = 5.0,
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128"),
    accel_redirect: str | None = None,
) -> AppHarness:
    """A RegistryApp on a real SQLite file and (by default) a real blob store, all synchronous."""
    from pypid.blobs.filesystem import FilesystemBlobs

    registry = open_registry(data_dir, busy_timeout)
    registry._now = now  # the harness's clock for expiry tests
    registry.bootstrap()
    database = SyncDatabase(registry)
    caches = Caches()
    store: IBlobStore = blobs if blobs is not None else FilesystemBlobs(data_dir)
    queue = BoundedQueue(run_worker, queue_workers, queue_waiting)
    app = RegistryApp(
        run_db=database.run,
        authenticator=RegistryAuthenticator(database.run, caches, now=now),
        blobs=store,
        run_worker=run_now,
        publisher=Publisher(store, queue, database.run, caches),
        caches=caches,
        max_upload_size=max_upload_size,
        public_url=public_url,
        limiter=limiter,
        audit=AuditLog(data_dir),
        metrics=Metrics(Stats(), metrics_allow),
        accel_redirect=accel_redirect,
    )
    return AppHarness(app, registry, database, store, caches)


class ManualRunner:
    """A thread pool whose jobs run only when the test says so; each job is called with
    `leading` first (the registry, for a database thread), then its own arguments."""

    def __init__(self, *leading: Any) -> None:
        self.leading = leading
        self.jobs: list[tuple[Deferred[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def run(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        waiter: Deferred[Any] = Deferred()
        self.jobs.append((waiter, function, args))
        return waiter

    def step(self) -> tuple[Any, ...]:
        """Run the oldest job; its arguments."""
        waiter, function, args = self.jobs.pop(0)
        maybeDeferred(function, *self.leading, *args).chainDeferred(waiter)
        return args

    def drain(self) -> None:
        while self.jobs:
            self.step()
