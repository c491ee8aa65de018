"""GET /-/health: does the daemon serve, and can it reach its database? GET /-/metrics:
how it is doing, in Prometheus' text format, for the networks allowed to ask."""

from __future__ import annotations

from twisted.web.iweb import IRequest

import pypid
from pypid.store.registry import Registry
from pypid.web.errors import HTTPError
from pypid.web.gate import Allowed, client_address
from pypid.web.services import Services, json_answer


async def health(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    try:
        await services.run_db(Registry.data_version)
        database = "ok"
    except Exception:
        database = "unavailable"
    code = 200 if database == "ok" else 503
    return json_answer(request, {"status": "ok" if code == 200 else "unavailable",
                                 "version": pypid.__version__, "database": database}, code)


async def metrics(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    """Prometheus' text format; anyone outside --metrics-allow gets the 404 of a path that
    does not exist."""
    metrics = services.metrics
    if metrics is None or not metrics.allowed(client_address(request)):
        raise HTTPError(404, "Not Found")
    body, content_type = await services.run_worker(metrics.exposition,
                                                   metrics.stats.snapshot())
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body  # type: ignore[no-any-return]
