"""IAuthenticator on the registry database, with a principal cache for the hot path.

A token check is O(1): a dict hit in memory after the first use. Revocations and new
tokens made by another process (the admin CLI, another daemon) clear the cache before
the next request (caches.Caches.sync); expiry is re-checked on every hit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from pypid.caches import Caches
from pypid.domain import tokens
from pypid.domain.access import Principal
from pypid.interfaces import IAuthenticator
from pypid.store.registry import Registry, utc_now

_UNKNOWN: Any = object()


@implementer(IAuthenticator)
class RegistryAuthenticator:
    def __init__(
        self, run: Callable[..., Deferred[Any]], caches: Caches,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._run = run
        self._caches = caches
        self._now = now

    def cached(self, username: str | None, secret: str, digest: str | None = None
               ) -> tuple[bool, Principal | None]:
        """(known, principal) from memory alone: the synchronous hot path."""
        key = (username, digest or tokens.digest(secret))
        principal: Principal | None = self._caches.principals.get(key, _UNKNOWN)
        if principal is _UNKNOWN:
            return False, None
        if principal is not None and principal.expires_at is not None and tokens.is_expired(
                principal.expires_at, self._now()):
            return True, None
        return True, principal

    def authenticate(self, username: str | None, secret: str) -> Deferred[Principal | None]:
        known, principal = self.cached(username, secret)
        if known:
            return succeed(principal)
        key = (username, tokens.digest(secret))

        return Deferred.fromCoroutine(self._caches.fill(
            lambda: self._caches.principals, key,
            lambda: self._run(Registry.authenticate, username, secret)))
