"""What the hot paths would otherwise ask SQLite for on every request, kept in memory.

Invalidation: a daemon's own writes drop what they change (per project, or everything)
and publish it on the data dir's change signal (pypid.changes); before each request a
daemon applies what other processes (another daemon, the admin CLI) published since its
last request, so it reads their writes at once. Writers that do not publish (a sqlite3
shell) are noticed through SQLite's data_version, polled twice a second, and drop
everything. A fill that raced with an invalidation is not stored (generation check), so a
stale answer cannot outlive the change that made it stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pypid.changes import EVERYTHING, NOTHING, ChangeSignal
from pypid.store.registry import Registry

K = TypeVar("K")
V = TypeVar("V")
WATCH_INTERVAL_SECONDS = 0.5
# A key the cache does not hold (None may be a cached answer).
MISSING: Any = object()


class Table(Protocol):
    """A cache's dict-like face: BoundedCache, or a project's plain dict."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def __setitem__(self, key: Any, value: Any) -> None: ...


class BoundedCache(Generic[K, V]):
    """A dict that forgets everything when it grows past its bound (cheap, and safe)."""

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._items: dict[K, V] = {}

    def get(self, key: K, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._bound:
            self._items.clear()
        self._items[key] = value

    __setitem__ = put

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Caches:
    generation: int = 0
    principals: BoundedCache[Any, Any] = field(default_factory=lambda: BoundedCache(50_000))
    projects: BoundedCache[str, Any] = field(default_factory=lambda: BoundedCache(50_000))
    roles: BoundedCache[tuple[int, int], Any] = field(default_factory=lambda: BoundedCache(100_000))
    # project id -> {key: value}: rendered pages and file lookups of that project.
    project_data: BoundedCache[int, dict[Any, Any]] = field(
        default_factory=lambda: BoundedCache(20_000)
    )
    groups: BoundedCache[str, Any] = field(default_factory=lambda: BoundedCache(50_000))
    # (group id, principal) -> GroupAccess: what the principal may read below the group.
    group_access: BoundedCache[tuple[int, Any], Any] = field(
        default_factory=lambda: BoundedCache(100_000))
    # group id -> {key: value}: the group index's pages and file lookups.
    group_data: BoundedCache[int, dict[Any, Any]] = field(
        default_factory=lambda: BoundedCache(20_000))

    # Projects whose cache holds pages from an upstream: an upload anywhere may make such
    # a name local (never taken from upstream again), so every change drops them too.
    upstream_projects: set[int] = field(default_factory=set)
    # Shared with the other processes on the data dir; None: this process is alone.
    signal: ChangeSignal | None = None
    seen: int = 0  # the signal's last change applied here

    def __post_init__(self) -> None:
        if self.signal is not None:
            self.seen = self.signal.sequence()

    def sync(self) -> None:
        """Apply the changes other processes published since the last call (before each
        request: one read of shared memory when nothing changed)."""
        signal = self.signal
        if signal is None:
            return
        now = signal.sequence()
        if now == self.seen:
            return
        scopes = signal.since(self.seen, now)
        self.seen = now
        if scopes is None or EVERYTHING in scopes:
            self.drop_all()
        else:
            for project_id in set(scopes) - {NOTHING}:
                self.drop_project(project_id)

    def _publish(self, scope: int) -> None:
        if self.signal is not None:
            number = self.signal.publish(scope)
            if number == self.seen + 1:  # nobody else published meanwhile: nothing to apply
                self.seen = number

    def clear(self) -> None:
        """This process changed something any cached answer may depend on."""
        self.drop_all()
        self._publish(EVERYTHING)

    def project_changed(self, project_id: int) -> None:
        """This process changed a project's packages: its pages, and every group page (any
        group above it may show them; groups are few, so all their pages go)."""
        self.drop_project(project_id)
        self._publish(project_id)

    def drop_all(self) -> None:
        self.generation += 1
        self.upstream_projects.clear()
        self.principals.clear()
        self.projects.clear()
        self.roles.clear()
        self.project_data.clear()
        self.groups.clear()
        self.group_access.clear()
        self.group_data.clear()

    def drop_project(self, project_id: int) -> None:
        self.generation += 1
        self.project_data.pop(project_id)
        self.group_data.clear()
        for holder in self.upstream_projects:
            self.project_data.pop(holder)
        self.upstream_projects.clear()

    def upstream_pages_in(self, project_id: int) -> None:
        self.upstream_projects.add(project_id)

    def for_project(self, project_id: int) -> dict[Any, Any]:
        return _entry(self.project_data, project_id)

    def project_table(self, project_id: int) -> Callable[[], Table]:
        return lambda: self.for_project(project_id)

    def for_group(self, group_id: int) -> dict[Any, Any]:
        return _entry(self.group_data, group_id)

    def group_table(self, group_id: int) -> Callable[[], Table]:
        return lambda: self.for_group(group_id)

    async def fill(
        self, table: Callable[[], Table], key: Any, load: Callable[[], Awaitable[Any]],
        keep: Callable[[Any], bool] = lambda value: True,
        fresh: Callable[[Any], bool] = lambda value: True,
    ) -> Any:
        """The cached value under key, else load()'s, kept (if keep(value)) unless a change
        in the meantime (the generation moved) may have made it stale. The one guarded
        fill: every cache of the daemon is filled through here.

        table is called again after the load: a project's dict may have been dropped and
        made anew while the load ran. A held value that is not fresh(value) (an upstream
        page past its TTL) is loaded again.
        """
        value = table().get(key, MISSING)
        if value is not MISSING and fresh(value):
            return value
        generation = self.generation
        value = await load()
        if generation == self.generation and keep(value):
            table()[key] = value
        return value


def _entry(store: BoundedCache[int, dict[Any, Any]], key: int) -> dict[Any, Any]:
    """The dict of one project's (or group's) cached data, made on first use."""
    data = store.get(key)
    if data is None:
        data = {}
        store.put(key, data)
    return data  # type: ignore[no-any-return]


class ChangeWatcher:
    """Polls the database's data_version: another process's commit that was not published
    on the change signal (a writer that is not pypid) drops the caches."""

    log = Logger()

    def __init__(
        self, clock: IReactorTime, run: Callable[..., Deferred[Any]], caches: Caches
    ) -> None:
        self._run = run
        self._caches = caches
        self._seen: int | None = None
        self._signalled: int | None = None
        self._loop = LoopingCall(self.check)
        self._loop.clock = clock

    def start(self) -> None:
        self._loop.start(WATCH_INTERVAL_SECONDS, now=True).addErrback(
            lambda failure: self.log.failure("change watcher stopped", failure)
        )

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def check(self) -> Deferred[None]:
        # Read before the query: a commit published meanwhile may look unpublished, which
        # costs one needless drop, never a missed one.
        signal = self._caches.signal
        signalled = signal.sequence() if signal is not None else None

        def compare(version: int) -> None:
            moved = self._seen is not None and version != self._seen
            if moved and (signalled is None or signalled == self._signalled):
                self._caches.drop_all()
            self._seen = version
            self._signalled = signalled

        def failed(failure: Any) -> None:
            self.log.failure("cannot read the database's data_version", failure)

        return self._run(Registry.data_version).addCallbacks(compare, failed)
