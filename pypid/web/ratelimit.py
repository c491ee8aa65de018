"""Failed sign-ins are limited per client address, as GitLab's Rack::Attack does.

After `limit` failed authentications from one address within `window` seconds, that
address is refused (429 + Retry-After) for `ban` seconds. Addresses in the allow-list
(loopback by default, like GitLab's) are never limited. Memory is bounded: the tables
are dropped whole if they grow past MAX_TRACKED addresses.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime

MAX_TRACKED = 100_000
DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128")


def in_networks(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
                ) -> bool:
    """Is address (a client's, as text) in one of networks? Not an IP address: no."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class FailedAuthLimiter:
    def __init__(
        self, clock: IReactorTime, limit: int, window: float, ban: float,
        allow: Iterable[str] = DEFAULT_ALLOW,
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._ban = ban
        self._allow = [ipaddress.ip_network(network, strict=False) for network in allow]
        self._failures: dict[str, deque[float]] = {}
        self.bans: dict[str, float] = {}  # address -> when the ban ends
        self.bans_total = 0

    def _allowed(self, address: str) -> bool:
        return in_networks(address, self._allow)

    def banned_for(self, address: str) -> float | None:
        """Seconds left of this address's ban, or None if it is not banned."""
        until = self.bans.get(address)
        if until is None:
            return None
        left = until - self._clock.seconds()
        if left <= 0:
            del self.bans[address]
            return None
        return left

    def failed(self, address: str) -> None:
        """Count one failed authentication from address."""
        if self._allowed(address):
            return
        now = self._clock.seconds()
        if len(self._failures) >= MAX_TRACKED:
            self._failures.clear()
        recent = self._failures.setdefault(address, deque())
        recent.append(now)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if len(recent) >= self._limit:
            if len(self.bans) >= MAX_TRACKED:
                self.bans.clear()
            self.bans[address] = now + self._ban
            self.bans_total += 1
            del self._failures[address]
