"""One place that turns refusals into a status, a reason phrase and a body.

GitLab answers API errors with {"message": "..."}; twine prints the HTTP reason phrase, so
the same short reason goes there too (as warehouse does).
"""

from __future__ import annotations

import errno
import json
import sqlite3

from twisted.web.iweb import IRequest

UNAUTHORIZED_HEADERS = {b"WWW-Authenticate": b'Basic realm="pypid"'}


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


def render_error(request: IRequest, error: HTTPError) -> bytes:
    request.setResponseCode(error.code, reason_phrase(error.message))
    for name, value in error.headers.items():
        request.setHeader(name, value)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    # GitLab's body spelling: {"message": "404 Project Not Found"}.
    body = json.dumps({"message": f"{error.code} {error.message}"}).encode("utf-8")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def from_environment(error: BaseException) -> HTTPError | None:
    """Failures of the machine rather than of the request, as answers a client can act on.

    A full disk is 507 (nothing was stored; retry once space is freed); a database held
    busy past the busy timeout (say, by an admin command's long transaction) is 503.
    """
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return HTTPError(507, "Insufficient Storage: the registry's disk is full, nothing "
                              "was stored; retry when space is freed")
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    ):
        return HTTPError(503, "Service Unavailable: the database is busy, retry shortly",
                         {b"Retry-After": b"5"})
    return None


def unauthorized(message: str = "Unauthorized") -> HTTPError:
    return HTTPError(401, message, UNAUTHORIZED_HEADERS)


def project_not_found() -> HTTPError:
    # The same body whether the project is missing or merely hidden from this principal.
    return HTTPError(404, "Project Not Found")


def forbidden() -> HTTPError:
    return HTTPError(403, "Forbidden")
