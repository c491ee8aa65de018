"""The one mapping from a failure to a status, a reason phrase and a body, for every lane.

GitLab answers API errors with {"message": "..."}; twine prints the HTTP reason phrase, so
the same short reason goes there too (as warehouse does). Refusals of the gate, routing
errors of werkzeug, the machine's trouble (full disk, busy database, full queue) and
anything unexpected all end here; only the last is logged with its traceback.
"""

from __future__ import annotations

import errno
import json
import sqlite3

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect

from pypid.blobs.s3 import S3Error
from pypid.domain.access import Action, Principal, Refusal, why_account_forbidden, why_forbidden
from pypid.queue import QueueFull

UNAUTHORIZED_HEADERS = {b"WWW-Authenticate": b'Basic realm="pypid"'}
RETRY_AFTER = {b"Retry-After": b"5"}
log = Logger()


class HTTPError(Exception):
    """A refusal with a reason a person can act on; message is the reason phrase."""

    def __init__(self, code: int, message: str, headers: dict[bytes, bytes] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def reason_phrase(message: str) -> bytes:
    """A reason phrase must be one line of visible ASCII."""
    text = " ".join(message.split())
    return text.encode("ascii", "replace")[:200]


def body_of(error: HTTPError) -> bytes:
    # GitLab's body spelling: {"message": "404 Project Not Found"}.
    return json.dumps({"message": f"{error.code} {error.message}"}).encode("utf-8")


def render_error(request: IRequest, error: HTTPError) -> bytes:
    request.setResponseCode(error.code, reason_phrase(error.message))
    for name, value in error.headers.items():
        request.setHeader(name, value)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    body = body_of(error)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def raw_response(error: HTTPError) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for refusals made before a
    request object exists (the channel's, such as 413 on `Expect: 100-continue`)."""
    body = body_of(error)
    head = [b"HTTP/1.1 %d %s" % (error.code, reason_phrase(error.message)),
            b"Content-Type: application/json", b"Content-Length: %d" % len(body),
            b"Cache-Control: no-store", b"Connection: close"]
    head += [name + b": " + value for name, value in error.headers.items()]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def from_environment(error: BaseException) -> HTTPError | None:
    """Failures of the machine rather than of the request, as answers a client can act on.

    A full disk is 507 (nothing was stored; retry once space is freed); a database held
    busy past the busy timeout (say, by an admin command's long transaction) is 503; so is
    a full upload queue.
    """
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return HTTPError(507, "Insufficient Storage: the registry's disk is full, nothing "
                              "was stored; retry when space is freed")
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    ):
        return HTTPError(503, "Service Unavailable: the database is busy, retry shortly",
                         RETRY_AFTER)
    if isinstance(error, QueueFull):
        return HTTPError(503, "Service Unavailable: too many uploads in progress, retry "
                              "shortly", RETRY_AFTER)
    if isinstance(error, S3Error):
        return HTTPError(503, f"Service Unavailable: {error}; nothing was stored, retry "
                              "shortly", RETRY_AFTER)
    return None


def from_routing(error: BaseException) -> HTTPError | None:
    """werkzeug's routing exceptions (no route, wrong method, a redirect it would make)."""
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        return HTTPError(405, "Method Not Allowed", {b"Allow": allowed.encode("ascii")})
    if isinstance(error, RequestRedirect):
        return HTTPError(404, "Not Found")  # pypid makes its own redirects; no others
    if isinstance(error, HTTPException):
        code = error.code or 500
        return HTTPError(code if 400 <= code < 500 else 404, error.name or "Not Found")
    return None


def answer_failure(request: IRequest, failure: Failure) -> bytes:
    """Any failure of any lane as an answer: refusals as they are, the machine's trouble
    as 5xx with a reason, anything else logged and 500."""
    error: BaseException = failure.value  # type: ignore[assignment]
    known = error if isinstance(error, HTTPError) else from_routing(error)
    if known is None:
        known = from_environment(error)
        if known is not None:
            log.warn("{method} {path} refused: {reason}", method=request.method,
                     path=request.path, reason=known.message)
    if known is None:
        log.failure("unexpected error in {method} {path}", failure,
                    method=request.method, path=request.path)
        known = HTTPError(500, "Internal Server Error")
    return render_error(request, known)


def for_refusal(refused: Refusal, principal: Principal | None, action: Action,
                missing: str = "Project Not Found") -> HTTPError:
    """The gate's refusals; the 404 is the same whether the thing is missing or hidden."""
    if refused is Refusal.unauthorized:
        return unauthorized(_SIGN_IN[action])
    if refused is Refusal.forbidden:
        assert principal is not None
        return HTTPError(403, f"Forbidden: {why_forbidden(principal, action)}")
    return HTTPError(404, missing)


def for_account_refusal(refused: Refusal, principal: Principal | None,
                        action: Action) -> HTTPError:
    """Refusals of the account endpoints (users, tokens): 401 without a user's token."""
    if refused is Refusal.unauthorized:
        return unauthorized("Unauthorized: sign in with a personal access token")
    assert principal is not None
    return HTTPError(403, f"Forbidden: {why_account_forbidden(principal, action)}")


_SIGN_IN = {
    Action.read: "Unauthorized: sign in with a token that may read this project",
    Action.write: "Unauthorized: uploads need a token (user __token__, password a personal "
                  "access token with the api or write_package_registry scope)",
    Action.delete: "Unauthorized: sign in with a maintainer's token",
}


def unauthorized(message: str = "Unauthorized") -> HTTPError:
    return HTTPError(401, message, UNAUTHORIZED_HEADERS)


def bad_path() -> HTTPError:
    return HTTPError(400, "Bad Request: the URL is not UTF-8 once percent-decoded")


__all__ = ["HTTPError", "answer_failure", "for_refusal", "render_error"]
