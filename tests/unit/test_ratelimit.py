"""Failed sign-ins per address: ban after the limit, for the ban time, never for allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.internet.task import Clock

from pypid.web.ratelimit import FailedAuthLimiter, FailureTable


def test_ban_after_limit_within_window() -> None:
    """The limit-th failure inside the window bans the address for the ban time."""
    clock = Clock()
    limiter = FailedAuthLimiter(clock, limit=3, window=60, ban=600)
    for _ in range(2):
        limiter.failed("10.0.0.1")
    assert limiter.banned_for("10.0.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.banned_for("10.0.0.1") == 600
    assert limiter.banned_for("10.0.0.2") is None
    clock.advance(599)
    assert limiter.banned_for("10.0.0.1") == 1
    clock.advance(1)
    assert limiter.banned_for("10.0.0.1") is None


def test_failures_outside_the_window_do_not_add_up() -> None:
    """Failures spread wider than the window never ban."""
    clock = Clock()
    limiter = FailedAuthLimiter(clock, limit=3, window=60, ban=600)
    for _ in range(10):
        limiter.failed("10.0.0.1")
        clock.advance(31)
    assert limiter.banned_for("10.0.0.1") is None


def test_allow_list_is_never_banned() -> None:
    """Loopback (the default allow-list) and configured networks are never limited."""
    clock = Clock()
    limiter = FailedAuthLimiter(clock, limit=1, window=60, ban=600,
                                allow=("127.0.0.0/8", "::1/128", "192.168.0.0/16"))
    for address in ("127.0.0.1", "::1", "192.168.4.4"):
        limiter.failed(address)
        assert limiter.banned_for(address) is None
    limiter.failed("172.16.0.1")
    assert limiter.banned_for("172.16.0.1") is not None


def test_daemons_sharing_the_table_count_and_ban_together(tmp_path: Path) -> None:
    """Two limiters on one file (two daemons on one data dir): failures sent to each add
    up to one limit, and the ban one makes holds at the other, and ends for both."""
    clock = Clock()
    clock.advance(1_000_000)
    first, second = (FailedAuthLimiter(clock, limit=4, window=60, ban=600,
                                       shared=tmp_path / "auth-failures") for _ in range(2))
    for limiter in (first, second, first):
        limiter.failed("10.0.0.1")
    assert not second.any_banned() and second.banned_for("10.0.0.1") is None
    second.failed("10.0.0.1")
    assert first.any_banned() and first.banned_for("10.0.0.1") == 600
    assert first.banned_count() == second.banned_count() == 1
    assert first.banned_for("10.0.0.2") is None
    clock.advance(600)
    assert not first.any_banned() and second.banned_for("10.0.0.1") is None


def test_a_ban_made_by_another_process_holds_here(tmp_path: Path) -> None:
    script = ("import sys, time; from pathlib import Path; from pypid.web.ratelimit import "
              "FailureTable; FailureTable(Path(sys.argv[1])).fail('203.0.113.9', "
              "time.time(), 1, 60, 600)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "auth-failures")],
                   check=True, timeout=60)
    from twisted.internet import reactor

    limiter = FailedAuthLimiter(reactor, limit=5, window=60, ban=600,  # type: ignore[arg-type]
                                shared=tmp_path / "auth-failures")
    left = limiter.banned_for("203.0.113.9")
    assert left is not None and 590 < left <= 600


def test_the_table_stays_bounded_and_keeps_working(tmp_path: Path) -> None:
    """More addresses than slots (an attacker with many addresses): the table reuses the
    slots whose windows ended first, and a fresh ban still holds."""
    clock = Clock()
    clock.advance(1_000_000)
    limiter = FailedAuthLimiter(clock, limit=2, window=60, ban=600)
    for number in range(FailureTable.SLOTS * 2):
        limiter.failed(f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}")
        clock.advance(0.001)
    limiter.failed("198.51.100.1")
    limiter.failed("198.51.100.1")
    assert limiter.banned_for("198.51.100.1") == 600
    weird = "\x00\u2028\U0001f600 not an address"  # what a proxy header might carry
    limiter.failed(weird)
    limiter.failed(weird)
    assert limiter.banned_for(weird) == 600
