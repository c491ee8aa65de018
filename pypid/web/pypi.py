"""The PyPI endpoints of a project: upload, the simple index, files and their metadata.

Each endpoint has its async handler (the Klein lane: fills the caches) and, where memory
can answer, a `*_from_memory` twin (the fast lane: answers only from what the handler
cached, else None). Both are called after the gate, with what it allowed; the choices an
answer depends on (media type, redirects, file or metadata) are made once, here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from pypid.caches import Table
from pypid.domain.access import Action
from pypid.domain.names import BadName, is_normalized, normalize_package_name
from pypid.publish import UploadRefused
from pypid.store.registry import Protected, Registry, Row, WriteRefused
from pypid.web import files, proxied, simple, wire
from pypid.web.errors import HTTPError, for_refusal
from pypid.web.gate import Allowed
from pypid.web.negotiation import media_type
from pypid.web.services import Services
from pypid.web.site import PypidRequest

log = Logger()
CREATED = b'{"message": "201 Created"}'
METADATA_SUFFIX = ".metadata"
_SHA256 = re.compile("[0-9a-f]{64}")
# Pages this large go straight to the socket (pypid.web.wire): one sendmsg from the cached
# bytes instead of the transport's join-and-copy. Smaller ones measured faster through the
# transport, which batches writes per reactor turn.
DIRECT_MIN = 64 * 1024

# -- upload -------------------------------------------------------------------------------


async def upload(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    """twine's legacy upload form; 201, or the reason it was refused."""
    project, principal = allowed.project, allowed.principal
    assert project is not None and principal is not None  # anonymous never writes
    try:
        if isinstance(request, PypidRequest):
            refused = request.body_refusal()
            if refused is not None:
                raise refused
        content_type = request.getHeader(b"content-type")
        try:
            await services.publisher.publish(
                project, principal, request.content,
                content_type.decode("latin-1") if content_type else None,
                services.upload_recorder(request, principal, project),
            )
        except UploadRefused as error:
            raise HTTPError(error.code, str(error)) from None
        except Protected as error:
            raise HTTPError(403, f"Forbidden: {error}") from None
        except WriteRefused as error:
            # What the upload's own transaction read (a token revoked, a role or setting
            # changed since the gate looked at its caches) decides.
            raise for_refusal(error.refusal, principal, Action.write) from None
    finally:
        request.content.close()
    # Uploads are recorded in the audit log (written in the database thread right after
    # the commit), not as a line in the daemon's log: at hundreds per second, formatting
    # that line was a tenth of the reactor's work.
    request.setResponseCode(201, b"Created")
    request.setHeader(b"Content-Type", b"application/json")
    return CREATED


# -- the simple index ---------------------------------------------------------------------


async def simple_root(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    redirected = root_redirect(request)
    if redirected is not None:
        return redirected
    return await _page(services, request, allowed, None)


def root_redirect(request: IRequest) -> bytes | None:
    """A root index URL without its trailing slash gets a 301 to it (its empty body)."""
    if request.path.endswith(b"/"):
        return None
    redirect(request, "simple/")
    return b""


def simple_root_from_memory(
    services: Services, request: IRequest, allowed: Allowed
) -> bytes | int | None:
    return page_from_memory(request, _project_pages(services, allowed), None, ())


async def simple_package(
    services: Services, request: IRequest, allowed: Allowed, name: str
) -> bytes:
    normalized = normalized_or_redirect(request, name)
    if isinstance(normalized, bytes):
        return normalized
    return await _page(services, request, allowed, normalized)


def normalized_or_redirect(request: IRequest, name: str) -> str | bytes:
    """The PEP 503 name of a package page's URL, or the answer that redirects to it (a
    redirect's empty body); 404 for a name that is no package name at all."""
    try:
        normalized = normalize_package_name(name)
    except BadName:
        raise HTTPError(404, "Package Not Found") from None
    with_slash = request.path.endswith(b"/")
    if not with_slash or not is_normalized(name):
        # PEP 503: redirect to the normalized URL, relative so proxies need no setup.
        return redirect(request, ("../" if with_slash else "") + quote(normalized) + "/")
    return normalized


def simple_package_from_memory(
    services: Services, request: IRequest, allowed: Allowed, name: str
) -> bytes | int | None:
    return page_from_memory(request, _project_pages(services, allowed), name, ())


def _project_pages(services: Services, allowed: Allowed) -> dict[Any, Any]:
    assert allowed.project is not None
    return services.caches.for_project(allowed.project["id"])


def redirect(request: IRequest, target: str) -> bytes:
    _, _, query = request.uri.partition(b"?")
    request.redirect(target.encode("ascii") + (b"?" + query if query else b""))
    request.setResponseCode(301)  # after redirect(), which sets 302
    return b""


def _media_type(request: IRequest) -> str:
    request.setHeader(b"Vary", b"Accept, Accept-Encoding")
    chosen = media_type(request.getHeader(b"accept"))
    if chosen is None:
        raise HTTPError(406, "Not Acceptable: ask for text/html or "
                             "application/vnd.pypi.simple.v1+json")
    return chosen


def _files_base(services: Services, project: Row) -> str:
    if services.public_url:
        return f"{services.public_url}/api/v4/projects/{project['id']}/packages/pypi/files"
    return "../../files"


def _project_index(services: Services, project: Row) -> proxied.Index:
    return proxied.Index(
        services.caches.project_table(project["id"]), _files_base(services, project),
        project["group_ids"][-1], lambda: services.run_db(Registry.project_layers, project),
        project["id"])


async def _page(
    services: Services, request: IRequest, allowed: Allowed, name: str | None
) -> bytes:
    project = allowed.project
    assert project is not None
    return await cached_page(
        services, request, services.caches.project_table(project["id"]), name, (),
        lambda chosen: services.run_db(simple.render_from_registry, project["id"], name,
                                       chosen, _files_base(services, project)),
        proxied.Proxied(services, _project_index(services, project)))


async def cached_page(
    services: Services, request: IRequest, table: Callable[[], Table], name: str | None,
    scope: tuple[Any, ...], render: Callable[[str], Deferred[simple.Page | None]],
    upstream: proxied.Proxied | None = None,
) -> bytes:
    """A page (name None: the root) from table's cache, else rendered (in the database
    thread: a root page of thousands of packages is real work) and kept; scope: what else
    the page depends on (for a group, the projects the principal may read). A package
    with no local files comes from the index's upstream, if it has one."""
    chosen = _media_type(request)

    async def load() -> simple.Page | None:
        page: simple.Page | None = await render(chosen)
        if page is None and name is not None and upstream is not None:
            page = await upstream.page(request, name, chosen)
        return page

    page: simple.Page | None = await services.caches.fill(
        table, ("page", name, chosen, scope), load,
        keep=lambda found: found is not None and found.expires >= 0,
        fresh=lambda held: not held.expires or held.expires > time.monotonic())
    if page is None:
        raise HTTPError(404, "Package Not Found")
    return simple.write_page(request, page)


def page_from_memory(
    request: IRequest, table: dict[Any, Any], name: str | None, scope: tuple[Any, ...]
) -> bytes | int | None:
    """A cached page for its canonical URL (trailing slash, normalized name); redirects,
    like everything not in memory, are the handler's."""
    if not request.path.endswith(b"/") or (name is not None and not is_normalized(name)):
        return None
    page = table.get(("page", name, media_type(request.getHeader(b"accept")), scope))
    if page is None or (page.expires and page.expires <= time.monotonic()):
        return None  # an upstream page past its TTL is revalidated by the handler
    body = simple.write_page(request, page)
    if len(body) >= DIRECT_MIN and wire.answer_now(request, body):
        return NOT_DONE_YET
    return body


# -- files --------------------------------------------------------------------------------


def _target(sha256: str, filename: str) -> tuple[str, str, bool] | None:
    """(sha256, the distribution's filename, is it the .metadata URL); None: no such URL.
    A file is named by both its digest and its filename: two files may share bytes."""
    sha256 = sha256.lower()
    if _SHA256.fullmatch(sha256) is None:
        return None
    if filename.endswith(METADATA_SUFFIX):
        return sha256, filename[: -len(METADATA_SUFFIX)], True
    return sha256, filename, False


async def file(
    services: Services, request: IRequest, allowed: Allowed, sha256: str, filename: str
) -> bytes | Resource:
    project = allowed.project
    assert project is not None
    return await cached_file(
        services, request, services.caches.project_table(project["id"]), (),
        lambda digest, name: services.run_db(Registry.file_by_name, project["id"], digest,
                                             name), sha256, filename,
        proxied.Proxied(services, _project_index(services, project)))


def file_from_memory(
    services: Services, request: IRequest, allowed: Allowed, sha256: str, filename: str
) -> bytes | int | None:
    project = allowed.project
    assert project is not None
    return file_in_memory(services, request, services.caches.for_project(project["id"]), (),
                          sha256, filename)


async def cached_file(
    services: Services, request: IRequest, table: Callable[[], Table], scope: tuple[Any, ...],
    lookup: Callable[[str, str], Deferred[Row | None]], sha256: str, filename: str,
    upstream: proxied.Proxied | None = None,
) -> bytes | Resource:
    """A file or its .metadata: the row from table's cache, else lookup(sha256, filename),
    else (a file the index's upstream lists) the upstream's, fetched once."""
    target = _target(sha256, filename)
    if target is None:
        raise HTTPError(404, "File Not Found")
    digest, dist_filename, wants_metadata = target
    key = ("file", digest, dist_filename, scope)
    row: Row | None = await services.caches.fill(
        table, key, lambda: lookup(digest, dist_filename),
        keep=lambda found: found is not None or upstream is None)
    if upstream is not None and wants_metadata and (row is None or row.get("upstream")):
        # pip reads it to decide whether it wants the file at all: fetched on its own.
        row = await upstream.metadata_row(digest, dist_filename)
    elif row is None and upstream is not None:
        found = await services.caches.fill(
            table, key, lambda: upstream.file_answer(request, digest, dist_filename),
            keep=lambda found: isinstance(found, dict))
        if isinstance(found, Resource):
            return found  # a large first fetch, streamed as it arrives
        row = found
    if row is None:
        raise HTTPError(404, "File Not Found")
    if wants_metadata:
        if not row["metadata_sha256"]:
            raise HTTPError(404, "File Not Found")
        data = await services.caches.fill(
            table, ("meta", row["metadata_sha256"]),
            lambda: _load_metadata(services, row["metadata_sha256"]),
            keep=lambda found: found is not None)
        if data is None:
            raise HTTPError(404, "File Not Found")
        return _metadata_answer(request, row, data, filename)
    if services.accel_prefix is not None:
        return _accel_answer(services.accel_prefix, request, row, filename)
    if services.presign is not None:
        return _redirect_answer(services.presign, request, row, filename)
    if services.read_range is not None:
        read_range = services.read_range
        return files.serve_remote(
            request, lambda offset, length: services.run_worker(
                read_range, row["blob_key"], offset, length),
            row["size"], filename, _quoted(row["sha256"]))
    stream = await services.run_worker(services.blobs.open, row["blob_key"])
    if stream is None:
        log.error("blob {key} of {filename} is missing", key=row["blob_key"],
                  filename=filename)
        raise HTTPError(404, "File Not Found")
    answer = _blob_answer(request, row, stream, filename)
    return answer if isinstance(answer, bytes) else files.Stream(answer)


def file_in_memory(
    services: Services, request: IRequest, table: dict[Any, Any], scope: tuple[Any, ...],
    sha256: str, filename: str,
) -> bytes | int | None:
    target = _target(sha256, filename)
    if target is None:
        return None
    digest, dist_filename, wants_metadata = target
    row = table.get(("file", digest, dist_filename, scope))
    if row is None:
        return None
    if wants_metadata:
        data = table.get(("meta", row["metadata_sha256"])) if row["metadata_sha256"] else None
        return None if data is None else _metadata_answer(request, row, data, filename)
    if services.accel_prefix is not None:
        return _accel_answer(services.accel_prefix, request, row, filename)
    if services.presign is not None:
        return _redirect_answer(services.presign, request, row, filename)
    if services.read_range is not None:
        return None  # proxied downloads start in the handler (pypid.web.files.RangeReader)
    # Memory knows this file because it was just served, so its directory entry is cached
    # too: opening it is one cheap syscall, done here; its bytes are sent by the producer.
    stream = services.blobs.open_local(row["blob_key"])
    if stream is None:
        return None
    answer = _blob_answer(request, row, stream, filename)
    if isinstance(answer, bytes):
        return answer
    answer.start()
    return NOT_DONE_YET


async def _load_metadata(services: Services, sha256: str) -> bytes | None:
    """Core metadata from the database (or, for files from before schema 3, a blob)."""
    data: bytes | None = await services.run_db(Registry.core_metadata, sha256)
    if data is None:
        data = await services.run_worker(_read_blob, services.blobs, sha256)
    return data


def _read_blob(blobs: Any, key: str) -> bytes | None:
    stream = blobs.open(key)
    if stream is None:
        return None
    with stream:
        return stream.read()  # type: ignore[no-any-return]


def _metadata_answer(request: IRequest, row: Row, data: bytes, filename: str) -> bytes:
    return files.serve_bytes(request, data, filename, _quoted(row["metadata_sha256"]))


def _accel_answer(prefix: str, request: IRequest, row: Row, filename: str) -> bytes:
    # The blob store's own layout (pypid.blobs.filesystem): blobs/sha256/<ab>/<sha256>.
    key = row["blob_key"]
    return files.accel_redirect(request, filename, _quoted(row["sha256"]),
                                f"{prefix}{key[:2]}/{key}")


def _redirect_answer(presign: Callable[[str, str], str], request: IRequest, row: Row,
                     filename: str) -> bytes:
    """--download redirect: after the same authorization, a 302 to a presigned URL of the
    object (valid for --download-expiry seconds, named filename)."""
    request.setResponseCode(302)
    request.setHeader(b"Location", presign(row["blob_key"], filename).encode("ascii"))
    request.setHeader(b"Cache-Control", b"private, no-store")
    return b""


def _blob_answer(
    request: IRequest, row: Row, stream: Any, filename: str
) -> bytes | files.BlobProducer:
    return files.serve(request, stream, filename, _quoted(row["sha256"]), row["size"])


def _quoted(sha256: str) -> bytes:
    return b'"' + sha256.encode("ascii") + b'"'
