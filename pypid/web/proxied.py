"""What an index (a project's or a group's) serves from its upstream: the pages of names
with no local files, and the files those pages list.

The rule against dependency confusion is here, once: a name that has files in any project
of the index's top-level group is never taken from upstream, whatever versions the upstream
has (and whether or not the principal may read that project). The allow-list and the
upstream being off make a name unknown (404) as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from pypid.caches import Table
from pypid.domain.names import BadName, parse_distribution_filename
from pypid.store.registry import Registry, Row
from pypid.upstream.client import UpstreamError
from pypid.upstream.parse import UpstreamFile
from pypid.upstream.proxy import FileFetch, find
from pypid.upstream.settings import Layer, UpstreamSettings, resolve
from pypid.web import files, simple
from pypid.web.errors import HTTPError
from pypid.web.services import Services

STALE_WARNING = b'111 pypid "Revalidation Failed"'
# A first fetch smaller than this is checked whole before its first byte is served (a
# mismatch is a 502); a larger one is streamed as it arrives, its last byte held back
# until the check (a mismatch cuts the connection). Either is served from its temp file
# once checked, while it is being made durable.
STREAM_AFTER = 1024 * 1024


def _plain_get(request: IRequest) -> bool:
    return (request.method == b"GET" and request.getHeader(b"range") is None
            and request.getHeader(b"if-none-match") is None)


@dataclass(frozen=True)
class Index:
    """The index a request reads, as the upstream sees it."""

    table: Callable[[], Table]
    files_base: str
    top_group_id: int  # the namespace whose local names are never taken from upstream
    layers: Callable[[], Deferred[list[Layer]]]  # its own upstream settings and its groups'
    project_id: int | None = None  # a project's index (its cache is dropped on changes)


class Proxied:
    """The upstream side of one request's index."""

    def __init__(self, services: Services, index: Index) -> None:
        self._services = services
        self._index = index

    async def settings(self) -> UpstreamSettings:
        services, index = self._services, self._index

        async def load() -> UpstreamSettings:
            layers = await index.layers()
            return resolve([*layers, services.upstream_default])

        settings: UpstreamSettings = await services.caches.fill(
            index.table, ("upstream-settings",), load)
        return settings

    async def _entries_of(self, name: str) -> tuple[UpstreamSettings, Any] | None:
        """The settings and the upstream page view of a name this index may take from
        upstream; None if it may not (or the upstream has no such page)."""
        services = self._services
        upstream = services.upstream
        if upstream is None:
            return None
        settings = await self.settings()
        if not settings.allows(name):
            return None
        # Kept with the index's pages: an upload to any project drops both (the project's
        # cache is marked as holding upstream answers, Caches.project_changed).
        if self._index.project_id is not None:
            services.caches.upstream_pages_in(self._index.project_id)
        local = await services.caches.fill(
            self._index.table, ("local-name", name),
            lambda: services.run_db(Registry.name_is_local, self._index.top_group_id, name))
        if local:
            return None
        try:
            view = await upstream.view(settings, name)
        except UpstreamError as error:
            raise HTTPError(error.code, error.reason) from None
        if view is None or not view.files:
            return None
        return settings, view

    async def page(self, request: IRequest, name: str, media_type: str) -> simple.Page | None:
        """The page of a name with no local files in this index, from upstream."""
        found = await self._entries_of(name)
        if found is None:
            return None
        settings, view = found
        page: simple.Page = await self._services.run_worker(
            simple.render_package, name, [entry.row() for entry in view.files],
            self._index.files_base, media_type, view.source)
        if view.stale is not None:
            # Served, never kept: the next request asks the upstream again (after a pause).
            return replace(page, expires=-1.0, warning=STALE_WARNING)
        return replace(page, expires=view.fetched_at + settings.ttl)

    async def _entry(self, sha256: str, filename: str) -> UpstreamFile | None:
        try:
            name = parse_distribution_filename(filename).name
        except BadName:
            return None
        found = await self._entries_of(name)
        return None if found is None else find(found[1], sha256, filename)

    async def file_answer(self, request: IRequest, sha256: str,
                          filename: str) -> Row | Resource | None:
        """A file the index's upstream page lists: its row if the store has it; else it
        is fetched (checked against the page's sha256) and its row returned, or, for a
        large file still arriving, an answer that streams it as it comes."""
        services = self._services
        upstream = services.upstream
        entry = await self._entry(sha256, filename)
        if entry is None or upstream is None:
            return None
        try:
            found = await upstream.fetching(entry, parse_distribution_filename(filename).name)
            if isinstance(found, dict):
                return _row(entry, found["size"])
            fetch: FileFetch = found
            await fetch.until(lambda: fetch.finished or fetch.checked
                              or fetch.written >= STREAM_AFTER)
            if not fetch.finished and fetch.length is not None and _plain_get(request):
                try:
                    stream = await services.run_worker(open, fetch.temp_path, "rb")
                except FileNotFoundError:
                    pass  # committed meanwhile: served from the store below
                else:
                    return files.follow(request, fetch, stream, filename,
                                        b'"' + sha256.encode("ascii") + b'"', fetch.length)
            row = await fetch.outcome()
        except UpstreamError as error:
            raise HTTPError(error.code, error.reason) from None
        return _row(entry, row["size"])

    async def metadata_row(self, sha256: str, filename: str) -> Row | None:
        """For a .metadata URL: the file's PEP 658 metadata fetched (and checked) on its
        own, without the file; a row naming it."""
        upstream = self._services.upstream
        entry = await self._entry(sha256, filename)
        if entry is None or upstream is None or entry.metadata_sha256 is None:
            return None
        try:
            await upstream.metadata(entry)
        except UpstreamError as error:
            raise HTTPError(error.code, error.reason) from None
        return _row(entry, entry.size)


def _row(entry: UpstreamFile, size: int | None) -> Row:
    return {"filename": entry.filename, "sha256": entry.sha256, "blob_key": entry.sha256,
            "size": size, "metadata_sha256": entry.metadata_sha256, "upstream": True}
