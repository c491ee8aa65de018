"""Single flight: concurrent requests for one thing share one piece of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class SingleFlight:
    """run(key, work): the first caller for a key starts work(); every caller that comes
    while it runs gets the same result (or failure). Nothing is kept afterwards: what
    should outlive the flight is the caller's cache."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[Deferred[Any]]] = {}
        self.started = 0  # how many pieces of work ran (for tests and metrics)

    def __len__(self) -> int:
        return len(self._waiting)

    def run(self, key: Hashable, work: Callable[[], Awaitable[Any]]) -> Deferred[Any]:
        waiting = self._waiting.get(key)
        mine: Deferred[Any] = Deferred()
        if waiting is not None:
            waiting.append(mine)
            return mine
        self._waiting[key] = [mine]
        self.started += 1

        async def call() -> Any:
            return await work()

        def settle(result: Any) -> None:
            for deferred in self._waiting.pop(key, []):
                if isinstance(result, Failure):
                    deferred.errback(result)
                else:
                    deferred.callback(result)

        Deferred.fromCoroutine(call()).addBoth(settle)
        return mine
