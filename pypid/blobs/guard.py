"""Blob keys an upload has put in place but not yet recorded in the database.

An upload renames its blob into place in a worker thread, then records the row in the
database thread. Meanwhile a delete of another file with the same content could find the
blob unreferenced and remove it, leaving the new row without its bytes. Deletes therefore
skip held keys, and the check and the unlink happen under the same lock as the hold.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from pypid.interfaces import IBlobStore


class BlobGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def hold(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._held.update(keys)

    def release(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._held.subtract(keys)
            self._held += Counter()  # drop keys that reached zero

    def is_held(self, key: str) -> bool:
        with self._lock:
            return self._held[key] > 0

    def delete_unless_held(self, blobs: IBlobStore, key: str) -> bool:
        """Remove the blob unless an upload holds it; True if it was removed."""
        with self._lock:
            if self._held[key] > 0:
                return False
            blobs.delete(key)
            return True
