"""The upstream proxy: pages kept for their TTL and revalidated, files fetched once into
the blob store after their sha256 was checked, one fetch for any number of concurrent asks.

What an index shows of a page (allow-list, cooldown, size limit) is decided here too, in
`visible`, so that a page and a download can never disagree about a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from pypid.blobs.guard import BlobGuard
from pypid.caches import BoundedCache
from pypid.interfaces import IBlobStore
from pypid.store.registry import Registry, Row
from pypid.upstream.client import MAX_PAGE_SIZE, PageReply, UpstreamClient, UpstreamError
from pypid.upstream.flight import SingleFlight
from pypid.upstream.parse import PageGarbage, UpstreamFile, parse_page
from pypid.upstream.settings import UpstreamSettings, public_url

log = Logger()
# After a failed revalidation, a stale page is served this long before pypid asks again
# (so that a down upstream costs one attempt per interval, not one per request).
RETRY_SECONDS = 10.0
MAX_METADATA_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_FILE_SIZE = 5 * 1024**3  # CUDA wheels are gigabytes


@dataclass
class CachedPage:
    files: tuple[UpstreamFile, ...] | None  # None: the upstream has no page of this name
    etag: str | None
    fetched_at: float  # monotonic seconds
    failed_at: float | None = None
    failure: str | None = None


@dataclass(frozen=True)
class PageView:
    """What an index shows of an upstream page."""

    files: tuple[UpstreamFile, ...]
    fetched_at: float
    stale: str | None = None  # the upstream failed: why (the page is the last good copy)
    source: str = ""  # the upstream page's URL, without credentials


class FileFetch:
    """One upstream file on its way into the store, followed by every request for it:
    how much of it the temp file holds, and how it ended (its row, or a Failure)."""

    def __init__(self, entry: UpstreamFile) -> None:
        self.entry = entry
        self.temp_path: str | None = None
        self.length: int | None = None  # the upstream's Content-Length, or the page's size
        self.written = 0
        self.checked = False  # the whole file is in the temp file and passed its checks
        self.finished = False  # in the store with its row (result), or failed (a Failure)
        self.result: Any = None
        self._watchers: list[Callable[[], None]] = []

    # Progress, from the download (pypid.upstream.client.Progress).
    def started(self, length: int | None, temp_path: str) -> None:
        self.length, self.temp_path = length, temp_path
        self._notify()

    def wrote(self, total: int) -> None:
        self.written = total
        self._notify()

    def passed(self) -> None:
        """Every byte is in the temp file and matches the page's sha256 and size."""
        self.checked = True
        self._notify()

    def finish(self, result: Any) -> None:
        self.finished, self.result = True, result
        self._notify()

    @property
    def failed(self) -> bool:
        return self.finished and isinstance(self.result, Failure)

    def watch(self, watcher: Callable[[], None]) -> None:
        self._watchers.append(watcher)

    def unwatch(self, watcher: Callable[[], None]) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def _notify(self) -> None:
        for watcher in list(self._watchers):
            watcher()

    def until(self, condition: Callable[[], bool]) -> Deferred[None]:
        """Fires once condition() holds (checked now and at every change)."""
        done: Deferred[None] = Deferred()

        def check() -> None:
            if not done.called and condition():
                self.unwatch(check)
                done.callback(None)

        self.watch(check)
        check()
        return done

    async def outcome(self) -> Row:
        """The file's row once it is in the store; raises what made the fetch fail."""
        await self.until(lambda: self.finished)
        if isinstance(self.result, Failure):
            self.result.raiseException()
        row: Row = self.result
        return row


@dataclass
class Upstream:
    client: UpstreamClient
    run_db: Callable[..., Deferred[Any]]
    run_worker: Callable[..., Deferred[Any]]
    blobs: IBlobStore
    guard: BlobGuard
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    pages: BoundedCache[str, CachedPage] = field(default_factory=lambda: BoundedCache(20_000))
    flights: SingleFlight = field(default_factory=SingleFlight)
    in_flight: dict[tuple[str, str], FileFetch] = field(default_factory=dict)
    fetches: dict[str, int] = field(default_factory=lambda: {"page": 0, "file": 0,
                                                              "metadata": 0, "failed": 0})

    # -- pages -----------------------------------------------------------------------------

    async def view(self, settings: UpstreamSettings, name: str) -> PageView | None:
        """The files of name that this index shows from upstream; None: the upstream has no
        such page. Raises UpstreamError when the upstream fails and no copy is kept."""
        url = settings.page_url(name)
        cached = self.pages.get(url)
        now = self.clock()
        stale = None
        if cached is None or now - cached.fetched_at >= settings.ttl:
            if cached is not None and cached.failed_at is not None \
                    and now - cached.failed_at < RETRY_SECONDS:
                stale = cached.failure
            else:
                try:
                    cached = await self.flights.run(("page", url),
                                                    lambda: self._refresh(url, name))
                except UpstreamError as error:
                    cached = self.pages.get(url)
                    if cached is None:
                        raise
                    cached.failed_at, cached.failure = self.clock(), error.reason
                    stale = error.reason
        assert cached is not None
        if cached.files is None:
            return None
        return PageView(self.visible(settings, cached.files), cached.fetched_at, stale,
                        public_url(url))

    async def _refresh(self, url: str, name: str) -> CachedPage:
        previous = self.pages.get(url)
        self.fetches["page"] += 1
        try:
            reply: PageReply = await self.client.page(
                url, previous.etag if previous is not None else None)
            if reply.status == 304 and previous is not None:
                page = CachedPage(previous.files, previous.etag, self.clock())
            elif reply.status == 404:
                page = CachedPage(None, None, self.clock())
            else:
                try:
                    files = await self.run_worker(parse_page, reply.body, reply.content_type,
                                                  url, name)
                except PageGarbage as error:
                    raise UpstreamError(502, f"Bad Gateway - the upstream page "
                                             f"{public_url(url)} is unusable: {error}") from None
                page = CachedPage(tuple(files), reply.etag, self.clock())
        except UpstreamError as error:
            self.fetches["failed"] += 1
            log.warn("upstream: {reason}", reason=error.reason)
            raise
        self.pages[url] = page
        return page

    def visible(self, settings: UpstreamSettings,
                files: tuple[UpstreamFile, ...]) -> tuple[UpstreamFile, ...]:
        """The files an index shows: none over the size limit (they could not be served),
        none younger than the cooldown (or of unknown age while one is set)."""
        cutoff = None
        if settings.min_age_days > 0:
            cutoff = self.wall_clock() - timedelta(days=settings.min_age_days)
        shown = []
        for entry in files:
            if entry.size is not None and entry.size > self.max_file_size:
                continue
            if cutoff is not None:
                uploaded = _instant(entry.upload_time)
                if uploaded is None or uploaded > cutoff:
                    continue
            shown.append(entry)
        return tuple(shown)

    # -- files -----------------------------------------------------------------------------

    async def fetching(self, entry: UpstreamFile, name: str) -> Row | FileFetch:
        """The file's row in upstream_files if its blob is in the store; else the fetch
        that brings it (one, however many ask at once), to follow or to wait for."""
        row: Row | None = await self.run_db(Registry.upstream_file, entry.sha256,
                                            entry.filename)
        if row is not None and await self.run_worker(_present, self.blobs, entry.sha256):
            await self.run_db(Registry.touch_upstream_file, row["id"])
            return row
        key = (entry.sha256, entry.filename)
        fetch = self.in_flight.get(key)
        if fetch is None:
            fetch = self.in_flight[key] = FileFetch(entry)
            self.fetches["file"] += 1

            def settle(result: Any) -> None:
                self.in_flight.pop(key, None)
                fetch.finish(result)

            Deferred.fromCoroutine(self._fetch(entry, name, fetch)).addBoth(settle)
        return fetch

    async def _fetch(self, entry: UpstreamFile, name: str, fetch: FileFetch) -> Row:
        fetched = await self.client.download(entry.url, self.blobs, self.max_file_size,
                                             fetch, entry.size)
        where = public_url(entry.url)
        problem = None
        if fetched.sha256 != entry.sha256:
            problem = (f"Bad Gateway - {entry.filename} from {where} does not match the "
                       f"sha256 its upstream page gives; it was discarded")
        elif entry.size is not None and fetched.size != entry.size:
            problem = (f"Bad Gateway - {entry.filename} from {where} is {fetched.size} "
                       f"bytes, not the {entry.size} its upstream page gives; discarded")
        if problem is not None:
            self.fetches["failed"] += 1
            log.warn("upstream: {reason}", reason=problem)
            await self.run_worker(self.blobs.discard, fetched.temp_path)
            raise UpstreamError(502, problem)
        # Checked: those following the fetch may have every byte now, while it is made
        # durable as an upload is (the blob under its key first, then the row).
        fetch.passed()
        # In a worker: the hold may wait for another process's delete of these bytes.
        await self.run_worker(self.guard.hold, [entry.sha256])
        try:
            await self.run_worker(self.blobs.sync_temp, fetched.temp_path)
            await self.run_worker(self.blobs.commit, fetched.temp_path, entry.sha256)
            row: Row = await self.run_db(Registry.record_upstream_file, entry.sha256,
                                         entry.filename, name, fetched.size, where)
        finally:
            self.guard.release([entry.sha256])
        return row

    async def metadata(self, entry: UpstreamFile) -> bytes:
        """The file's PEP 658 metadata, fetched once and checked against the page."""
        sha256 = entry.metadata_sha256
        assert sha256 is not None
        data: bytes | None = await self.run_db(Registry.upstream_metadata, sha256)
        if data is not None:
            return data
        fetched: bytes = await self.flights.run(("metadata", sha256),
                                                lambda: self._fetch_metadata(entry))
        return fetched

    async def _fetch_metadata(self, entry: UpstreamFile) -> bytes:
        import hashlib

        self.fetches["metadata"] += 1
        url = entry.url + ".metadata"
        fetched = await self.client.download(url, self.blobs, MAX_METADATA_SIZE)
        try:
            if fetched.sha256 != entry.metadata_sha256:
                self.fetches["failed"] += 1
                raise UpstreamError(502, f"Bad Gateway - the metadata of {entry.filename} "
                                         "does not match the sha256 its upstream page gives")
            data: bytes = await self.run_worker(_read, fetched.temp_path)
        finally:
            await self.run_worker(self.blobs.discard, fetched.temp_path)
        assert hashlib.sha256(data).hexdigest() == entry.metadata_sha256
        await self.run_db(Registry.record_upstream_metadata, entry.metadata_sha256, data)
        return data


def find(view: PageView, sha256: str, filename: str) -> UpstreamFile | None:
    for entry in view.files:
        if entry.sha256 == sha256 and entry.filename == filename:
            return entry
    return None


def _present(blobs: IBlobStore, key: str) -> bool:
    stream = blobs.open(key)
    if stream is None:
        return False
    stream.close()
    return True


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(MAX_PAGE_SIZE)


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
