"""The seams between the web layer and what it stands on: blob storage and authentication.

Methods are declared without `self` (zope.interface style). IBlobStore is synchronous: it
is called only from worker threads and the database thread (see its docstring).
IAuthenticator answers with a Deferred, and has a memory-only twin for the fast lane.
Each has a fake in pypid.testing and a contract test run against both.
"""

from __future__ import annotations

from typing import IO

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from pypid.domain.access import Principal


class IBlobStore(Interface):
    """Content-addressed file storage: a blob's key is the sha256 of its bytes.

    Blocking by design: pypid calls it from worker threads, and calls commit and delete
    from its database thread, so that a blob's arrival or removal is serialized with the
    rows that reference it (no upload can lose its blob to a concurrent delete).
    """

    temp_dir = Attribute("A directory on the store's file system for files being received.")

    def new_temp() -> IO[bytes]:
        """A new temp file (with a .name) beside the store."""

    def sync_temp(temp_path: str) -> None:
        """Make a finished temp file's bytes durable (fsync); slow, so done before commit."""

    def commit(temp_path: str, sha256: str) -> None:
        """Move a synced temp file under key sha256 atomically; idempotent.

        The caller vouches that sha256 is the digest of the file's content.
        """

    def discard(temp_path: str) -> None:
        """Remove a temp file that will not be committed."""

    def put_bytes(data: bytes) -> str:
        """Store small content durably; returns its sha256 key."""

    def open(sha256: str) -> IO[bytes] | None:
        """Open a blob for reading, or None if there is no such blob. The stream has a
        real file descriptor (downloads use sendfile): a remote store brings the blob to
        its local copy first."""

    def open_local(sha256: str) -> IO[bytes] | None:
        """open() without any I/O but the local open: None when only open() can tell (the
        fast lane calls this on the reactor)."""

    def modified(sha256: str) -> float | None:
        """When the blob was stored (seconds since the epoch), or None if there is none."""

    def delete(sha256: str) -> None:
        """Remove a blob; a missing one is not an error."""

    def verify(sha256: str) -> bool:
        """Is the blob present and does its content still hash to its key?"""

    def keys() -> list[str]:
        """Every stored key (for consistency checks)."""

    def sweep_temp() -> int:
        """Remove leftovers of interrupted writes; returns how many were removed."""


class IAuthenticator(Interface):
    """Turns request credentials into the principal they speak for."""

    def authenticate(username: str | None, secret: str) -> Deferred[Principal | None]:
        """The principal for a token (username None: Private-Token header), or None."""

    def cached(username: str | None, secret: str, digest: str | None = None
               ) -> tuple[bool, Principal | None]:
        """(known, principal) without any I/O: known is False when only authenticate()
        can tell. digest: the secret's sha256, when the caller has it already."""


__all__ = ["IAuthenticator", "IBlobStore", "Principal"]
