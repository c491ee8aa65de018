"""Refusals caused by the machine or by abuse: 429, 507, 503, and the audit log."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path
from typing import IO

import pytest
from twisted.internet.task import Clock

from pypid.blobs.filesystem import FilesystemBlobs
from pypid.store.db import DATABASE_NAME
from pypid.testing import make_app
from pypid.web.ratelimit import FailedAuthLimiter
from tests.dists import wheel_bytes, wheel_filename
from tests.web.helpers import Client, new_client


def test_failed_sign_ins_get_banned(tmp_path: Path) -> None:
    """After the limit of failed sign-ins an address gets 429 + Retry-After, good token or not."""
    clock = Clock()
    limiter = FailedAuthLimiter(clock, limit=3, window=60, ban=300, allow=())
    client = new_client(tmp_path, limiter=limiter)
    registry = client.harness.registry
    registry.create_project("a/b", "public")
    good = ("__token__", registry.create_token("root", "api")[1])
    url = "/api/v4/projects/1/packages/pypi/simple/"
    assert client.get(url, auth=good).code == 200  # warm the fast lane too
    for _ in range(3):
        assert client.get(url, auth=("__token__", "glpat-guess")).code == 401
    for auth in (good, ("__token__", "glpat-guess"), None):
        reply = client.get(url, auth=auth)
        assert reply.code == 429 and reply.header("Retry-After") == "300"
    clock.advance(300)
    assert client.get(url, auth=good).code == 200


class FullDisk(FilesystemBlobs):
    def new_temp(self) -> IO[bytes]:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_is_507_and_stores_nothing(tmp_path: Path) -> None:
    """An upload that meets a full disk gets 507 with a reason; reads still work."""
    blobs = FullDisk(tmp_path / "data")
    client = new_client(tmp_path, blobs=blobs)
    registry = client.harness.registry
    registry.create_project("a/b", "public")
    auth = ("__token__", registry.create_token("root", "api")[1])
    reply = client.upload_wheel(1, "pkg", "1.0", auth)
    assert reply.code == 507 and b"disk is full" in reply.phrase
    assert blobs.keys() == [] and list(blobs.temp_dir.iterdir()) == []
    assert client.get("/api/v4/projects/1/packages/pypi/simple/").code == 200


def test_full_disk_while_spooling_is_507(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that cannot be spooled (disk full) is answered 507, not dropped."""
    from pypid.web import site

    def no_space(self: object, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    client = Client(make_app(tmp_path / "data"), streamed=False)  # upload forms stream
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    monkeypatch.setattr(site.SpooledBody, "write", no_space)
    reply = client.upload_wheel(1, "pkg", "1.0", auth)
    assert reply.code == 507


def test_busy_database_is_503(tmp_path: Path) -> None:
    """When another process holds the write lock past the busy timeout, uploads get 503."""
    client = new_client(tmp_path, busy_timeout=0.05)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    client.get("/api/v4/projects/1/packages/pypi/simple/", auth=auth)  # token cached
    holder = sqlite3.connect(tmp_path / "data" / DATABASE_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        reply = client.upload_wheel(1, "pkg", "1.0", auth)
        assert reply.code == 503 and reply.header("Retry-After") == "5"
        assert b"database is busy" in reply.phrase
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.upload_wheel(1, "pkg", "1.0", auth).code == 201


def test_audit_log_records_who_what_when_where(tmp_path: Path) -> None:
    """Uploads, deletions, yanks and settings land in audit.log as JSON lines, no secrets."""
    client = new_client(tmp_path)
    registry = client.harness.registry
    registry.create_project("a/b")
    secret = registry.create_token("root", "api")[1]
    auth = ("__token__", secret)
    client.upload(1, wheel_filename("pkg", "1.0"), wheel_bytes("pkg", "1.0"), "pkg", "1.0", auth)
    client.request("POST", "/api/v4/projects/1/packages/1/yank", auth=auth,
                   data=b'{"reason": "bad"}')
    client.request("PUT", "/api/v4/projects/1/packages/settings", auth=auth,
                   data=b'{"pypi_duplicates_allowed": false}')
    client.request("DELETE", "/api/v4/projects/1/packages/1", auth=auth)
    text = (tmp_path / "data" / "audit.log").read_text()
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["action"] for e in events] == ["upload", "yank", "settings", "delete_package"]
    assert all(e["actor"] == "root" and e["from"] == "127.0.0.1" and e["time"] for e in events)
    assert events[0]["filename"] == wheel_filename("pkg", "1.0")
    assert secret not in text
