"""GET /-/health: does the daemon serve, and can it reach its database?"""

from __future__ import annotations

from twisted.web.iweb import IRequest

import pypid
from pypid.store.registry import Registry
from pypid.web.gate import Allowed
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
