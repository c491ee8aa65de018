"""Failed sign-ins are limited per client address, as GitLab's Rack::Attack does.

After `limit` failed authentications from one address within `window` seconds, that
address is refused (429 + Retry-After) for `ban` seconds. The window starts at an
address's first failure (as Rack::Attack's Fail2Ban counts). Addresses in the allow-list
(loopback by default, like GitLab's) are never limited. Memory is bounded (FailureTable's
fixed slots) and, with several daemons on one data dir, shared: GitLab keeps these counts
in Redis for all its workers, pypid in the data dir's `auth-failures` file.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import mmap
from collections.abc import Iterable
from pathlib import Path

from twisted.internet.interfaces import IReactorTime

from pypid.shared import map_shared

DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128")
AUTH_FAILURES_FILE = "auth-failures"


def in_networks(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
                ) -> bool:
    """Is address (a client's, as text) in one of networks? Not an IP address: no."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class FailureTable:
    """Failed sign-ins and bans per address, in memory that several daemons on one data dir
    share (a mapped file; anonymous memory for one process alone), so that a ban made by
    one holds at all of them and failures sent to each add up.

    A fixed-size open-addressing table: an address's slot holds an 8-byte digest of the
    address, the start of its counting window, the failures in it and the end of its ban.
    Writers take an flock (failures only: the sign-in that failed already cost a database
    query); readers do not: an 8-byte aligned value is read whole. When the PROBES slots an
    address may use are all taken, the one whose window or ban ended first is reused.
    """

    SLOTS = 16_384
    PROBES = 8
    _HEADER = 64  # float64 at 0: the latest ban end ever set (no ban is active after it)

    def __init__(self, path: Path | None = None) -> None:
        size = self._HEADER + 32 * self.SLOTS
        self._fd: int | None = None
        if path is None:
            self._map = mmap.mmap(-1, size)  # zeros: empty slots
        else:
            self._map, self._fd = map_shared(path, size)
        memory = memoryview(self._map)
        n, h = self.SLOTS, self._HEADER
        self._latest = memory[0:8].cast("d")
        self._keys = memory[h:h + 8 * n].cast("Q")
        self._starts = memory[h + 8 * n:h + 16 * n].cast("d")
        self._counts = memory[h + 16 * n:h + 24 * n].cast("Q")
        self._ends = memory[h + 24 * n:h + 32 * n].cast("d")

    def any_ban_after(self, now: float) -> bool:
        """May any address be banned at now? (one read: the check before every request)"""
        return bool(self._latest[0] > now)

    def ban_end(self, address: str) -> float:
        """When the address's ban ends (0.0: no ban was set)."""
        key = _key(address)
        for slot in self._slots(key):
            if self._keys[slot] == key:
                return float(self._ends[slot])
        return 0.0

    def banned_at(self, now: float) -> int:
        """How many addresses are banned at now (for /-/metrics)."""
        if not self.any_ban_after(now):
            return 0
        return sum(1 for end in self._ends if end > now)

    def fail(self, address: str, now: float, limit: int, window: float, ban: float) -> bool:
        """Count a failure; True if it made the ban."""
        key = _key(address)
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            slot = self._slot_for(key)
            if self._keys[slot] != key:
                self._keys[slot], self._starts[slot] = key, now
                self._counts[slot], self._ends[slot] = 0, 0.0
            if now - self._starts[slot] >= window:
                self._starts[slot], self._counts[slot] = now, 0
            self._counts[slot] += 1
            if self._counts[slot] < limit:
                return False
            self._counts[slot], self._starts[slot] = 0, now
            self._ends[slot] = now + ban
            if self._latest[0] < now + ban:
                self._latest[0] = now + ban
            return True
        finally:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slots(self, key: int) -> range | list[int]:
        first = key % self.SLOTS
        if first + self.PROBES <= self.SLOTS:
            return range(first, first + self.PROBES)
        return [(first + step) % self.SLOTS for step in range(self.PROBES)]

    def _slot_for(self, key: int) -> int:
        """The address's slot, else an empty one, else the one that ended first."""
        slots = self._slots(key)
        for slot in slots:
            if self._keys[slot] in (key, 0):
                return slot
        return min(slots, key=lambda slot: max(self._starts[slot], self._ends[slot]))


def _key(address: str) -> int:
    digest = hashlib.blake2b(address.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1  # 0 marks an empty slot


class FailedAuthLimiter:
    def __init__(
        self, clock: IReactorTime, limit: int, window: float, ban: float,
        allow: Iterable[str] = DEFAULT_ALLOW, shared: Path | None = None,
    ) -> None:
        """shared: the data dir's table file, for several daemons; None: this process's."""
        self._clock = clock
        self._limit = limit
        self._window = window
        self._ban = ban
        self._allow = [ipaddress.ip_network(network, strict=False) for network in allow]
        self._table = FailureTable(shared)
        self.bans_total = 0  # bans this process made

    def _allowed(self, address: str) -> bool:
        return in_networks(address, self._allow)

    def any_banned(self) -> bool:
        """Is any address banned now? Cheap: asked before every request."""
        return self._table.any_ban_after(self._clock.seconds())

    def banned_count(self) -> int:
        return self._table.banned_at(self._clock.seconds())

    def banned_for(self, address: str) -> float | None:
        """Seconds left of this address's ban, or None if it is not banned."""
        left = self._table.ban_end(address) - self._clock.seconds()
        return left if left > 0 else None

    def failed(self, address: str) -> None:
        """Count one failed authentication from address."""
        if self._allowed(address):
            return
        if self._table.fail(address, self._clock.seconds(), self._limit, self._window,
                            self._ban):
            self.bans_total += 1
