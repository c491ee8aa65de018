"""Blob keys an upload has put in place but not yet recorded in the database.

An upload renames its blob into place in a worker thread (or finds the same bytes already
there), then records the row in the database thread. Meanwhile a delete of another file
with the same content, or garbage collection, could find the blob unreferenced and remove
it, leaving the new row without its bytes. So deletes skip held keys, and check again,
under the hold's lock, that no row uses the key before they remove it.

Across processes (several daemons and the admin CLI on one data dir) the hold is a shared
POSIX record lock on one byte of the data dir's `blobs.lock`, at an offset taken from the
key; a delete takes that byte exclusively or skips the key. Record locks belong to the
process, so holds within one are counted here and the byte is locked once. No call waits
for another process on a thread the reactor needs: a hold that meets a delete in progress
retries in its worker thread; release and delete never wait.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from pypid.interfaces import IBlobStore

LOCK_FILE = "blobs.lock"
RETRY_SECONDS = 0.002  # a delete holds its byte for one query and one unlink


def _offset(key: str) -> int:
    return int(key[:12], 16)  # 48 bits: two keys sharing a byte is harmless, and rare


class BlobGuard:
    def __init__(self, lock_path: Path | None = None) -> None:
        """lock_path: the data dir's lock file, shared with the other processes; None: one
        process only (tests). The file stays open for the process's life: closing any
        descriptor of it would drop the process's record locks."""
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()
        self._locked: Counter[int] = Counter()  # holds per byte offset in this process
        self._deleting: set[int] = set()
        self._fd = None if lock_path is None else os.open(
            lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def hold(self, keys: Iterable[str]) -> None:
        """Worker thread: may wait (briefly) while a delete of one of the keys finishes."""
        for key in keys:
            offset = _offset(key)
            while not self._try_hold(key, offset):
                time.sleep(RETRY_SECONDS)

    def _try_hold(self, key: str, offset: int) -> bool:
        with self._lock:
            if offset in self._deleting:
                return False
            if not self._locked[offset] and self._fd is not None:
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, offset)
                except OSError:
                    return False  # another process is deleting this key
            self._locked[offset] += 1
            self._held[key] += 1
            return True

    def release(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                offset = _offset(key)
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]
                self._locked[offset] -= 1
                if self._locked[offset] <= 0:
                    del self._locked[offset]
                    if self._fd is not None:
                        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def is_held(self, key: str) -> bool:
        with self._lock:
            return self._held[key] > 0

    def delete_unless_held(self, blobs: IBlobStore, key: str,
                           unused: Callable[[str], bool]) -> bool:
        """Remove the blob unless an upload (of any process) holds it or unused(key), asked
        once no upload can take it, says a row uses it now; True if it was removed."""
        offset = _offset(key)
        with self._lock:
            if self._locked[offset] or offset in self._deleting:
                return False
            if self._fd is not None:
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                except OSError:
                    return False  # an upload in another process holds it
            self._deleting.add(offset)
        try:
            if not unused(key):
                return False
            blobs.delete(key)  # outside the thread lock: an S3 delete takes a while
            return True
        finally:
            with self._lock:
                self._deleting.discard(offset)
                if self._fd is not None:
                    fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)
