"""What the endpoints stand on, handed to each handler: threads, stores, caches, audit."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from pypid.audit import AuditLog
from pypid.caches import Caches
from pypid.domain.access import Principal
from pypid.interfaces import IBlobStore
from pypid.publish import Publisher
from pypid.store.registry import Conflict, NotFound, Protected, Row, StoreError
from pypid.upstream.proxy import Upstream
from pypid.upstream.settings import Layer
from pypid.web.errors import HTTPError
from pypid.web.gate import client_address
from pypid.web.metrics import Metrics

log = Logger()
MAX_ID = 2**63 - 1


@dataclass
class Services:
    run_db: Callable[..., Deferred[Any]]
    run_worker: Callable[..., Deferred[Any]]
    blobs: IBlobStore
    publisher: Publisher
    caches: Caches
    max_upload_size: int
    public_url: str | None = None
    audit_log: AuditLog | None = None
    metrics: Metrics | None = None
    accel_prefix: str | None = None  # --accel-redirect: nginx sends the blobs
    upstream: Upstream | None = None  # the proxy of other indexes (pypid.upstream)
    # The daemon's --upstream settings, under every index's own.
    upstream_default: Layer = field(default_factory=Layer)
    # --download redirect: (sha256, filename) -> a presigned URL of the object.
    presign: Callable[[str, str], str] | None = None
    # --download proxy: (sha256, offset, length) -> bytes of the object (a worker's job).
    read_range: Callable[[str, int, int], bytes] | None = None
    gate: Any = None  # the app's Gate: the sign-in page counts failures to its bans

    def base_url(self, request: IRequest) -> str:
        """The server's external base URL: --public-url, else as the client reached it
        (GitLab's web_url fields are absolute; python-gitlab compares them with its own)."""
        if self.public_url:
            return self.public_url
        host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
        if any(char in host for char in "/\\@ \t\r\n") or not host.isascii():
            host = "localhost"
        return ("https://" if request.isSecure() else "http://") + host

    async def store(self, function: Callable[..., Any], *args: Any) -> Any:
        """A registry call whose refusals become 404/400 answers."""
        if any(type(arg) is int and not 0 < arg <= MAX_ID for arg in args):
            raise HTTPError(404, "Not Found")  # ids SQLite cannot even hold exist nowhere
        try:
            return await self.run_db(function, *args)
        except NotFound as error:
            raise HTTPError(404, str(error)) from None
        except Protected as error:  # a package protection rule: 403, naming the rule
            raise HTTPError(403, f"Forbidden: {error}") from None
        except Conflict as error:  # GitLab's 409: the name is taken, and the like
            raise HTTPError(409, f"Conflict - {error}") from None
        except StoreError as error:
            raise HTTPError(400, f"Bad request - {error}") from None

    def audit(self, request: IRequest, principal: Principal | None, action: str,
              **details: Any) -> None:
        """Record a change in the audit log, from a worker thread (fire and forget)."""
        if self.audit_log is None:
            return
        actor = principal.name if principal is not None else "anonymous"
        record = functools.partial(self.audit_log.record, actor, client_address(request),
                                   action, **details)
        # The change is done; a failing audit write is logged, never turned into an error.
        maybeDeferred(self.run_worker, record).addErrback(
            lambda failure: log.failure("cannot write the audit log", failure))

    def upload_recorder(
        self, request: IRequest, principal: Principal, project: Row
    ) -> Callable[[Row], None] | None:
        """What the database thread calls with the new file row, to audit the upload."""
        audit = self.audit_log
        if audit is None:
            return None
        address = client_address(request)

        def record(row: Row) -> None:
            audit.record(principal.name, address, "upload", project=project["path"],
                         filename=row["filename"], sha256=row["sha256"], size=row["size"])

        return record


def json_answer(request: IRequest, document: Any, code: int = 200) -> bytes:
    body = json.dumps(document).encode("utf-8")
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def json_body(request: IRequest) -> dict[str, Any]:
    """A small JSON object body (settings, yanks); {} when there is none."""
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
