"""IBlobStore on the data dir: temp file -> fsync -> rename into a content-addressed path.

Layout: blobs/sha256/ab/abcd... (256 fan-out directories, made once); temp files in tmp/.
A crash at any point leaves either no blob or a complete one; temp leftovers are swept at
start. Several processes may share the data dir, so each store that makes temp files
holds an flock on tmp-owners/<its token>.lock while its process lives, and a sweep only
removes the temp files of owners whose lock is free (the process is gone, even by
kill -9). Keys are checked to be 64 lowercase hex digits before any path is built, so no
client string reaches the disk.

One level of 256 directories, made when the store is first opened: an upload then renames
into a directory that exists and fsyncs that one directory. Under the earlier two-level
layout (ab/cd/abcd..., pypid 0.1) most uploads made a directory and fsynced three (17 %
fewer 8 KB uploads per second); at a million blobs a directory holds about 4,000 names,
which ext4 and XFS index. Stores in that layout are moved over when first opened.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import re
import secrets
import threading
from pathlib import Path
from typing import IO

from zope.interface import implementer

from pypid.interfaces import IBlobStore

_KEY = re.compile(r"^[0-9a-f]{64}$")
LAYOUT_MARK = "LAYOUT"  # present once the one-level layout is in place
OWNERS_DIR = "tmp-owners"
_PART = re.compile(r"^blob-([0-9a-f]{12})-\d+\.part$")
CHUNK = 1 << 20


class BadKey(ValueError):
    pass


def check_key(sha256: str) -> str:
    if not _KEY.match(sha256):
        raise BadKey(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@implementer(IBlobStore)
class FilesystemBlobs:
    """IBlobStore on a local directory."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs" / "sha256"
        self.temp_dir = data_dir / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        if not (self.root / LAYOUT_MARK).exists():
            self._adopt_flat_layout()
        self._temp_dir_text = str(self.temp_dir.resolve())
        self._root_text = str(self.root)
        self._token = secrets.token_hex(6)
        self._temp_prefix = os.path.join(self._temp_dir_text, f"blob-{self._token}-")
        self._temp_names = itertools.count()
        self._owners = data_dir / OWNERS_DIR
        self._owners.mkdir(exist_ok=True)
        self._owner_fd: int | None = None
        self._owning = threading.Lock()

    def path(self, sha256: str) -> Path:
        check_key(sha256)
        return self.root / sha256[:2] / sha256

    def new_temp(self) -> IO[bytes]:
        # A name from a counter: cheaper than tempfile's random names on the upload path,
        # and mode "x" (O_EXCL) still refuses to reuse a name.
        if self._owner_fd is None:
            self._claim_temp_names()
        return open(f"{self._temp_prefix}{next(self._temp_names)}.part", "xb")

    def _claim_temp_names(self) -> None:
        """Lock this store's owner file (before its first temp file), for the process's
        life: another process's sweep keeps these temp files while it is held."""
        with self._owning:
            if self._owner_fd is not None:
                return
            fd = os.open(self._owners / f"{self._token}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new name: nobody holds it
            self._owner_fd = fd

    def _own_temp(self, temp_path: str) -> Path:
        name = str(temp_path)
        if os.path.dirname(name) != self._temp_dir_text or "/.." in name:
            raise ValueError("only the store's own temp files can be used")
        return Path(name)

    def sync_temp(self, temp_path: str) -> None:
        with open(self._own_temp(temp_path), "rb") as stream:
            os.fsync(stream.fileno())

    def discard(self, temp_path: str) -> None:
        self._own_temp(temp_path).unlink(missing_ok=True)

    def commit(self, temp_path: str, sha256: str) -> None:
        target = self.path(sha256)
        source = self._own_temp(temp_path)
        if target.exists():
            # Same key, same content: keep the stored copy, drop the new one.
            source.unlink()
            return
        try:
            os.replace(source, target)
        except FileNotFoundError:
            # Its fan-out directory was removed by hand: make it again (durably), retry.
            target.parent.mkdir(exist_ok=True)
            fsync_directory(self.root)
            os.replace(source, target)
        fsync_directory(target.parent)

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if self.path(sha256).exists():
            return sha256
        with self.new_temp() as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
            name = stream.name
        self.commit(name, sha256)
        return sha256

    def open(self, sha256: str) -> IO[bytes] | None:
        # On the download path: string paths and an unbuffered file (only its descriptor
        # is used, by sendfile and pread), no pathlib.
        if not _KEY.match(sha256):
            return None
        try:
            return open(
                os.path.join(self._root_text, sha256[:2], sha256), "rb",
                buffering=0)
        except FileNotFoundError:
            return None

    open_local = open  # every blob of this store is local

    def modified(self, sha256: str) -> float | None:
        try:
            return self.path(sha256).stat().st_mtime
        except (FileNotFoundError, BadKey):
            return None

    def delete(self, sha256: str) -> None:
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            pass

    def verify(self, sha256: str) -> bool:
        digest = hashlib.sha256()
        try:
            with open(self.path(sha256), "rb") as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha256

    def keys(self) -> list[str]:
        return sorted(
            path.name for path in self.root.glob("??/*") if _KEY.match(path.name)
        )

    def _adopt_flat_layout(self) -> None:
        """Make the 256 fan-out directories, move blobs of the two-level layout up a level,
        then mark the store. Interrupted, it starts over at the next open; racing another
        process doing the same, each move happens once."""
        for prefix in range(256):
            (self.root / f"{prefix:02x}").mkdir(exist_ok=True)
        fsync_directory(self.root)
        for old in sorted(self.root.glob("??/??")):
            try:
                names = [path.name for path in old.iterdir() if _KEY.match(path.name)]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                try:
                    os.replace(old / name, old.parent / name)
                except FileNotFoundError:
                    pass
            fsync_directory(old.parent)
            try:
                old.rmdir()
            except OSError:
                pass  # not empty (something else was put there) or gone: leave it
        mark = self.root / (LAYOUT_MARK + ".part")
        mark.write_text("blobs/sha256/ab/<sha256>\n")
        with open(mark, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(mark, self.root / LAYOUT_MARK)
        fsync_directory(self.root)

    def sweep_temp(self) -> int:
        """Remove the temp files no living store owns; how many."""
        removed = 0
        living: dict[str, bool] = {}
        for path in self.temp_dir.iterdir():
            if not path.is_file():
                continue
            match = _PART.match(path.name)
            if match is not None:
                owner = match.group(1)
                if owner not in living:
                    living[owner] = self._owner_lives(owner)
                if living[owner]:
                    continue
            path.unlink(missing_ok=True)
            removed += 1
        for lock in self._owners.glob("*.lock"):
            if lock.stem not in living and not self._owner_lives(lock.stem):
                lock.unlink(missing_ok=True)
        return removed

    def _owner_lives(self, owner: str) -> bool:
        if owner == self._token:
            return True
        try:
            fd = os.open(self._owners / f"{owner}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return False  # no owner file (an older pypid's): nobody can be using it
        except PermissionError:
            return True  # another user's process (the CLI run as root): left alone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # and with it the lock just taken
        (self._owners / f"{owner}.lock").unlink(missing_ok=True)
        return False
