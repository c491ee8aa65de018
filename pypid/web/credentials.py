"""Credentials from a request: HTTP Basic (any user name + token), Private-Token, Bearer.

Parsing only; whether the token is any good is the authenticator's business. A client
sends the same header on every request of a keep-alive connection, so the last parse (and
the secret's sha256, the principal cache's key) is kept on the connection, for as long
as it lives; never beyond it, and the principal itself is looked up every time.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass
from functools import cached_property

from twisted.web.iweb import IRequest

from pypid.domain import tokens
from pypid.web.errors import HTTPError, unauthorized

MAX_SECRET = 1024


@dataclass(frozen=True)
class Credentials:
    username: str | None  # None for Private-Token / Bearer
    secret: str

    @cached_property
    def digest(self) -> str:
        """The secret's sha256 (the principal cache's key), made once per connection."""
        return tokens.digest(self.secret)


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
        raw = (True, private[0])
    else:
        authorization = headers.getRawHeaders(b"authorization")
        if not authorization:
            return None
        raw = (False, authorization[0])
    channel = getattr(request, "channel", None)
    last = getattr(channel, "last_credentials", None)
    if last is not None and last[0] == raw:
        return last[1]  # type: ignore[no-any-return]
    credentials = _parse(*raw)
    if channel is not None:
        channel.last_credentials = (raw, credentials)
    return credentials


def _parse(private: bool, header: bytes) -> Credentials:
    if private:
        return _checked(Credentials(None, _decode(header.strip(), "Private-Token")))
    scheme, _, value = header.strip().partition(b" ")
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
