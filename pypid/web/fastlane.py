"""The fast lane: answers from memory what the route table and the gate allow, before
Klein's dispatch. It has no rules of its own.

For each request (every request enters here): first the changes other processes on the
data dir published (Caches.sync, one read of shared memory); then the route table's match
(memoized, pypid.web.routes.Router); for an endpoint with a `from_memory` twin or a
`direct` handler, the gate's memory-only `peek`; if that allows, the twin answers from
the caches (or runs the handler directly). Whatever memory cannot answer, and every
refusal, goes to the Klein routes, which answer it and fill the caches, exactly as for
any first request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from pypid.web.errors import bad_path, render_error
from pypid.web.metrics import UNMATCHED
from pypid.web.routes import Match

if TYPE_CHECKING:
    from pypid.web.app import RegistryApp


class FastLane(Resource):
    isLeaf = True

    def __init__(self, app: RegistryApp, fallback: IResource) -> None:
        super().__init__()
        self._app = app
        self._router = app.router
        self._gate = app.gate
        self._services = app.services
        self._caches = app.services.caches
        self._fallback = fallback
        self._stats = app.metrics.stats if app.metrics is not None else None

    def render(self, request: IRequest) -> bytes | int:
        self._caches.sync()
        match = self._router.match(request.method, request.path)
        answer = self._from_memory(request, match, True)
        if answer is not None:
            return answer
        if match.bad_path:
            return render_error(request, bad_path())
        return self._fallback.render(request)  # type: ignore[no-any-return]

    def lean_answer(self, request: IRequest) -> bytes | int | None:
        """The lean lane's question (pypid.web.lean): the answer from memory, or None, and
        then the same bytes come back through render (which counts the miss). Web pages
        (which read cookies) and endpoints run directly (uploads) are never lean."""
        self._caches.sync()
        match = self._router.match(request.method, request.path)
        endpoint = match.endpoint
        if endpoint is None or endpoint.session or endpoint.direct:
            return None
        return self._from_memory(request, match, False)

    def _from_memory(self, request: IRequest, match: Match, count_miss: bool
                     ) -> bytes | int | None:
        endpoint = match.endpoint
        # The label the Site counts the request under (/-/metrics), matched once, here.
        request.endpoint_name = (  # type: ignore[attr-defined]
            endpoint.name if endpoint is not None else UNMATCHED)
        if endpoint is None or endpoint.action is None or (
                endpoint.from_memory is None and not endpoint.direct):
            return None
        allowed = self._gate.peek(request, match.ref, endpoint.action, endpoint.target,
                                  endpoint.session)
        if allowed is not None:
            if endpoint.direct:
                self._app.run_direct(endpoint, request, allowed, dict(match.arguments))
                return NOT_DONE_YET
            assert endpoint.from_memory is not None
            answer = endpoint.from_memory(self._services, request, allowed,
                                          **match.arguments)
            if answer is not None:
                if self._stats is not None:
                    self._stats.answered(endpoint.name, True)
                return answer  # type: ignore[no-any-return]
        if count_miss and self._stats is not None and endpoint.from_memory is not None:
            self._stats.answered(endpoint.name, False)
        return None
