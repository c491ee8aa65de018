"""The simple repository API: PEP 503 HTML and PEP 691 JSON, negotiated, with ETags.

Pages are rendered from database rows once and cached as bytes with their ETag until an
upload, delete or yank in the project drops them (caches.Caches.project_changed). Pages of
a kilobyte or more are also kept gzip-compressed, compressed once at render time (in the
database thread, with the rendering): pip and uv ask for gzip, and an index compresses
about 7 to 1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, replace
from html import escape
from typing import Any
from urllib.parse import quote

from packaging.version import InvalidVersion, Version
from twisted.web.iweb import IRequest

from pypid.store.registry import Registry
from pypid.web.negotiation import JSON_V1, accepts_gzip, not_modified

API_VERSION = "1.1"
TRACKS_API_VERSION = "1.2"  # PEP 708's tracks key, on pages that come from an upstream


GZIP_MIN = 1024


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: bytes
    content_type: bytes
    gzipped: bytes | None = None  # the body gzip-compressed, for clients that accept it
    gzip_etag: bytes = b""  # a variant's ETag differs from the identity body's (RFC 9110)
    # Pages from an upstream (pypid.web.proxied): served from memory until expires
    # (time.monotonic; 0: until a change drops them, as local pages), with the upstream's
    # page URL in X-Pypid-Upstream and, when the upstream failed, a Warning.
    expires: float = 0.0
    upstream: bytes = b""
    warning: bytes = b""


def write_page(request: IRequest, page: Page) -> bytes:
    """The headers of a page answer, and its body (or 304 if the client has it)."""
    request.setHeader(b"Vary", b"Accept, Accept-Encoding")
    gzipped = page.gzipped is not None and accepts_gzip(request.getHeader(b"accept-encoding"))
    etag = page.gzip_etag if gzipped else page.etag
    request.setHeader(b"ETag", etag)
    request.setHeader(b"Cache-Control", b"private, max-age=0, must-revalidate")
    if page.upstream:
        request.setHeader(b"X-Pypid-Upstream", page.upstream)
        if page.warning:
            request.setHeader(b"Warning", page.warning)
    if not_modified(request.getHeader(b"if-none-match"), etag):
        request.setResponseCode(304)
        return b""
    request.setHeader(b"Content-Type", page.content_type)
    body = page.body
    if gzipped:
        assert page.gzipped is not None
        body = page.gzipped
        request.setHeader(b"Content-Encoding", b"gzip")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def _page(body: bytes, media_type: str) -> Page:
    etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode("ascii") + b'"'
    content_type = media_type + ("; charset=utf-8" if "html" in media_type else "")
    gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN else None
    if gzipped is None or len(gzipped) >= len(body):
        return Page(body, etag, content_type.encode("ascii"))
    return Page(body, etag, content_type.encode("ascii"), gzipped, etag[:-1] + b'-gzip"')


def render_root(projects: list[dict[str, Any]], media_type: str) -> Page:
    if media_type == JSON_V1:
        document = {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": row["display_name"]} for row in projects],
        }
        return _page(json.dumps(document).encode("utf-8"), media_type)
    links = "".join(
        f'    <a href="{quote(row["name"])}/">{escape(row["display_name"])}</a>\n'
        for row in projects
    )
    return _page(_html("Simple index", links), media_type)


def _html(title: str, links: str, tracks: str | None = None) -> bytes:
    version = API_VERSION if tracks is None else TRACKS_API_VERSION
    meta = "" if tracks is None else f'    <meta name="pypi:tracks" content="{escape(tracks)}">\n'
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{version}">\n{meta}'
        f"    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{escape(title)}</h1>\n{links}  </body>\n</html>\n"
    ).encode()


def file_url(files_base: str, row: dict[str, Any]) -> str:
    return f"{files_base}/{row['sha256']}/{quote(row['filename'])}"


def render_package(
    name: str, rows: list[dict[str, Any]], files_base: str, media_type: str,
    tracks: str | None = None,
) -> Page:
    """A package page. files_base: URL of .../packages/pypi/files, relative or absolute;
    tracks: the upstream page it mirrors (PEP 708), for a page from an upstream."""
    page = _render_package(name, rows, files_base, media_type, tracks)
    if tracks is None:
        return page
    return replace(page, upstream=tracks.encode("ascii", "replace"))


def _render_package(
    name: str, rows: list[dict[str, Any]], files_base: str, media_type: str,
    tracks: str | None,
) -> Page:
    if media_type == JSON_V1:
        files = []
        for row in rows:
            entry: dict[str, Any] = {
                "filename": row["filename"],
                "url": file_url(files_base, row),
                "hashes": {"sha256": row["sha256"]},
                "requires-python": row["requires_python"],
                "size": row["size"],
                "upload-time": row["upload_time"],
                "yanked": (row["yanked_reason"] or True) if row["yanked"] else False,
            }
            for optional in ("size", "upload-time"):  # an upstream's HTML page has neither
                if entry[optional] is None:
                    del entry[optional]
            if row["metadata_sha256"]:
                entry["core-metadata"] = {"sha256": row["metadata_sha256"]}
                entry["dist-info-metadata"] = {"sha256": row["metadata_sha256"]}
            files.append(entry)
        versions = sorted({row["version"] for row in rows}, key=_version_order)
        document: dict[str, Any] = {"meta": {"api-version": API_VERSION}, "name": name,
                                    "versions": versions, "files": files}
        if tracks is not None:
            document["meta"]["api-version"] = TRACKS_API_VERSION
            document["tracks"] = [tracks]
        return _page(json.dumps(document).encode("utf-8"), media_type)
    links = []
    for row in rows:
        attributes = [f'href="{escape(file_url(files_base, row))}#sha256={row["sha256"]}"']
        if row["requires_python"]:
            attributes.append(f'data-requires-python="{escape(row["requires_python"])}"')
        if row["metadata_sha256"]:
            value = f"sha256={row['metadata_sha256']}"
            attributes.append(f'data-core-metadata="{value}"')
            attributes.append(f'data-dist-info-metadata="{value}"')
        if row["yanked"]:
            attributes.append(f'data-yanked="{escape(row["yanked_reason"] or "")}"')
        links.append(f"    <a {' '.join(attributes)}>{escape(row['filename'])}</a><br/>\n")
    return _page(_html(f"Links for {name}", "".join(links), tracks), media_type)


def render_from_registry(
    registry: Registry, project_id: int, name: str | None, media_type: str, files_base: str
) -> Page | None:
    """Database thread: the root page (name None) or a package page; None if no files."""
    if name is None:
        return render_root(registry.project_package_names(project_id), media_type)
    rows = registry.package_page_files(project_id, name)
    if not rows:
        return None
    return render_package(name, rows, files_base, media_type)


def render_group_from_registry(
    registry: Registry, project_ids: tuple[int, ...], name: str | None, media_type: str,
    files_base: str,
) -> Page | None:
    """Database thread: a group's root page, or a package page from the project that owns
    the name in the group (pypid.web.group_pypi); None if no readable project has it."""
    if name is None:
        return render_root(registry.group_package_names(project_ids), media_type)
    owner = registry.group_package_owner(project_ids, name)
    if owner is None:
        return None
    return render_package(name, registry.package_page_files(owner, name), files_base,
                          media_type)


def _version_order(text: str) -> Any:
    try:
        return (0, Version(text), text)
    except InvalidVersion:
        return (1, None, text)
