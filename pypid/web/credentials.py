"""Credentials from a request: HTTP Basic (any user name + token), Private-Token, Bearer.

Parsing only; whether the token is any good is the authenticator's business.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass

from twisted.web.iweb import IRequest

from pypid.web.errors import HTTPError, unauthorized

MAX_SECRET = 1024


@dataclass(frozen=True)
class Credentials:
    username: str | None  # None for Private-Token / Bearer
    secret: str


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise unauthorized(f"Unauthorized: {what} is not UTF-8") from None


def credentials_from(request: IRequest) -> Credentials | None:
    """The request's credentials, None if it has none; malformed ones are refused (401)."""
    headers = request.requestHeaders
    private = headers.getRawHeaders(b"private-token")
    if private:
        secret = _decode(private[0].strip(), "Private-Token")
        return _checked(Credentials(None, secret))
    authorization = headers.getRawHeaders(b"authorization")
    if not authorization:
        return None
    scheme, _, value = authorization[0].strip().partition(b" ")
    scheme = scheme.lower()
    if scheme == b"basic":
        try:
            decoded = b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise unauthorized("Unauthorized: malformed Basic credentials") from None
        username, colon, password = _decode(decoded, "Basic credentials").partition(":")
        if not colon:
            raise unauthorized("Unauthorized: malformed Basic credentials")
        return _checked(Credentials(username, password))
    if scheme == b"bearer":
        return _checked(Credentials(None, _decode(value.strip(), "Bearer token")))
    raise unauthorized("Unauthorized: use HTTP Basic, Bearer or Private-Token")


def _checked(credentials: Credentials) -> Credentials:
    if not credentials.secret or len(credentials.secret) > MAX_SECRET:
        raise unauthorized()
    return credentials


__all__ = ["Credentials", "HTTPError", "credentials_from"]
