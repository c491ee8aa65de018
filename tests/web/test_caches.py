"""Caches stay coherent: what changes is seen by the very next request."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from twisted.internet.task import Clock

from pypid.caches import WATCH_INTERVAL_SECONDS, ChangeWatcher
from pypid.store.db import open_registry
from tests.web.conftest import World
from tests.web.helpers import new_client, parse_links


def simple(world: World, name: str = "") -> str:
    return f"/api/v4/projects/{world.private_id}/packages/pypi/simple/" + (
        f"{name}/" if name else "")


def test_upload_is_listed_by_the_next_read(world: World) -> None:
    """A cached page is dropped by the upload that changes it."""
    client, dev = world.client, world.tokens["dev"]
    client.upload_wheel(world.private_id, "pkg", "1.0", dev)
    assert len(parse_links(client.get(simple(world, "pkg"), auth=dev))) == 1
    assert len(parse_links(client.get(simple(world), auth=dev))) == 1
    client.upload_wheel(world.private_id, "pkg", "2.0", dev)
    client.upload_wheel(world.private_id, "other", "2.0", dev)
    assert len(parse_links(client.get(simple(world, "pkg"), auth=dev))) == 2
    assert len(parse_links(client.get(simple(world), auth=dev))) == 2


def test_cli_revocation_is_seen_within_a_second(tmp_path: Path) -> None:
    """A token revoked by another process (the CLI) is refused after the next watch tick."""
    client = new_client(tmp_path)
    harness = client.harness
    harness.registry.create_project("a/b", "private")
    token_id, secret = harness.registry.create_token("root", "read_api")
    auth = ("__token__", secret)
    url = "/api/v4/projects/1/packages/pypi/simple/"
    assert client.get(url, auth=auth).code == 200
    clock = Clock()
    watcher = ChangeWatcher(clock, harness.database.run, harness.caches)
    watcher.start()
    cli = open_registry(tmp_path / "data")  # a second connection, as the admin CLI has
    cli.revoke_token(token_id)
    cli.close()
    assert client.get(url, auth=auth).code == 200  # cached until the watcher looks
    clock.advance(WATCH_INTERVAL_SECONDS)
    assert WATCH_INTERVAL_SECONDS <= 1.0
    assert client.get(url, auth=auth).code == 401
    watcher.stop()


def test_cli_membership_change_is_seen(tmp_path: Path) -> None:
    """A role granted by the CLI takes effect after the next watch tick."""
    client = new_client(tmp_path)
    harness = client.harness
    harness.registry.create_project("a/b", "private")
    harness.registry.create_user("alice")
    auth = ("__token__", harness.registry.create_token("alice", "api")[1])
    url = "/api/v4/projects/1/packages/pypi/simple/"
    assert client.get(url, auth=auth).code == 404
    clock = Clock()
    watcher = ChangeWatcher(clock, harness.database.run, harness.caches)
    watcher.start()
    cli = open_registry(tmp_path / "data")
    cli.add_member("a/b", "alice", "reporter")
    cli.close()
    clock.advance(WATCH_INTERVAL_SECONDS)
    assert client.get(url, auth=auth).code == 200
    watcher.stop()


def test_expiry_is_checked_on_cached_tokens(tmp_path: Path) -> None:
    """A cached token stops working at its expiry even if nothing else changes."""
    moments = [datetime(2026, 11, 25, 12, 0, tzinfo=UTC)]
    client = new_client(tmp_path, now=lambda: moments[0])
    harness = client.harness
    harness.registry.create_project("a/b", "private")
    _, secret = harness.registry.create_token("root", "api", expires_at="2026-11-26")
    url = "/api/v4/projects/1/packages/pypi/simple/"
    assert client.get(url, auth=("__token__", secret)).code == 200
    moments[0] = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert client.get(url, auth=("__token__", secret)).code == 401
