"""The hot paths answered straight from memory, before Klein's routing.

Only answers that memory can give in full take this lane: an index page or a file whose
principal, project, role and page (or file row) are all cached and whose read the access
rules allow; and uploads whose principal, project and role are cached and allowed to write
(then the upload itself runs exactly as the Klein route runs it, `receive_upload`).
Everything else (first requests, refusals, redirects, the packages API) goes to the Klein
app, which answers it and fills the caches. Both lanes share the same
caches, rules and renderers, so they cannot disagree.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from pypid.domain.access import Action
from pypid.domain.names import is_normalized
from pypid.interfaces import IBlobStore
from pypid.web import files, simple, wire
from pypid.web.app import RegistryApp, client_address
from pypid.web.formbody import UPLOAD_PATH

_HOT = re.compile(
    rb"^/api/v4/projects/([^/]+)/packages/pypi/"
    rb"(?:simple/(?:([^/%]+)/)?|files/([0-9a-f]{64})/([^/]+))$"
)


# Pages this large go straight to the socket (pypid.web.wire): one sendmsg from the cached
# bytes instead of the transport's join-and-copy. Smaller ones measured faster through the
# transport, which batches writes per reactor turn.
DIRECT_MIN = 64 * 1024


class FastLane(Resource):
    isLeaf = True

    def __init__(self, app: RegistryApp, blobs: IBlobStore, fallback: IResource) -> None:
        super().__init__()
        self._app = app
        self._caches = app.caches
        self._blobs = blobs
        self._fallback = fallback

    def render(self, request: IRequest) -> bytes | int:
        if request.method == b"GET":
            answer = self._answer(request)
            if answer is not None:
                return answer
        elif request.method == b"POST" and self._upload(request):
            return NOT_DONE_YET
        return self._fallback.render(request)  # type: ignore[no-any-return]

    def _upload(self, request: IRequest) -> bool:
        """Take an upload whose principal memory shows may write; False: not taken."""
        match = UPLOAD_PATH.match(request.path)
        if match is None:
            return False
        limiter = self._app.limiter
        address = client_address(request)
        if limiter is not None and limiter.bans and limiter.banned_for(address) is not None:
            return False
        found = self._app.cached_access(
            request, unquote(match.group(1).decode("ascii")), Action.write)
        if found is None:
            return False
        project, principal = found
        if principal is None:
            return False
        answer = Deferred.fromCoroutine(self._app.receive_upload(request, project, principal))
        answer.addErrback(lambda failure: self._app.error_answer(request, failure))
        answer.addCallback(self._finish, request)
        return True

    @staticmethod
    def _finish(body: bytes, request: IRequest) -> None:
        if request.finished or getattr(request, "_disconnected", False):  # type: ignore[attr-defined]
            return
        request.write(body)
        request.finish()

    def _answer(self, request: IRequest) -> bytes | int | None:
        match = _HOT.match(request.path)
        if match is None:
            return None
        limiter = self._app.limiter
        if limiter is not None and limiter.bans and limiter.banned_for(
            client_address(request)
        ) is not None:
            return None  # banned addresses get their 429 from the Klein routes
        ref = unquote(match.group(1).decode("ascii"))
        project = self._app.cached_read_access(request, ref)
        if project is None:
            return None
        cached = self._caches.for_project(project["id"])
        if match.group(3) is None:
            name = match.group(2)
            package = None if name is None else name.decode("ascii")
            if package is not None and not is_normalized(package):
                return None
            media_type = simple.negotiate_header(request.getHeader(b"accept"))
            page = cached.get(("page", package, media_type))
            if page is None:
                return None
            body = simple.write_page(request, page)
            if len(body) >= DIRECT_MIN and wire.answer_now(request, body):
                return NOT_DONE_YET
            return body
        row = cached.get(("file", match.group(3).decode("ascii")))
        if row is None:
            return None
        filename = unquote(match.group(4).decode("ascii"))
        if filename == row["filename"] + ".metadata" and row["metadata_sha256"]:
            metadata = cached.get(("meta", row["metadata_sha256"]))
            if metadata is None:
                return None
            etag = b'"' + row["metadata_sha256"].encode("ascii") + b'"'
            return files.serve_bytes(request, metadata, filename, etag)
        if filename != row["filename"]:
            return None
        # Opening a local blob is one cheap syscall; its bytes are sent by the producer.
        stream = self._blobs.open(row["blob_key"])
        if stream is None:
            return None
        etag = b'"' + row["sha256"].encode("ascii") + b'"'
        answer = files.serve(request, stream, filename, etag, row["size"])
        if isinstance(answer, bytes):
            return answer
        answer.start()
        return NOT_DONE_YET
