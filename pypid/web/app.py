"""The registry's web app: the Klein routes, registered from the route table, behind the
fast lane.

    request -> [lean lane: a plain GET, without twisted.web's Request (pypid.web.lean)]
            -> FastLane (route table match, gate.peek, the endpoint's from_memory)
            -> else Klein (the same route, gate.resolve, the endpoint's async handler)

Every failure of either lane becomes an answer in one place (errors.answer_failure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from pypid.audit import AuditLog
from pypid.caches import Caches
from pypid.interfaces import IAuthenticator, IBlobStore
from pypid.publish import Publisher
from pypid.upstream.proxy import Upstream
from pypid.upstream.settings import Layer
from pypid.web.errors import HTTPError, answer_failure
from pypid.web.gate import Allowed, Gate
from pypid.web.metrics import Metrics
from pypid.web.ratelimit import FailedAuthLimiter
from pypid.web.routes import ENDPOINTS, Endpoint, Router
from pypid.web.services import Services

NOBODY = Allowed(None, None)


class RegistryApp:
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
        metrics: Metrics | None = None,
        accel_redirect: str | None = None,
        upstream: Upstream | None = None,
        upstream_default: Layer | None = None,
        presign: Callable[[str, str], str] | None = None,
        read_range: Callable[[str, int, int], bytes] | None = None,
    ) -> None:
        self.caches = caches
        self.limiter = limiter
        self.metrics = metrics
        self.services = Services(run_db, run_worker, blobs, publisher, caches,
                                 max_upload_size, public_url, audit, metrics,
                                 accel_redirect, upstream, upstream_default or Layer(),
                                 presign, read_range)
        self.gate = Gate(authenticator, run_db, caches, limiter,
                         metrics.stats if metrics is not None else None)
        self.services.gate = self.gate
        self.app = Klein()
        # No merging of '//' (werkzeug would answer it with a redirect of its own).
        self.app.url_map.merge_slashes = False
        for endpoint in ENDPOINTS:
            self.app.route(endpoint.rule, methods=list(endpoint.methods),
                           endpoint=endpoint.name,
                           strict_slashes=endpoint.strict_slashes)(self._klein_route(endpoint))
        self.app.handle_errors(Exception)(answer_failure)
        self.router = Router(self.app.url_map)

    def _klein_route(self, endpoint: Endpoint) -> Callable[..., Any]:
        async def route(request: IRequest, **arguments: Any) -> Any:
            return await self.handle(endpoint, request, arguments)

        route.__name__ = endpoint.name
        return route

    async def handle(self, endpoint: Endpoint, request: IRequest,
                     arguments: dict[str, Any]) -> Any:
        """The gate's answer for the endpoint's action, then its handler."""
        allowed = NOBODY
        if endpoint.action is not None:
            arguments = dict(arguments)
            try:
                allowed = await self.gate.resolve(request, arguments.pop("ref", None),
                                                  endpoint.action, endpoint.target,
                                                  endpoint.registry, endpoint.session)
            except HTTPError as error:
                request.content.close()  # a refused upload's streamed body is dropped
                if error.code == 401 and endpoint.session:
                    # A page asks an anonymous visitor to sign in (GitLab's redirect), for
                    # a private project and a missing one alike.
                    request.setResponseCode(303)
                    request.setHeader(b"Location", b"/users/sign_in")
                    return b""
                if endpoint.session:
                    from pypid.web.pages import views

                    return views.error_page(self.services, request, NOBODY, error)
                raise
            except BaseException:
                request.content.close()
                raise
        if not endpoint.session:
            return await endpoint.handler(self.services, request, allowed, **arguments)
        try:
            return await endpoint.handler(self.services, request, allowed, **arguments)
        except HTTPError as error:
            # A page's refusal is a page too (the one mapping decided its status and
            # reason; only the body is HTML).
            from pypid.web.pages import views

            return views.error_page(self.services, request, allowed, error)

    def run_direct(self, endpoint: Endpoint, request: IRequest, allowed: Allowed,
                   arguments: dict[str, Any]) -> None:
        """The fast lane's way to run an endpoint's async handler without Klein."""
        answer = Deferred.fromCoroutine(
            endpoint.handler(self.services, request, allowed, **arguments))
        answer.addErrback(lambda failure: answer_failure(request, failure))
        answer.addCallback(_finish, request)
        answer.addErrback(lambda failure: _log_unwritable(failure))

    def resource(self) -> IResource:
        """The root resource: the fast lane, in front of Klein."""
        from pypid.web.fastlane import FastLane

        return FastLane(self, self.app.resource())


def _finish(body: bytes, request: IRequest) -> None:
    if request.finished or getattr(request, "_disconnected", False):  # type: ignore[attr-defined]
        return
    request.write(body)
    request.finish()


def _log_unwritable(failure: Failure) -> None:
    from twisted.logger import Logger

    Logger().failure("cannot write an answer", failure)
