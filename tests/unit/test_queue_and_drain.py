"""Backpressure (bounded queue) and the graceful-stop drain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from pypid.queue import BoundedQueue, QueueFull
from pypid.web.site import PypidSite


class HeldRunner:
    """A thread-pool stand-in whose jobs finish only when the test says so."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

    def __call__(self, function: Any, *args: Any) -> Deferred[Any]:
        done: Deferred[Any] = Deferred()
        self.jobs.append((done, function, args))
        return done

    def finish_one(self) -> None:
        done, function, args = self.jobs.pop(0)
        done.callback(function(*args))


def test_queue_runs_at_most_workers_and_refuses_past_waiting() -> None:
    """Two run, two wait, the fifth is refused at once; slots free up as jobs finish."""
    runner = HeldRunner()
    queue = BoundedQueue(runner, workers=2, waiting=2)
    results = [queue.submit(lambda n=n: n) for n in range(4)]
    assert len(runner.jobs) == 2 and queue.waiting == 2
    with pytest.raises(QueueFull):
        queue.submit(lambda: None)
    runner.finish_one()
    assert len(runner.jobs) == 2 and queue.waiting == 1
    for _ in range(3):
        runner.finish_one()
    assert [result.result for result in results] == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert queue.waiting == 0


def test_drain_waits_for_requests_in_flight(tmp_path: Path) -> None:
    """A stopping daemon waits until the last request in flight is done."""
    site = PypidSite(Resource(), tmp_path, 1000)
    clock = Clock()
    site.in_flight = 2
    drained = site.drain(clock, grace=10)
    site.request_done(None)
    assert not drained.called
    site.request_done(None)
    assert drained.called
    assert clock.getDelayedCalls() == []


def test_drain_gives_up_after_the_grace_period(tmp_path: Path) -> None:
    """A request that never ends does not keep the daemon from stopping."""
    site = PypidSite(Resource(), tmp_path, 1000)
    clock = Clock()
    site.in_flight = 1
    drained = site.drain(clock, grace=10)
    clock.advance(9.9)
    assert not drained.called
    clock.advance(0.2)
    assert drained.called


def test_drain_with_nothing_in_flight_is_immediate(tmp_path: Path) -> None:
    """With no requests, stopping does not wait."""
    site = PypidSite(Resource(), tmp_path, 1000)
    assert site.drain(Clock(), grace=10).called
