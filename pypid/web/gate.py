"""The gate: ban -> credentials -> principal -> project -> access -> allowed, written once.

Two faces on the same steps and the same caches:
- `peek`: memory only, for the fast lane. It answers only "allowed, here is who and what";
  anything it cannot tell from memory, and every refusal, is None, and the request goes
  to the Klein routes, whose `resolve` gives the answer.
- `resolve`: fills the caches (through `Caches.fill`) and raises the refusal GitLab
  would give; 401/403/404 come from `domain.access.refusal` and `errors.for_refusal`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest

from pypid.caches import Caches
from pypid.domain.access import (
    Action,
    GroupAccess,
    Principal,
    ProjectAccess,
    account_refusal,
    decide,
    may,
    may_manage_group,
    may_read_group,
    refusal,
)
from pypid.interfaces import IAuthenticator
from pypid.store.registry import NotFound, Registry, Row
from pypid.web.credentials import Credentials, credentials_from
from pypid.web.errors import HTTPError, for_account_refusal, for_refusal, unauthorized
from pypid.web.metrics import Stats
from pypid.web.ratelimit import FailedAuthLimiter


class Allowed(NamedTuple):
    """What the gate let through: the project or group (None for endpoints without one)
    and who; for a group, the projects below it that the principal may read.
    (A NamedTuple: made on every hot request, where a frozen dataclass costs a microsecond.)"""

    project: Row | None
    principal: Principal | None
    group: Row | None = None
    readable: tuple[int, ...] = ()
    csrf: str | None = None  # a web page's visitor signed in with a session: its CSRF token


PROJECT = "project"
GROUP = "group"
USER = "user"  # any signed-in user (GitLab's /user, /users, /personal_access_tokens)
ADMIN = "admin"  # administrators only
SESSION_COOKIE = b"pypid_session"


def client_address(request: IRequest) -> str:
    address = request.getClientAddress()
    return str(getattr(address, "host", "local"))


class Gate:
    def __init__(
        self, authenticator: IAuthenticator, run_db: Callable[..., Deferred[Any]],
        caches: Caches, limiter: FailedAuthLimiter | None = None, stats: Stats | None = None,
    ) -> None:
        self._auth = authenticator
        self._run_db = run_db
        self._caches = caches
        self.limiter = limiter
        self._stats = stats

    # -- memory only -------------------------------------------------------------------

    def peek(self, request: IRequest, ref: str | None, action: Action,
             target: str = PROJECT, session: bool = False) -> Allowed | None:
        limiter = self.limiter
        if limiter is not None and limiter.any_banned() and limiter.banned_for(
                client_address(request)) is not None:
            return None
        try:
            credentials = credentials_from(request)
        except HTTPError:
            return None
        principal = None
        csrf = None
        if credentials is not None:
            known, principal = self._auth.cached(credentials.username, credentials.secret,
                                                 credentials.digest)
            if not known or principal is None:
                return None
        elif session:
            secret = request.getCookie(SESSION_COOKIE)
            if secret:
                signed_in = self._caches.principals.get(
                    ("session", secret.decode("ascii", "replace")))
                if signed_in is None:  # unknown, or known to be no good: Klein answers
                    return None
                principal, csrf = signed_in
        allowed = self._peek(principal, ref, action, target)
        return allowed if allowed is None or csrf is None else allowed._replace(csrf=csrf)

    def _peek(self, principal: Principal | None, ref: str | None, action: Action,
              target: str) -> Allowed | None:
        if ref is None:
            return Allowed(None, principal)
        if target == GROUP:
            return self._peek_group(ref, principal)
        project = self._caches.projects.get(ref)
        if project is None or not project["packages_enabled"]:
            return None  # not cached, cached as missing, or packages off: Klein answers
        if _needs_no_role(principal):
            access = ProjectAccess(project["id"], project["visibility"], None,
                                   project["group_ids"])
        else:
            assert principal is not None and principal.user_id is not None
            access = self._caches.roles.get((project["id"], principal.user_id))
            if access is None:
                return None
        # `may` is the rule `refusal` applies: allowed exactly when there is no refusal
        # (and every refusal is Klein's to answer).
        if not may(principal, access, action):
            return None
        return Allowed(project, principal)

    def _peek_group(self, ref: str, principal: Principal | None) -> Allowed | None:
        group = self._caches.groups.get(ref)
        if group is None:
            return None
        access = self._caches.group_access.get((group["id"], principal))
        if access is None or not may_read_group(principal, access):
            return None
        return Allowed(None, principal, group, access.readable_projects)

    # -- everything else ---------------------------------------------------------------

    async def resolve(self, request: IRequest, ref: str | None, action: Action,
                      target: str = PROJECT, registry: bool = True,
                      session: bool = False) -> Allowed:
        """Who and what, or the refusal (HTTPError) every lane gives. registry: an
        endpoint of the package registry (see routes.Endpoint.registry); session: a web
        page, where a signed-in visitor's session cookie speaks for them too."""
        principal = await self.principal(request)
        csrf = None
        if principal is None and session:
            signed_in = await self.session(request)
            if signed_in is not None:
                principal, csrf = signed_in
        allowed = await self._resolve(principal, ref, action, target, registry)
        return allowed if csrf is None else allowed._replace(csrf=csrf)

    async def session(self, request: IRequest) -> tuple[Principal, str] | None:
        """The principal and CSRF token of the request's session cookie, if it is good."""
        secret = request.getCookie(SESSION_COOKIE)
        if not secret or len(secret) > 100:
            return None
        text = secret.decode("ascii", "replace")

        async def load() -> tuple[Principal, str] | None:
            found: tuple[Principal, str] | None = await self._run_db(Registry.session, text)
            return found

        found: tuple[Principal, str] | None = await self._caches.fill(
            lambda: self._caches.principals, ("session", text), load)
        return found

    async def _resolve(self, principal: Principal | None, ref: str | None, action: Action,
                       target: str, registry: bool) -> Allowed:
        if target in (USER, ADMIN) or (not registry and principal is not None):
            # GitLab checks a token's scopes before it looks for anything: an account
            # endpoint, or a REST endpoint of a project or group, needs api (or read_api
            # to read), never a deploy token.
            refused = account_refusal(principal, action, target == ADMIN)
            if refused is not None:
                raise for_account_refusal(refused, principal, action)
            if target in (USER, ADMIN):
                return Allowed(None, principal)
        if ref is None:
            return Allowed(None, principal)
        if target == GROUP:
            return await self._resolve_group(ref, principal, action)
        project = await self._project(ref)
        access = None if project is None else await self._access(project, principal)
        refused = refusal(principal, access, action)
        if refused is not None:
            raise for_refusal(refused, principal, action)
        assert project is not None
        if registry and not project["packages_enabled"]:
            # GitLab's read_package is prevented while packages are off: 403 for whoever
            # may see the project (the rest got their 401/404 above).
            raise HTTPError(403, "Forbidden: the project's package registry is turned off "
                                 "(packages_enabled is false)")
        return Allowed(project, principal)

    async def principal(self, request: IRequest) -> Principal | None:
        """The request's principal (None: anonymous); 429 for banned addresses, 401 for
        credentials that are malformed or no good (each counted as a failed sign-in)."""
        address = client_address(request)
        self.check_ban(request)
        try:
            credentials: Credentials | None = credentials_from(request)
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

    def check_ban(self, request: IRequest) -> None:
        """429 for an address banned for failed sign-ins (any way of signing in)."""
        if self.limiter is not None:
            left = self.limiter.banned_for(client_address(request))
            if left is not None:
                raise HTTPError(
                    429, "Too Many Requests: too many failed sign-ins from your address",
                    {b"Retry-After": b"%d" % max(1, int(left))})

    def failed_sign_in(self, request: IRequest) -> None:
        """A sign-in with a token that is no good (the web form's, too) counts to a ban."""
        self._failed_sign_in(client_address(request))

    def _failed_sign_in(self, address: str) -> None:
        if self._stats is not None:
            self._stats.failed_sign_ins += 1
        if self.limiter is not None:
            self.limiter.failed(address)

    async def _resolve_group(
        self, ref: str, principal: Principal | None, action: Action
    ) -> Allowed:
        """Who may read the group sees, below it, the projects they may read; its
        maintainers (and admins) may change it. A group they may not read looks exactly
        like a missing one."""
        group = await self._row(self._caches.groups, Registry.group, ref)
        access: GroupAccess | None = None
        if group is not None:
            access = await self._caches.fill(
                lambda: self._caches.group_access, (group["id"], principal),
                lambda: self._run_db(Registry.group_access, group, principal))
        readable = access is not None and may_read_group(principal, access)
        allowed = readable and (action is Action.read or (
            access is not None and may_manage_group(principal, access)))
        refused = decide(principal, allowed, readable, action)
        if refused is not None:
            raise for_refusal(refused, principal, action, "Group Not Found")
        assert access is not None
        return Allowed(None, principal, group, access.readable_projects)

    async def _row(self, table: Any, query: Callable[..., Any], ref: str) -> Row | None:
        async def load() -> Row | None:
            try:
                return await self._run_db(query, ref)  # type: ignore[no-any-return]
            except NotFound:
                return None

        return await self._caches.fill(lambda: table, ref, load)  # type: ignore[no-any-return]

    async def _project(self, ref: str) -> Row | None:
        return await self._row(self._caches.projects, Registry.project, ref)

    async def _access(self, project: Row, principal: Principal | None) -> ProjectAccess:
        if _needs_no_role(principal):
            return ProjectAccess(project["id"], project["visibility"], None,
                                 project["group_ids"])
        assert principal is not None and principal.user_id is not None
        return await self._caches.fill(  # type: ignore[no-any-return]
            lambda: self._caches.roles, (project["id"], principal.user_id),
            lambda: self._run_db(Registry.project_access, project, principal))


def _needs_no_role(principal: Principal | None) -> bool:
    """Anonymous, deploy tokens and admins: the rules need no membership row."""
    return principal is None or principal.user_id is None or principal.is_admin
