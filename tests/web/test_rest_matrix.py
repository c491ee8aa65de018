"""The authorization matrix of GitLab's REST API endpoints: every endpoint of the route
table that is not the package registry's, against every kind of principal, on a private
project (and its group). One table: who is let through; everyone else gets GitLab's
answer (401 anonymous and deploy tokens, 403 a token without the scope or the role, 404 a
principal who may not even see the project: the same as a missing one)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypid.web.routes import ENDPOINTS
from tests.web.conftest import World, make_world
from tests.web.helpers import Reply

PRINCIPALS = ("anonymous", "outsider", "guest", "rita", "dev", "mia", "olive", "root",
              "root-read", "dev-read", "dev-pkg", "dev-write", "deploy-read", "deploy-write")
READERS = {"rita", "dev", "mia", "olive", "root", "root-read", "dev-read"}
MAINTAINERS = {"mia", "olive", "root"}
# A guest member of a group sees the group (GitLab's read_group), not its private packages.
GROUP_READERS = READERS | {"guest"}
ANY_USER = {"outsider", "guest", "rita", "dev", "mia", "olive", "root", "root-read",
            "dev-read"}
ANY_USER_WRITING = {"outsider", "guest", "rita", "dev", "mia", "olive", "root"}

# endpoint -> (method, path, body, who is let through). {p}: the private project, {g}: its
# group. Bodies are refused by the handler once the gate lets a request through (a 400,
# or a 404 for a missing user or token), so that no row of the table changes the world.
MATRIX: dict[str, tuple[str, str, dict[str, object] | None, set[str]]] = {
    "get_project": ("GET", "/api/v4/projects/{p}", None, READERS),
    "update_project": ("PUT", "/api/v4/projects/{p}", {"visibility": "bogus"}, MAINTAINERS),
    "delete_project": ("DELETE", "/api/v4/projects/{p}", None, {"olive", "root"}),
    "list_members": ("GET", "/api/v4/projects/{p}/members", None, READERS),
    "get_member": ("GET", "/api/v4/projects/{p}/members/99999", None, READERS),
    "add_member": ("POST", "/api/v4/projects/{p}/members", {"user_id": 1, "access_level": 15},
                   MAINTAINERS),
    "edit_member": ("PUT", "/api/v4/projects/{p}/members/99999", {"access_level": 30},
                    MAINTAINERS),
    "remove_member": ("DELETE", "/api/v4/projects/{p}/members/99999", None, MAINTAINERS),
    "list_deploy_tokens": ("GET", "/api/v4/projects/{p}/deploy_tokens", None, MAINTAINERS),
    "create_deploy_token": ("POST", "/api/v4/projects/{p}/deploy_tokens", {"name": "x"},
                            MAINTAINERS),
    "revoke_deploy_token": ("DELETE", "/api/v4/projects/{p}/deploy_tokens/99999", None,
                            MAINTAINERS),
    "list_protection_rules": ("GET", "/api/v4/projects/{p}/packages/protection/rules", None,
                              MAINTAINERS),
    "create_protection_rule": ("POST", "/api/v4/projects/{p}/packages/protection/rules",
                               {"package_name_pattern": "a b", "package_type": "pypi"},
                               MAINTAINERS),
    "update_protection_rule": ("PATCH", "/api/v4/projects/{p}/packages/protection/rules/99999",
                               {}, MAINTAINERS),
    "delete_protection_rule": ("DELETE",
                               "/api/v4/projects/{p}/packages/protection/rules/99999", None,
                               MAINTAINERS),
    "get_group": ("GET", "/api/v4/groups/{g}", None, GROUP_READERS),
    "group_packages": ("GET", "/api/v4/groups/{g}/packages", None, GROUP_READERS),
    "list_group_members": ("GET", "/api/v4/groups/{g}/members", None, GROUP_READERS),
    "get_group_member": ("GET", "/api/v4/groups/{g}/members/99999", None, GROUP_READERS),
    "add_group_member": ("POST", "/api/v4/groups/{g}/members",
                         {"user_id": 1, "access_level": 15}, MAINTAINERS),
    "edit_group_member": ("PUT", "/api/v4/groups/{g}/members/99999", {"access_level": 30},
                          MAINTAINERS),
    "remove_group_member": ("DELETE", "/api/v4/groups/{g}/members/99999", None, MAINTAINERS),
    "list_group_deploy_tokens": ("GET", "/api/v4/groups/{g}/deploy_tokens", None,
                                 MAINTAINERS),
    "create_group_deploy_token": ("POST", "/api/v4/groups/{g}/deploy_tokens", {"name": "x"},
                                  MAINTAINERS),
    "revoke_group_deploy_token": ("DELETE", "/api/v4/groups/{g}/deploy_tokens/99999", None,
                                  MAINTAINERS),
    "list_projects": ("GET", "/api/v4/projects?order_by=bogus", None,
                      {"anonymous"} | ANY_USER),
    "create_project": ("POST", "/api/v4/projects", {"name": "x"}, ANY_USER_WRITING),
    "list_groups": ("GET", "/api/v4/groups?per_page=0", None, {"anonymous"} | ANY_USER),
    "create_group": ("POST", "/api/v4/groups", {"parent_id": "x"}, ANY_USER_WRITING),
    "current_user": ("GET", "/api/v4/user", None, ANY_USER),
    "own_token": ("GET", "/api/v4/personal_access_tokens/self", None, ANY_USER),
    "rotate_own_token": ("POST", "/api/v4/personal_access_tokens/self/rotate",
                         {"expires_at": "never"}, ANY_USER_WRITING),
    "list_tokens": ("GET", "/api/v4/personal_access_tokens?state=bogus", None, ANY_USER),
    "get_token": ("GET", "/api/v4/personal_access_tokens/99999", None, ANY_USER),
    "revoke_token": ("DELETE", "/api/v4/personal_access_tokens/99999", None,
                     ANY_USER_WRITING),
    "rotate_token": ("POST", "/api/v4/personal_access_tokens/99999/rotate", None,
                     ANY_USER_WRITING),
    "list_users": ("GET", "/api/v4/users?per_page=x", None, ANY_USER),
    "get_user": ("GET", "/api/v4/users/99999", None, ANY_USER),
    "create_user": ("POST", "/api/v4/users", {"username": "bad name"}, {"root"}),
    "update_user": ("PUT", "/api/v4/users/99999", {}, {"root"}),
    "delete_user": ("DELETE", "/api/v4/users/99999", None, {"root"}),
    "block_user": ("POST", "/api/v4/users/99999/block", None, {"root"}),
    "unblock_user": ("POST", "/api/v4/users/99999/unblock", None, {"root"}),
    "create_user_token": ("POST", "/api/v4/users/99999/personal_access_tokens",
                          {"name": "t", "scopes": ["api"]}, {"root"}),
}


def matrix_world(path: Path) -> tuple[World, int]:
    """The world of conftest, plus a private group `vault` holding the private project
    `vault/app`; roles come from the group (inherited by the project), as GitLab's."""
    world = make_world(path)
    registry = world.client.harness.registry
    vault = registry.create_project("vault/app", "private")
    for name in ("guest", "olive"):
        registry.create_user(name)
        world.tokens[name] = ("__token__", registry.create_token(name, "api")[1])
    for name, role in (("guest", "guest"), ("rita", "reporter"), ("dev", "developer"),
                       ("mia", "maintainer"), ("olive", "owner")):
        registry.add_group_member("vault", name, role)
    world.tokens["root-read"] = ("__token__", registry.create_token("root", "read_api")[1])
    world.tokens["dev-pkg"] = ("__token__",
                               registry.create_token("dev", "read_package_registry")[1])
    world.tokens["deploy-read"] = registry.create_deploy_token(vault, "read_package_registry")
    world.tokens["deploy-write"] = registry.create_deploy_token(vault,
                                                                "write_package_registry")
    return world, vault


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, int]:
    return matrix_world(Path(tmp_path_factory.mktemp("matrix")))


def test_the_matrix_covers_every_rest_endpoint() -> None:
    rest = {endpoint.name for endpoint in ENDPOINTS if not endpoint.registry
            or endpoint.target in ("user", "admin") or endpoint.name in (
                "list_projects", "create_project")}
    assert rest == set(MATRIX)


def _let_through(reply: Reply) -> bool:
    """Past the gate: anything but its refusals (401, 403 for scope or role, and the 404
    that hides a project or group)."""
    if reply.code == 401:
        return False
    document = json.loads(reply.body) if reply.body else {}
    message = document.get("message", "") if isinstance(document, dict) else ""
    if reply.code == 403:
        return False
    return not (reply.code == 404 and ("Project Not Found" in str(message)
                                       or "Group Not Found" in str(message)))


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_who_is_let_through(world: tuple[World, int], name: str,
                            tmp_path_factory: pytest.TempPathFactory) -> None:
    method, path, body, allowed = MATRIX[name]
    for who in PRINCIPALS:
        shared, project_id = world
        if name == "delete_project":  # it really deletes: a world of its own each time
            shared, project_id = matrix_world(Path(tmp_path_factory.mktemp("delete")))
        auth = None if who == "anonymous" else shared.tokens[who]
        reply = shared.client.request(
            method, path.format(p=project_id, g="vault"), auth=auth,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        assert reply.code < 500, (name, who, reply)
        assert _let_through(reply) is (who in allowed), (name, who, reply.code, reply.body)
        if who == "anonymous" and who not in allowed:
            assert reply.code == 401
        if who.startswith("deploy") and who not in allowed:
            assert reply.code == 401, (name, who, reply.code)
        if who in ("dev-pkg", "dev-write"):  # package-registry scopes reach no REST endpoint
            assert reply.code == 403 and b"insufficient_scope" in reply.body, (name, reply)


# -- bad input --------------------------------------------------------------------------

FIELD_NAMES = ("name", "path", "username", "email", "user_id", "access_level", "scopes",
               "expires_at", "visibility", "namespace_id", "parent_id", "description",
               "packages_enabled", "admin", "package_name_pattern", "package_type",
               "minimum_access_level_for_push", "minimum_access_level_for_delete",
               "order_by", "sort", "state", "search")
any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | any_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(any_text, children, max_size=3), max_leaves=6)
bodies = st.dictionaries(st.sampled_from(FIELD_NAMES) | any_text, json_values, max_size=5)
WRITES = sorted(name for name, (method, _, _, _) in MATRIX.items() if method != "GET"
                and name != "delete_project")


@pytest.mark.parametrize("name", WRITES)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, form=st.booleans())
def test_any_body_is_a_4xx_at_worst(world: tuple[World, int], name: str,
                                    body: dict[str, object], form: bool) -> None:
    """Wrong types, all of Unicode, huge numbers, nesting, as JSON or as a form: an
    administrator's request is answered, never with a 5xx."""
    method, path, _, _ = MATRIX[name]
    shared, project_id = world
    if form:
        data = urlencode({key: json.dumps(value) if not isinstance(value, str) else value
                          for key, value in body.items()}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data, content_type = json.dumps(body).encode(), "application/json"
    reply = shared.client.request(method, path.format(p=project_id, g="vault"),
                                  auth=shared.tokens["root"], data=data,
                                  headers={"Content-Type": content_type})
    assert reply.code < 500, (name, body, reply)
