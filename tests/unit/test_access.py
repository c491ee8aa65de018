"""The authorization matrix: visibility x role x scope x kind of principal -> actions."""

from __future__ import annotations

import itertools

import pytest

from pypid.domain.access import Action, Principal, ProjectAccess, Role, may

PROJECT_ID = 7
SCOPES = ("api", "read_api", "read_package_registry", "write_package_registry")
READ, WRITE, DELETE = Action.read, Action.write, Action.delete


def expected(visibility: str, who: str, role: Role | None, scope: str | None) -> set[Action]:
    """The rules, written out independently of the implementation."""
    allowed: set[Action] = set()
    if visibility == "public":
        allowed.add(READ)
    if who == "anonymous":
        return allowed
    can_read_scope = scope in ("api", "read_api", "read_package_registry")
    can_write_scope = scope in ("api", "write_package_registry")
    if who == "deploy-own":
        if can_read_scope:
            allowed.add(READ)
        if can_write_scope:
            allowed.add(WRITE)
        return allowed
    if who == "deploy-other":
        return allowed
    if who == "admin":
        if can_read_scope:
            allowed.add(READ)
        if can_write_scope:
            allowed |= {WRITE, DELETE}
        return allowed
    level = role.value if role else 0
    if can_read_scope and (visibility == "internal" or level >= Role.reporter):
        allowed.add(READ)
    if can_write_scope and level >= Role.developer:
        allowed.add(WRITE)
    if can_write_scope and level >= Role.maintainer:
        allowed.add(DELETE)
    return allowed


def principal_for(who: str, scope: str) -> Principal | None:
    scopes = frozenset({scope})
    return {
        "anonymous": None,
        "user": Principal("alice", scopes, user_id=2),
        "admin": Principal("root", scopes, user_id=1, is_admin=True),
        "deploy-own": Principal("gitlab+deploy-token-1", scopes, deploy_project_id=PROJECT_ID),
        "deploy-other": Principal("gitlab+deploy-token-2", scopes, deploy_project_id=99),
    }[who]


CASES = [
    (visibility, who, role, scope)
    for visibility, who, role, scope in itertools.product(
        ("private", "internal", "public"),
        ("anonymous", "user", "admin", "deploy-own", "deploy-other"),
        (None, Role.reporter, Role.developer, Role.maintainer),
        SCOPES,
    )
    if who == "user" or role is None
]


@pytest.mark.parametrize(("visibility", "who", "role", "scope"), CASES)
def test_matrix(visibility: str, who: str, role: Role | None, scope: str) -> None:
    """Each combination allows exactly the actions GitLab's rules give it."""
    principal = principal_for(who, scope)
    project = ProjectAccess(PROJECT_ID, visibility, role)
    allowed = {action for action in Action if may(principal, project, action)}
    assert allowed == expected(visibility, who, role, None if principal is None else scope)


def test_matrix_covers_every_case() -> None:
    """The table has every visibility x principal kind x scope, and every role for users."""
    assert len(CASES) == 3 * (4 * 4 + 4 * 4) - 0  # users: 4 roles x 4 scopes; others: 4 scopes
    assert sum(1 for case in CASES if case[1] == "user") == 3 * 16


def test_roles_parse() -> None:
    """Role names map to GitLab's access levels; others are refused."""
    assert Role.parse("owner") > Role.parse("maintainer") > Role.parse("developer") > \
        Role.parse("reporter") > Role.parse("guest")
    assert [int(role) for role in Role] == [10, 20, 30, 40, 50]
    for bad in ("admin", "Owner", "", "maintainer ", "\uff4f\uff57\uff4e\uff45\uff52"):
        with pytest.raises(ValueError, match="unknown role"):
            Role.parse(bad)
    assert Role.from_access_level(30) is Role.developer
    for level in (0, 15, 60, -10):
        with pytest.raises(ValueError, match="access_level"):
            Role.from_access_level(level)


def test_a_guest_reads_what_anyone_signed_in_reads_and_an_owner_what_a_maintainer_does(
) -> None:
    """GitLab's permission table: a guest may not pull from a private project's registry;
    an owner may do all a maintainer may."""
    user = Principal("u", frozenset({"api"}), user_id=1)
    for visibility, readable in (("private", False), ("internal", True), ("public", True)):
        access = ProjectAccess(1, visibility, Role.guest)
        assert may(user, access, Action.read) is readable
        assert not may(user, access, Action.write)
    owner = ProjectAccess(1, "private", Role.owner)
    assert all(may(user, owner, action) for action in Action)
