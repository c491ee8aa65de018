"""One place that turns refusals into a status, a reason phrase and a body.

GitLab answers API errors with {"message": "..."}; twine prints the HTTP reason phrase, so
the same short reason goes there too (as warehouse does).
"""

from __future__ import annotations

import json

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


def unauthorized(message: str = "Unauthorized") -> HTTPError:
    return HTTPError(401, message, UNAUTHORIZED_HEADERS)


def project_not_found() -> HTTPError:
    # The same body whether the project is missing or merely hidden from this principal.
    return HTTPError(404, "Project Not Found")


def forbidden() -> HTTPError:
    return HTTPError(403, "Forbidden")
