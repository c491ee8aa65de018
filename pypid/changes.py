"""A cross-process change signal: several pypid processes on one data dir tell each other,
at once, what their writes changed.

The file `changes` in the data dir is mapped into memory by every process. It holds a
sequence number and a ring of the last SLOTS changes, each as (sequence, scope): scope is
a project id, EVERYTHING (tokens, members, settings: whatever the daemon drops all its
caches for) or NOTHING (any other commit of the daemon's database thread). A writer
commits to SQLite, then publishes (under an flock held for a few memory writes, so two
writers never take one number), then answers its client. A reader compares the sequence
with the last one it saw: one 8-byte read of shared memory, no system call, cheap enough
to do before every request. So after one daemon's 201, any daemon's next request sees the
change.

A slot carries its own sequence: a slot overwritten by a later change (the reader fell
more than SLOTS behind) or read half-written cannot be taken for the one wanted, and the
reader then drops everything, which is always safe.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from pathlib import Path

from pypid.shared import map_shared

FILE_NAME = "changes"
EVERYTHING = 0  # a scope: no project id is 0 (SQLite's rowids start at 1)
# A scope: a commit that changed no cached answer (a cached upstream file's row, garbage
# collection); published so that the data_version backstop knows it was pypid's.
NOTHING = -1
SLOTS = 255
_HEADER = struct.Struct("=Q")  # native order: the memoryview below reads it too
_SLOT = struct.Struct("=Qq")
SIZE = _HEADER.size + SLOTS * _SLOT.size


class ChangeSignal:
    def __init__(self, data_dir: Path, create: bool = True) -> None:
        """create: the daemon makes the file; the admin CLI opens only one a daemon made
        (see pypid.shared)."""
        self._map, self._fd = map_shared(data_dir / FILE_NAME, SIZE, create)
        self._threads = threading.Lock()
        # The sequence as an item of a memoryview: the cheapest read Python has of it.
        self._words = memoryview(self._map).cast("Q")

    def sequence(self) -> int:
        """The number of the last change any process published."""
        return self._words[0]

    def publish(self, scope: int) -> int:
        """Announce a committed change of one project (or EVERYTHING); its number."""
        # The flock keeps other processes out; it does not keep out this process's other
        # threads (the database thread publishes too), which the thread lock does.
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                number = self.sequence() + 1
                _SLOT.pack_into(self._map, _slot_offset(number), number, scope)
                _HEADER.pack_into(self._map, 0, number)  # after the slot: readers see both
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return number

    def since(self, seen: int, now: int) -> list[int] | None:
        """The scopes of changes seen+1 .. now; None when they cannot all be known."""
        if not 0 <= now - seen <= SLOTS:
            return None
        scopes = []
        for number in range(seen + 1, now + 1):
            slot_number, scope = _SLOT.unpack_from(self._map, _slot_offset(number))
            if slot_number != number:
                return None
            scopes.append(scope)
        return scopes

    def close(self) -> None:
        self._words.release()
        self._map.close()
        os.close(self._fd)


def _slot_offset(number: int) -> int:
    return _HEADER.size + (number % SLOTS) * _SLOT.size
