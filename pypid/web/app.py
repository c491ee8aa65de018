"""The Klein app: routes only, each a few lines calling the rooms beneath.

Paths follow GitLab's PyPI package registry API; `:id` is a numeric project id or the
URL-encoded path (`acme%2Ftools`), which arrives here decoded (`<path:ref>`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from klein import Klein
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

import pypid
from pypid.audit import AuditLog
from pypid.blobs.guard import BlobGuard
from pypid.caches import Caches
from pypid.domain.access import Action, Principal, ProjectAccess, may
from pypid.domain.names import BadName, is_normalized, normalize_package_name
from pypid.interfaces import IAuthenticator, IBlobStore
from pypid.publish import Publisher, UploadRefused, remove_unreferenced
from pypid.queue import QueueFull
from pypid.store.registry import NotFound, Registry, Row, StoreError
from pypid.web import errors, files, simple
from pypid.web.credentials import credentials_from
from pypid.web.errors import (
    HTTPError,
    forbidden,
    project_not_found,
    render_error,
    unauthorized,
)
from pypid.web.ratelimit import FailedAuthLimiter
from pypid.web.site import PypidRequest

PROJECT = "/api/v4/projects/<path:ref>"
PYPI = PROJECT + "/packages/pypi"
RETRY_AFTER_SECONDS = b"5"
MAX_PER_PAGE = 100
CREATED = json.dumps({"message": "201 Created"}).encode()
MAX_ID = 2**63 - 1
MAX_PAGE = 2**31


def _json(request: IRequest, document: Any, code: int = 200) -> bytes:
    body = json.dumps(document).encode("utf-8")
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


class RegistryApp:
    app = Klein()
    log = Logger()

    def __init__(
        self,
        run_db: Callable[..., Deferred[Any]],
        authenticator: IAuthenticator,
        blobs: IBlobStore,
        run_worker: Callable[..., Deferred[Any]],
        publisher: Publisher,
        caches: Caches,
        max_upload_size: int,
        public_url: str | None = None,
        limiter: FailedAuthLimiter | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._max_upload_size = max_upload_size
        self.limiter = limiter
        self._audit = audit
        self._run_db = run_db
        self._auth = authenticator
        self._blobs = blobs
        self._run_worker = run_worker
        self._publisher = publisher
        self.caches = caches
        self._public_url = public_url

    def resource(self) -> IResource:
        """The root resource: the fast lane for cached hot reads, Klein for the rest."""
        from pypid.web.fastlane import FastLane

        return FastLane(self, self._blobs, self.app.resource())

    # -- errors ----------------------------------------------------------------------------

    @app.handle_errors(Exception)
    def _error(self, request: IRequest, failure: Any) -> bytes:
        return self.error_answer(request, failure)

    def error_answer(self, request: IRequest, failure: Any) -> bytes:
        """Any failure as an answer: refusals as they are, the machine's trouble as 5xx
        with a reason, anything else logged and 500 (both lanes use this)."""
        from werkzeug.exceptions import MethodNotAllowed
        from werkzeug.exceptions import NotFound as RouteNotFound

        if failure.check(HTTPError):
            return render_error(request, failure.value)
        if failure.check(QueueFull):
            return render_error(request, HTTPError(
                503, "Service Unavailable: too many uploads in progress, retry shortly",
                {b"Retry-After": RETRY_AFTER_SECONDS}))
        if failure.check(RouteNotFound):
            return render_error(request, HTTPError(404, "Not Found"))
        if failure.check(MethodNotAllowed):
            return render_error(request, HTTPError(405, "Method Not Allowed"))
        known = errors.from_environment(failure.value)
        if known is not None:
            self.log.warn("{method} {path} refused: {reason}", method=request.method,
                          path=request.path, reason=known.message)
            return render_error(request, known)
        self.log.failure("unexpected error in {method} {path}", failure,
                         method=request.method, path=request.path)
        return render_error(request, HTTPError(500, "Internal Server Error"))

    # -- who may do what ---------------------------------------------------------------------

    async def _principal(self, request: IRequest) -> Principal | None:
        address = client_address(request)
        if self.limiter is not None:
            left = self.limiter.banned_for(address)
            if left is not None:
                raise HTTPError(
                    429, "Too Many Requests: too many failed sign-ins from your address",
                    {b"Retry-After": b"%d" % max(1, int(left))})
        try:
            credentials = credentials_from(request)
        except HTTPError:
            self._failed_sign_in(address)
            raise
        if credentials is None:
            return None
        principal = await self._auth.authenticate(credentials.username, credentials.secret)
        if principal is None:
            self._failed_sign_in(address)
            raise unauthorized("Unauthorized: invalid, expired or revoked token")
        return principal

    def _failed_sign_in(self, address: str) -> None:
        if self.limiter is not None:
            self.limiter.failed(address)

    def audit(self, request: IRequest, principal: Principal | None, action: str,
              **details: Any) -> None:
        """Record a change in the audit log, from a worker thread (fire and forget)."""
        if self._audit is None:
            return
        actor = principal.name if principal is not None else "anonymous"
        record = functools.partial(self._audit.record, actor, client_address(request), action,
                                   **details)
        # The change is done; a failing audit write is logged, never turned into an error.
        maybeDeferred(self._run_worker, record).addErrback(
            lambda failure: self.log.failure("cannot write the audit log", failure))

    def _upload_recorder(
        self, request: IRequest, principal: Principal, project: Row
    ) -> Callable[[Row], None] | None:
        """What the database thread calls with the new file row, to audit the upload."""
        audit = self._audit
        if audit is None:
            return None
        address = client_address(request)

        def record(row: Row) -> None:
            audit.record(principal.name, address, "upload", project=project["path"],
                         filename=row["filename"], sha256=row["sha256"], size=row["size"])

        return record

    async def _project(self, ref: str) -> Row | None:
        cache = self.caches.projects
        if ref in cache:
            return cache[ref]  # type: ignore[no-any-return]
        generation = self.caches.generation
        try:
            project: Row | None = await self._run_db(Registry.project, ref)
        except NotFound:
            project = None
        if generation == self.caches.generation:
            cache.put(ref, project)
        return project

    async def _access(self, project: Row, principal: Principal | None) -> ProjectAccess:
        if principal is None or principal.user_id is None or principal.is_admin:
            return ProjectAccess(project["id"], project["visibility"], None)
        key = (project["id"], principal.user_id)
        if key in self.caches.roles:
            return self.caches.roles[key]  # type: ignore[no-any-return]
        generation = self.caches.generation
        access: ProjectAccess = await self._run_db(Registry.project_access, project, principal)
        if generation == self.caches.generation:
            self.caches.roles.put(key, access)
        return access

    def cached_read_access(self, request: IRequest, ref: str) -> Row | None:
        """The project, if memory alone shows that this request may read it (fast lane)."""
        found = self.cached_access(request, ref, Action.read)
        return None if found is None else found[0]

    def cached_access(
        self, request: IRequest, ref: str, action: Action
    ) -> tuple[Row, Principal | None] | None:
        """Project and principal, if memory alone shows that this request may do action.

        None means "not known from the caches" or "not allowed": the Klein routes then
        decide, and answer refusals, exactly as for any first request.
        """
        try:
            credentials = credentials_from(request)
        except HTTPError:
            return None
        principal = None
        if credentials is not None:
            known, principal = self._auth.cached(credentials.username, credentials.secret)
            if not known or principal is None:
                return None
        project: Row | None = self.caches.projects.get(ref)
        if project is None:
            return None
        if principal is None or principal.user_id is None or principal.is_admin:
            access = ProjectAccess(project["id"], project["visibility"], None)
        else:
            access = self.caches.roles.get((project["id"], principal.user_id))
            if access is None:
                return None
        return (project, principal) if may(principal, access, action) else None

    async def _authorize(
        self, request: IRequest, ref: str, action: Action
    ) -> tuple[Row, Principal | None]:
        """The project and principal, or the refusal GitLab would give (401/403/404)."""
        principal = await self._principal(request)
        project = await self._project(ref)
        if project is None:
            raise unauthorized() if principal is None else project_not_found()
        access = await self._access(project, principal)
        if may(principal, access, action):
            return project, principal
        if principal is None:
            raise unauthorized()
        if action is not Action.read and may(principal, access, Action.read):
            raise forbidden()
        raise project_not_found()

    # -- health ------------------------------------------------------------------------------

    @app.route("/-/health", methods=["GET", "HEAD"])
    async def health(self, request: IRequest) -> bytes:
        try:
            await self._run_db(Registry.data_version)
            database = "ok"
        except Exception:
            database = "unavailable"
        code = 200 if database == "ok" else 503
        return _json(request, {"status": "ok" if code == 200 else "unavailable",
                               "version": pypid.__version__, "database": database}, code)

    # -- upload ------------------------------------------------------------------------------

    # Both spellings, and never a redirect: twine gives up on a redirected upload.
    @app.route(PYPI + "/", methods=["POST"], strict_slashes=False)
    async def upload(self, request: IRequest, ref: str) -> bytes:
        try:
            project, principal = await self._authorize(request, ref, Action.write)
            assert principal is not None
        except BaseException:
            request.content.close()
            raise
        return await self.receive_upload(request, project, principal)

    async def receive_upload(
        self, request: IRequest, project: Row, principal: Principal
    ) -> bytes:
        """An upload by a principal allowed to write to project (both lanes use this)."""
        try:
            if isinstance(request, PypidRequest) and request.body_error is not None:
                raise request.body_error
            size = self._oversize(request)
            if size is not None:
                raise HTTPError(413, f"File too large: {size} bytes, "
                                     f"limit {self._max_upload_size}")
            content_type = request.getHeader(b"content-type")
            try:
                await self._publisher.publish(
                    project, principal, request.content,
                    content_type.decode("latin-1") if content_type else None,
                    self._upload_recorder(request, principal, project),
                )
            except UploadRefused as error:
                raise HTTPError(error.code, str(error)) from None
        finally:
            request.content.close()
        # Uploads are recorded in the audit log (written in the database thread right after
        # the commit), not as a line in the daemon's log: at hundreds per second, formatting
        # that line was a tenth of the reactor's work.
        request.setResponseCode(201, b"Created")
        request.setHeader(b"Content-Type", b"application/json")
        return CREATED

    def _oversize(self, request: IRequest) -> int | None:
        """The body's size if it is over the limit (the Site stopped storing it)."""
        if isinstance(request, PypidRequest) and request.body_too_large is not None:
            return request.body_too_large
        length = request.getHeader(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_upload_size:
            return int(length)
        return None

    # -- simple index --------------------------------------------------------------------------

    def _files_base(self, project: Row, relative: str) -> str:
        if self._public_url:
            return f"{self._public_url}/api/v4/projects/{project['id']}/packages/pypi/files"
        return relative

    async def _page(
        self, request: IRequest, project: Row, name: str | None
    ) -> bytes:
        media_type = simple.negotiate_header(request.getHeader(b"accept"))
        request.setHeader(b"Vary", b"Accept, Accept-Encoding")
        if media_type is None:
            raise HTTPError(406, "Not Acceptable: ask for text/html or "
                                 "application/vnd.pypi.simple.v1+json")
        pages = self.caches.for_project(project["id"])
        key = ("page", name, media_type)
        page: simple.Page | None = pages.get(key)
        if page is None:
            generation = self.caches.generation
            # Query and render in the database thread: a root page of thousands of
            # packages is real work, and the reactor must not do it.
            page = await self._run_db(
                simple.render_from_registry, project["id"], name, media_type,
                self._files_base(project, "../../files"),
            )
            if page is None:
                raise HTTPError(404, "Package Not Found")
            if generation == self.caches.generation:
                self.caches.for_project(project["id"])[key] = page
        return simple.write_page(request, page)

    # strict_slashes=False: werkzeug would answer a missing slash with its own 308; pypid
    # redirects itself (301, query kept, relative Location).
    @app.route(PYPI + "/simple/", methods=["GET", "HEAD"], strict_slashes=False)
    async def root_index(self, request: IRequest, ref: str) -> bytes:
        if not request.path.endswith(b"/"):
            request.redirect(self._keep_query(request, "simple/"))
            request.setResponseCode(301)  # after redirect(), which sets 302
            return b""
        project, _ = await self._authorize(request, ref, Action.read)
        return await self._page(request, project, None)

    @app.route(PYPI + "/simple/<name>/", methods=["GET", "HEAD"], strict_slashes=False)
    async def package_index(self, request: IRequest, ref: str, name: str) -> bytes:
        project, _ = await self._authorize(request, ref, Action.read)
        try:
            normalized = normalize_package_name(name)
        except BadName:
            raise HTTPError(404, "Package Not Found") from None
        with_slash = request.path.endswith(b"/")
        if not with_slash or not is_normalized(name):
            # PEP 503: redirect to the normalized URL, relative so proxies need no setup.
            target = ("../" if with_slash else "") + quote(normalized) + "/"
            request.redirect(self._keep_query(request, target))
            request.setResponseCode(301)  # after redirect(), which sets 302
            return b""
        return await self._page(request, project, normalized)

    @staticmethod
    def _keep_query(request: IRequest, target: str) -> bytes:
        _, _, query = request.uri.partition(b"?")
        return target.encode("ascii") + (b"?" + query if query else b"")

    # -- files -----------------------------------------------------------------------------

    @app.route(PYPI + "/files/<sha256>/<filename>", methods=["GET", "HEAD"])
    async def download(
        self, request: IRequest, ref: str, sha256: str, filename: str
    ) -> bytes | Resource:
        project, _ = await self._authorize(request, ref, Action.read)
        row = await self._file(project["id"], sha256.lower())
        if row is None:
            raise HTTPError(404, "File Not Found")
        if filename == row["filename"] + ".metadata" and row["metadata_sha256"]:
            data = await self._metadata(project["id"], row["metadata_sha256"])
            if data is None:
                raise HTTPError(404, "File Not Found")
            return files.serve_bytes(request, data, filename, _quoted(row["metadata_sha256"]))
        if filename != row["filename"]:
            raise HTTPError(404, "File Not Found")
        stream = await self._run_worker(self._blobs.open, row["blob_key"])
        if stream is None:
            self.log.error("blob {key} of {filename} is missing", key=row["blob_key"],
                           filename=filename)
            raise HTTPError(404, "File Not Found")
        answer = files.serve(request, stream, filename, _quoted(row["sha256"]), row["size"])
        return answer if isinstance(answer, bytes) else files.Stream(answer)

    async def _metadata(self, project_id: int, sha256: str) -> bytes | None:
        """Core metadata from the database (or, for files from before schema 3, a blob)."""

        async def load() -> bytes | None:
            data: bytes | None = await self._run_db(Registry.core_metadata, sha256)
            if data is None:
                data = await self._run_worker(_read_blob, self._blobs, sha256)
            return data

        return await self._cached(  # type: ignore[no-any-return]
            project_id, ("meta", sha256), load, keep_none=False)

    async def _file(self, project_id: int, sha256: str) -> Row | None:
        return await self._cached(  # type: ignore[no-any-return]
            project_id, ("file", sha256),
            lambda: self._run_db(Registry.file_by_sha256, project_id, sha256))

    async def _cached(
        self, project_id: int, key: tuple[str, str], load: Callable[[], Awaitable[Any]],
        keep_none: bool = True,
    ) -> Any:
        """The project's cached value under key, else load() kept in the cache, unless a
        change in the meantime (the caches' generation moved) may have made it stale."""
        cache = self.caches.for_project(project_id)
        if key in cache:
            return cache[key]
        generation = self.caches.generation
        value = await load()
        if generation == self.caches.generation and (keep_none or value is not None):
            self.caches.for_project(project_id)[key] = value
        return value

    # -- GitLab's packages API -----------------------------------------------------------------

    def _package_json(self, row: Row) -> dict[str, Any]:
        return {"id": row["id"], "name": row["display_name"], "version": row["version"],
                "package_type": "pypi", "status": "default", "created_at": row["created_at"],
                "tags": [], "pipelines": []}

    @staticmethod
    def _file_json(row: Row) -> dict[str, Any]:
        return {"id": row["id"], "package_id": row["package_id"],
                "created_at": row["upload_time"], "file_name": row["filename"],
                "size": row["size"], "file_md5": row["md5"], "file_sha1": None,
                "file_sha256": row["sha256"], "pipelines": [],
                "yanked": bool(row["yanked"]), "yanked_reason": row["yanked_reason"]}

    @staticmethod
    def _page_args(request: IRequest) -> tuple[int, int]:
        def number(name: bytes, default: int) -> int:
            values = request.args.get(name)
            if not values:
                return default
            try:
                value = int(values[0])
            except ValueError:
                raise HTTPError(400, f"Bad request - {name.decode()} is invalid") from None
            if value < 1:
                raise HTTPError(400, f"Bad request - {name.decode()} is invalid")
            return value

        return min(number(b"page", 1), MAX_PAGE), min(number(b"per_page", 20), MAX_PER_PAGE)

    @app.route(PROJECT + "/packages", methods=["GET"])
    async def list_packages(self, request: IRequest, ref: str) -> bytes:
        project, _ = await self._authorize(request, ref, Action.read)
        page, per_page = self._page_args(request)
        package_type = (request.args.get(b"package_type") or [b"pypi"])[0]
        name = (request.args.get(b"package_name") or [b""])[0].decode("utf-8", "replace")
        if package_type != b"pypi":
            rows, total = [], 0
        else:
            rows, total = await self._run_db(
                Registry.list_packages, project["id"], name or None, page, per_page
            )
        pages = max(1, math.ceil(total / per_page))
        headers = {b"X-Page": page, b"X-Per-Page": per_page, b"X-Total": total,
                   b"X-Total-Pages": pages, b"X-Next-Page": page + 1 if page < pages else "",
                   b"X-Prev-Page": page - 1 if page > 1 else ""}
        for header, value in headers.items():
            request.setHeader(header, str(value).encode())
        links = []
        base = request.path.decode("latin-1")
        for rel, number in (("first", 1), ("last", pages),
                            ("next", page + 1 if page < pages else None),
                            ("prev", page - 1 if page > 1 else None)):
            if number is not None:
                query = urlencode({"page": number, "per_page": per_page})
                links.append(f'<{base}?{query}>; rel="{rel}"')
        request.setHeader(b"Link", ", ".join(links).encode("latin-1"))
        return _json(request, [self._package_json(row) for row in rows])

    @app.route(PROJECT + "/packages/<int:package_id>", methods=["GET"])
    async def get_package(self, request: IRequest, ref: str, package_id: int) -> bytes:
        project, _ = await self._authorize(request, ref, Action.read)
        row = await self._store(Registry.package, project["id"], package_id)
        return _json(request, self._package_json(row))

    @app.route(PROJECT + "/packages/<int:package_id>/package_files", methods=["GET"])
    async def get_package_files(self, request: IRequest, ref: str, package_id: int) -> bytes:
        project, _ = await self._authorize(request, ref, Action.read)
        await self._store(Registry.package, project["id"], package_id)
        rows = await self._run_db(Registry.package_files, package_id)
        return _json(request, [self._file_json(row) for row in rows])

    @app.route(PROJECT + "/packages/<int:package_id>", methods=["DELETE"])
    async def delete_package(self, request: IRequest, ref: str, package_id: int) -> bytes:
        project, principal = await self._authorize(request, ref, Action.delete)
        package = await self._store(
            _delete_package, self._blobs, self._publisher.guard, project["id"], package_id)
        self.caches.project_changed(project["id"])
        self.log.info("{user} deleted package {name} {version} of project {project}",
                      user=principal.name if principal else None, name=package["name"],
                      version=package["version"], project=project["path"])
        self.audit(request, principal, "delete_package", project=project["path"],
                   package=package["name"], version=package["version"])
        request.setResponseCode(204)
        return b""

    @app.route(PROJECT + "/packages/<int:package_id>/package_files/<int:file_id>",
               methods=["DELETE"])
    async def delete_file(
        self, request: IRequest, ref: str, package_id: int, file_id: int
    ) -> bytes:
        project, principal = await self._authorize(request, ref, Action.delete)
        row = await self._store(
            _delete_file, self._blobs, self._publisher.guard, project["id"], package_id, file_id)
        self.caches.project_changed(project["id"])
        self.log.info("{user} deleted file {filename} of project {project}",
                      user=principal.name if principal else None, filename=row["filename"],
                      project=project["path"])
        self.audit(request, principal, "delete_file", project=project["path"],
                   filename=row["filename"], sha256=row["sha256"])
        request.setResponseCode(204)
        return b""

    @app.route(PROJECT + "/packages/<int:package_id>/yank", methods=["POST"])
    async def yank(self, request: IRequest, ref: str, package_id: int) -> bytes:
        return await self._set_yanked(request, ref, package_id, True)

    @app.route(PROJECT + "/packages/<int:package_id>/unyank", methods=["POST"])
    async def unyank(self, request: IRequest, ref: str, package_id: int) -> bytes:
        return await self._set_yanked(request, ref, package_id, False)

    async def _set_yanked(
        self, request: IRequest, ref: str, package_id: int, yanked: bool
    ) -> bytes:
        project, principal = await self._authorize(request, ref, Action.delete)
        options = _json_body(request)
        reason, filename = options.get("reason"), options.get("file_name")
        if reason is not None and not isinstance(reason, str):
            raise HTTPError(400, "Bad request - reason must be a string")
        if filename is not None and not isinstance(filename, str):
            raise HTTPError(400, "Bad request - file_name must be a string")
        package = await self._store(Registry.package, project["id"], package_id)
        await self._store(Registry.set_yanked, project["id"], package["name"],
                          package["version"], filename, yanked, reason)
        self.caches.project_changed(project["id"])
        self.audit(request, principal, "yank" if yanked else "unyank", project=project["path"],
                   package=package["name"], version=package["version"], file=filename,
                   reason=reason)
        rows = await self._run_db(Registry.package_files, package_id)
        return _json(request, [self._file_json(row) for row in rows])

    @app.route(PROJECT + "/packages/settings", methods=["GET"])
    async def get_settings(self, request: IRequest, ref: str) -> bytes:
        project, _ = await self._authorize(request, ref, Action.read)
        return _json(request, _settings_json(project))

    @app.route(PROJECT + "/packages/settings", methods=["PUT"])
    async def put_settings(self, request: IRequest, ref: str) -> bytes:
        project, principal = await self._authorize(request, ref, Action.delete)
        allowed = _json_body(request).get("pypi_duplicates_allowed")
        if not isinstance(allowed, bool):
            raise HTTPError(400, "Bad request - pypi_duplicates_allowed must be true or false")
        project = await self._store(
            Registry.set_duplicates, project["id"], "allow" if allowed else "deny")
        self.caches.clear()  # the project row itself is cached under every reference
        self.audit(request, principal, "settings", project=project["path"],
                   duplicates=project["duplicates"])
        return _json(request, _settings_json(project))

    async def _store(self, function: Callable[..., Any], *args: Any) -> Any:
        """A registry call whose refusals become 404/400 answers."""
        if any(type(arg) is int and not 0 < arg <= MAX_ID for arg in args):
            raise HTTPError(404, "Not Found")  # ids SQLite cannot even hold exist nowhere
        try:
            return await self._run_db(function, *args)
        except NotFound as error:
            raise HTTPError(404, str(error)) from None
        except StoreError as error:
            raise HTTPError(400, f"Bad request - {error}") from None


def client_address(request: IRequest) -> str:
    address = request.getClientAddress()
    return str(getattr(address, "host", "local"))


def _quoted(sha256: str) -> bytes:
    return b'"' + sha256.encode("ascii") + b'"'


def _read_blob(blobs: IBlobStore, key: str) -> bytes | None:
    stream = blobs.open(key)
    if stream is None:
        return None
    with stream:
        return stream.read()


def _settings_json(project: Row) -> dict[str, Any]:
    return {"pypi_duplicates_allowed": project["duplicates"] == "allow"}


def _json_body(request: IRequest) -> dict[str, Any]:
    request.content.seek(0)
    raw = request.content.read(65536)
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise HTTPError(400, "Bad request - the body is not JSON") from None
    if not isinstance(document, dict):
        raise HTTPError(400, "Bad request - the body must be a JSON object")
    return document


def _delete_package(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard, project_id: int, package_id: int
) -> Row:
    package, keys = registry.delete_package(project_id, package_id)
    remove_unreferenced(registry, blobs, guard, keys)
    return package


def _delete_file(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard, project_id: int, package_id: int,
    file_id: int,
) -> Row:
    row, keys = registry.delete_file(project_id, package_id, file_id)
    remove_unreferenced(registry, blobs, guard, keys)
    return row
