"""The registry's rules: users, projects, members, tokens and authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pypid.domain import tokens
from pypid.domain.access import Role
from pypid.store.db import open_registry
from pypid.store.registry import Conflict, Invalid, NotFound, Registry


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Registry:
    registry = open_registry(tmp_path)
    registry._now = clock
    return registry


def test_bootstrap_creates_root_with_an_api_token_once(registry: Registry) -> None:
    """The first bootstrap makes admin root and a working api token; later ones do nothing."""
    secret = registry.bootstrap()
    assert secret is not None and secret.startswith("glpat-")
    principal = registry.authenticate("__token__", secret)
    assert principal is not None and principal.is_admin and principal.scopes == {"api"}
    assert registry.bootstrap() is None


def test_only_digests_are_stored(registry: Registry, tmp_path: Path) -> None:
    """Neither the database file nor its WAL holds a token secret."""
    secret = registry.bootstrap()
    registry.create_project("a/b")
    _, deploy_secret = registry.create_deploy_token("a/b", "read_package_registry")
    assert secret is not None
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("pypid.sqlite3*"))
    assert secret.encode() not in raw
    assert deploy_secret.encode() not in raw
    assert tokens.digest(secret).encode() in raw


def test_users_and_projects(registry: Registry) -> None:
    """Users and projects are created once; bad or duplicate names are refused."""
    registry.create_user("alice")
    with pytest.raises(Conflict):
        registry.create_user("alice")
    with pytest.raises(Invalid):
        registry.create_user("bad name")
    project_id = registry.create_project("acme/tools", "internal")
    assert registry.project(project_id)["path"] == "acme/tools"
    assert registry.project("acme/tools")["id"] == project_id
    with pytest.raises(Conflict):
        registry.create_project("acme/tools")
    for bad in ("acme", "acme/../x", "-x/y", "a/b c", "a//b", "/a/b", "a/b/"):
        with pytest.raises(Invalid):
            registry.create_project(bad)
    with pytest.raises(Invalid):
        registry.create_project("x/y", "secret")
    with pytest.raises(NotFound):
        registry.project("no/such")
    with pytest.raises(NotFound):
        registry.project(99999999999999999999999)


def test_members_get_and_change_roles(registry: Registry) -> None:
    """member add sets a role and a second add changes it; unknowns are refused."""
    registry.create_user("alice")
    project_id = registry.create_project("acme/tools")
    registry.add_member("acme/tools", "alice", "reporter")
    registry.add_member(project_id, "alice", "maintainer")
    alice = registry.authenticate("x", registry.create_token("alice", "api")[1])
    assert alice is not None
    access = registry.project_access(registry.project(project_id), alice)
    assert access.role is Role.maintainer
    with pytest.raises(NotFound):
        registry.add_member("acme/tools", "bob", "reporter")
    with pytest.raises(NotFound):
        registry.add_member("no/such", "alice", "reporter")
    with pytest.raises(Invalid):
        registry.add_member("acme/tools", "alice", "overlord")


def test_token_lifecycle(registry: Registry, clock: Clock) -> None:
    """A token works with any user name until revoked or expired; list never shows secrets."""
    registry.create_user("alice")
    token_id, secret = registry.create_token("alice", "read_api", "ci", "2026-12-01")
    principal = registry.authenticate("anything", secret)
    assert principal is not None and principal.name == "alice"
    assert registry.authenticate(None, secret) is not None
    assert registry.authenticate("anything", secret + "x") is None
    listed = registry.list_tokens("alice")
    assert listed[0]["id"] == token_id and listed[0]["scopes"] == ["read_api"]
    assert listed[0]["expires_at"] == "2026-12-01" and listed[0]["revoked"] is False
    assert listed[0]["last_used_at"] is not None
    assert "token_digest" not in listed[0]
    clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert registry.authenticate("anything", secret) is None
    clock.now = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    registry.revoke_token(token_id)
    assert registry.authenticate("anything", secret) is None
    assert registry.list_tokens("alice")[0]["revoked"] is True
    with pytest.raises(NotFound):
        registry.revoke_token(4242)


def test_token_requests_are_checked(registry: Registry) -> None:
    """Bad scopes, past expiry dates and unknown users are refused."""
    registry.create_user("alice")
    with pytest.raises(Invalid, match="scope"):
        registry.create_token("alice", "sudo")
    with pytest.raises(Invalid, match="not in the future"):
        registry.create_token("alice", "api", expires_at="2026-11-25")
    with pytest.raises(NotFound):
        registry.create_token("bob", "api")


def test_last_used_is_recorded_at_most_every_ten_minutes(registry: Registry, clock: Clock) -> None:
    """Token use updates last_used_at, but not on every request (as GitLab)."""
    registry.create_user("alice")
    _, secret = registry.create_token("alice", "api")
    registry.authenticate("x", secret)
    first = registry.list_tokens("alice")[0]["last_used_at"]
    clock.now += timedelta(minutes=5)
    registry.authenticate("x", secret)
    assert registry.list_tokens("alice")[0]["last_used_at"] == first
    clock.now += timedelta(minutes=6)
    registry.authenticate("x", secret)
    assert registry.list_tokens("alice")[0]["last_used_at"] != first


def test_deploy_tokens_need_their_own_user_name(registry: Registry) -> None:
    """A deploy token works only with its user name, and is bound to its project."""
    project_id = registry.create_project("acme/tools")
    username, secret = registry.create_deploy_token(project_id, "read_package_registry")
    assert username == "gitlab+deploy-token-1"
    assert secret.startswith("gldt-")
    principal = registry.authenticate(username, secret)
    assert principal is not None and principal.deploy_project_id == project_id
    assert registry.authenticate("__token__", secret) is None
    assert registry.authenticate(None, secret) is None
    named, _ = registry.create_deploy_token(project_id, "api", username="ci-bot")
    assert named == "ci-bot"
    with pytest.raises(Conflict):
        registry.create_deploy_token(project_id, "api", username="ci-bot")
