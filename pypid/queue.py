"""A bounded queue in front of a thread pool: backpressure instead of unbounded memory.

At most `workers` jobs run at once; at most `waiting` more wait for a slot. Past that,
submit fails at once with QueueFull, which the web layer answers with 503 + Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredSemaphore


class QueueFull(Exception):
    """Too much work is waiting; the client should retry later."""


class BoundedQueue:
    def __init__(self, run: Callable[..., Deferred[Any]], workers: int, waiting: int) -> None:
        self._run = run
        self._slots = DeferredSemaphore(workers)
        self._workers = workers
        self._waiting_limit = waiting
        self.refused = 0  # submissions refused with QueueFull, for /-/metrics

    @property
    def waiting(self) -> int:
        return len(self._slots.waiting)

    @property
    def running(self) -> int:
        return self._workers - self._slots.tokens

    def submit(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        if self._slots.tokens == 0 and self.waiting >= self._waiting_limit:
            self.refused += 1
            raise QueueFull("the server is busy processing uploads; retry shortly")
        return self._slots.run(self._run, function, *args)
