"""A blob an upload holds survives a concurrent delete of the same content, in this
process and from another one (several daemons and the CLI share a data dir)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypid.blobs.filesystem import FilesystemBlobs
from pypid.blobs.guard import LOCK_FILE, BlobGuard


def never_used(key: str) -> bool:
    return True


def test_held_blob_is_not_deleted(tmp_path: Path) -> None:
    """While an upload holds a key, deletes skip it; after release they remove it."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"shared content")
    guard = BlobGuard()
    guard.hold([key])
    guard.hold([key])
    assert not guard.delete_unless_held(blobs, key, never_used)
    guard.release([key])
    assert guard.is_held(key)
    assert not guard.delete_unless_held(blobs, key, never_used)
    guard.release([key])
    assert not guard.is_held(key)
    assert guard.delete_unless_held(blobs, key, never_used)
    assert not blobs.verify(key)


def test_a_row_written_meanwhile_keeps_the_blob(tmp_path: Path) -> None:
    """The delete asks again, once no upload can take the key, whether a row uses it: an
    upload that held and released (its row committed) after the caller looked wins."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"shared content")
    guard = BlobGuard()
    asked = []

    def used_now(asked_key: str) -> bool:
        asked.append(asked_key)
        return False

    assert not guard.delete_unless_held(blobs, key, used_now)
    assert asked == [key]
    assert blobs.verify(key)


def test_a_hold_waits_while_this_process_deletes(tmp_path: Path) -> None:
    """An upload in this process cannot take a key while its delete is under way."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"data")
    guard = BlobGuard(tmp_path / LOCK_FILE)
    seen = []

    def unused(asked: str) -> bool:
        seen.append(guard._try_hold(asked, int(asked[:12], 16)))
        return True

    assert guard.delete_unless_held(blobs, key, unused)
    assert seen == [False]
    guard.hold([key])  # free again once the delete is done
    assert guard.is_held(key)


def test_commit_after_a_delete_recreates_the_blob(tmp_path: Path) -> None:
    """If the delete won the race, the held upload's rename puts the bytes back."""
    blobs = FilesystemBlobs(tmp_path)
    key = blobs.put_bytes(b"data")
    guard = BlobGuard()
    assert guard.delete_unless_held(blobs, key, never_used)
    with blobs.new_temp() as stream:
        stream.write(b"data")
    blobs.sync_temp(stream.name)
    guard.hold([key])
    blobs.commit(stream.name, hashlib.sha256(b"data").hexdigest())
    assert blobs.verify(key)


# -- across processes ----------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from pypid.blobs.guard import BlobGuard

guard = BlobGuard(Path(sys.argv[1]))
mode, key = sys.argv[2], sys.argv[3]
if mode == "hold":
    guard.hold([key])
    print("held", flush=True)
    sys.stdin.readline()
    guard.release([key])
    print("released", flush=True)
else:
    print(guard._try_hold(key, int(key[:12], 16)), flush=True)
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[FilesystemBlobs, Path]]:
    yield FilesystemBlobs(tmp_path), tmp_path / LOCK_FILE


def child(lock: Path, mode: str, key: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(lock), mode, key],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_a_hold_in_another_process_keeps_the_blob(
        store: tuple[FilesystemBlobs, Path]) -> None:
    blobs, lock = store
    key = blobs.put_bytes(b"held elsewhere")
    with child(lock, "hold", key) as other:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline() == "held\n"
        guard = BlobGuard(lock)
        assert not guard.delete_unless_held(blobs, key, never_used)
        assert blobs.verify(key)
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline() == "released\n"
        assert other.wait(timeout=30) == 0
    assert guard.delete_unless_held(blobs, key, never_used)
    assert not blobs.verify(key)


def test_another_process_cannot_hold_while_this_one_deletes(
        store: tuple[FilesystemBlobs, Path]) -> None:
    blobs, lock = store
    key = blobs.put_bytes(b"being deleted")
    guard = BlobGuard(lock)
    answers = []

    def unused(asked: str) -> bool:
        with child(lock, "try", asked) as probe:
            answers.append(probe.communicate(timeout=30)[0].strip())
        return True

    assert guard.delete_unless_held(blobs, key, unused)
    assert answers == ["False"]
    with child(lock, "try", key) as probe:
        assert probe.communicate(timeout=30)[0].strip() == "True"
