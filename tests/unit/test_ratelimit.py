"""Failed sign-ins per address: ban after the limit, for the ban time, never for allowed."""

from __future__ import annotations

from twisted.internet.task import Clock

from pypid.web.ratelimit import FailedAuthLimiter


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
