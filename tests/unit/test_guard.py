"""A blob an upload holds survives a concurrent delete of the same content."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pypid.blobs.filesystem import FilesystemBlobs
from pypid.blobs.guard import BlobGuard


def test_held_blob_is_not_deleted(tmp_path: Path) -> None:
    """While an upload holds a key, deletes skip it; after release they remove it."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"shared content")
    guard = BlobGuard()
    guard.hold([key])
    guard.hold([key])
    assert not guard.delete_unless_held(blobs, key)
    guard.release([key])
    assert guard.is_held(key)
    assert not guard.delete_unless_held(blobs, key)
    guard.release([key])
    assert not guard.is_held(key)
    assert guard.delete_unless_held(blobs, key)
    assert not blobs.verify(key)


def test_commit_after_a_delete_recreates_the_blob(tmp_path: Path) -> None:
    """If the delete won the race, the held upload's rename puts the bytes back."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"data")
    guard = BlobGuard()
    assert guard.delete_unless_held(blobs, key)
    with blobs.new_temp() as stream:
        stream.write(b"data")
    blobs.sync_temp(stream.name)
    guard.hold([key])
    blobs.commit(stream.name, hashlib.sha256(b"data").hexdigest())
    assert blobs.verify(key)
