"""Generated from the route table: every endpoint answers alike through the fast lane and
through Klein alone, and no generated path or header gets a 5xx from any of them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypid.web.routes import ENDPOINTS, Endpoint
from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.web.conftest import World
from tests.web.helpers import Client, Reply

CONTENT = wheel_bytes("pkg", "1.0")
SHA = hashlib.sha256(CONTENT).hexdigest()
FILENAME = wheel_filename("pkg", "1.0")


@dataclass(frozen=True)
class Sample:
    method: str
    path: str  # {p}: the project id
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _upload() -> Sample:
    body, headers = upload_form(FILENAME, CONTENT, "pkg", "1.0")
    return Sample("POST", "/api/v4/projects/{p}/packages/pypi", body,
                  tuple(headers.items()))


# One request (or several) per endpoint; the test below fails for an endpoint without one.
SAMPLES: dict[str, list[Sample]] = {
    "health": [Sample("GET", "/-/health")],
    "metrics": [Sample("GET", "/-/metrics")],
    "upload": [_upload()],
    "simple_root": [Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple/"),
                    Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple"),
                    Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple/",
                           headers=(("Accept", "application/vnd.pypi.simple.v1+json"),
                                    ("Accept-Encoding", "gzip")))],
    "simple_package": [Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple/pkg/"),
                       Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple/PKG/"),
                       Sample("HEAD", "/api/v4/projects/{p}/packages/pypi/simple/pkg/"),
                       Sample("GET", "/api/v4/projects/{p}/packages/pypi/simple/none/")],
    "file": [Sample("GET", f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/{FILENAME}"),
             Sample("GET", f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/{FILENAME}",
                    headers=(("Range", "bytes=3-9"),)),
             Sample("GET",
                    f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/{FILENAME}.metadata"),
             Sample("GET", f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/other.whl")],
    "group_simple_root": [Sample("GET", "/api/v4/groups/{g}/-/packages/pypi/simple/"),
                          Sample("GET", "/api/v4/groups/acme/-/packages/pypi/simple")],
    "group_simple_package": [Sample("GET", "/api/v4/groups/{g}/-/packages/pypi/simple/pkg/"),
                             Sample("GET", "/api/v4/groups/acme/-/packages/pypi/simple/Pkg/",
                                    headers=(("Accept", "application/vnd.pypi.simple.v1+json"),))],
    "group_file": [
        Sample("GET", f"/api/v4/groups/{{g}}/-/packages/pypi/files/{SHA}/{FILENAME}"),
        Sample("GET", f"/api/v4/groups/{{g}}/-/packages/pypi/files/{SHA}/{FILENAME}.metadata")],
    "packages": [Sample("GET", "/api/v4/projects/{p}/packages?per_page=1")],
    "package": [Sample("GET", "/api/v4/projects/{p}/packages/1")],
    "package_files": [Sample("GET", "/api/v4/projects/{p}/packages/1/package_files")],
    "delete_package": [Sample("DELETE", "/api/v4/projects/{p}/packages/99999")],
    "delete_file": [Sample("DELETE", "/api/v4/projects/{p}/packages/1/package_files/99999")],
    "yank": [Sample("POST", "/api/v4/projects/{p}/packages/1/yank", b'{"reason": "x"}')],
    "unyank": [Sample("POST", "/api/v4/projects/{p}/packages/1/unyank", b"{}")],
    "get_settings": [Sample("GET", "/api/v4/projects/{p}/packages/settings")],
    "put_settings": [Sample("PUT", "/api/v4/projects/{p}/packages/settings",
                            b'{"pypi_duplicates_allowed": true}')],
    # GitLab's REST API: projects, members, deploy tokens.
    "list_projects": [Sample("GET", "/api/v4/projects?per_page=2&order_by=name&sort=asc")],
    "create_project": [Sample("POST", "/api/v4/projects",
                              b'{"name": "New One", "namespace_id": 1}',
                              (("Content-Type", "application/json"),))],
    "get_project": [Sample("GET", "/api/v4/projects/{p}")],
    "update_project": [Sample("PUT", "/api/v4/projects/{p}", b'{"description": "d"}')],
    "delete_project": [Sample("DELETE", "/api/v4/projects/99999")],
    "list_members": [Sample("GET", "/api/v4/projects/{p}/members")],
    "add_member": [Sample("POST", "/api/v4/projects/{p}/members",
                          b'{"user_id": 99999, "access_level": 30}')],
    "get_member": [Sample("GET", "/api/v4/projects/{p}/members/2")],
    "edit_member": [Sample("PUT", "/api/v4/projects/{p}/members/99999",
                           b'{"access_level": 20}')],
    "remove_member": [Sample("DELETE", "/api/v4/projects/{p}/members/99999")],
    "list_deploy_tokens": [Sample("GET", "/api/v4/projects/{p}/deploy_tokens")],
    "create_deploy_token": [Sample("POST", "/api/v4/projects/{p}/deploy_tokens",
                                   b'{"name": "ci", "scopes": ["read_package_registry"], '
                                   b'"username": "ci-bot"}')],
    "revoke_deploy_token": [Sample("DELETE", "/api/v4/projects/{p}/deploy_tokens/99999")],
    # Package protection rules.
    "list_protection_rules": [Sample("GET", "/api/v4/projects/{p}/packages/protection/rules")],
    "create_protection_rule": [Sample("POST", "/api/v4/projects/{p}/packages/protection/rules",
                                      b'{"package_name_pattern": "pkg*", "package_type": '
                                      b'"pypi", "minimum_access_level_for_push": "owner"}')],
    "update_protection_rule": [Sample("PATCH",
                                      "/api/v4/projects/{p}/packages/protection/rules/1",
                                      b'{"minimum_access_level_for_delete": "admin"}')],
    "delete_protection_rule": [Sample("DELETE",
                                      "/api/v4/projects/{p}/packages/protection/rules/99999")],
    # Groups.
    "list_groups": [Sample("GET", "/api/v4/groups")],
    "create_group": [Sample("POST", "/api/v4/groups", b'{"path": "sub", "parent_id": 1}'),
                     Sample("POST", "/api/v4/groups", b'{"path": "top"}')],
    "get_group": [Sample("GET", "/api/v4/groups/{g}"), Sample("GET", "/api/v4/groups/acme")],
    "group_packages": [Sample("GET", "/api/v4/groups/{g}/packages")],
    "list_group_members": [Sample("GET", "/api/v4/groups/{g}/members")],
    "add_group_member": [Sample("POST", "/api/v4/groups/{g}/members",
                                b'{"user_id": 99999, "access_level": 30}')],
    "get_group_member": [Sample("GET", "/api/v4/groups/{g}/members/2")],
    "edit_group_member": [Sample("PUT", "/api/v4/groups/{g}/members/99999",
                                 b'{"access_level": 20}')],
    "remove_group_member": [Sample("DELETE", "/api/v4/groups/{g}/members/99999")],
    "list_group_deploy_tokens": [Sample("GET", "/api/v4/groups/{g}/deploy_tokens")],
    "create_group_deploy_token": [Sample("POST", "/api/v4/groups/{g}/deploy_tokens",
                                         b'{"name": "ci", "scopes": ["read_package_registry"]'
                                         b', "username": "gci"}')],
    "revoke_group_deploy_token": [Sample("DELETE", "/api/v4/groups/{g}/deploy_tokens/99999")],
    # Web pages.
    "home": [Sample("GET", "/")],
    "sign_in_form": [Sample("GET", "/users/sign_in")],
    "sign_in": [Sample("POST", "/users/sign_in", b"token=x&csrf_token=y",
                       (("Content-Type", "application/x-www-form-urlencoded"),))],
    "sign_out": [Sample("POST", "/users/sign_out", b"csrf_token=y",
                        (("Content-Type", "application/x-www-form-urlencoded"),))],
    "packages_page": [Sample("GET", "/{p}/-/packages?search=pk&sort=recent&page=2")],
    "package_page": [Sample("GET", "/{p}/-/packages/1")],
    "yank_page": [Sample("POST", "/{p}/-/packages/1/yank", b"csrf_token=forged")],
    "unyank_page": [Sample("POST", "/{p}/-/packages/1/unyank", b"")],
    "confirm_delete_package": [Sample("GET", "/{p}/-/packages/1/delete")],
    "delete_package_page": [Sample("POST", "/{p}/-/packages/1/delete", b"csrf_token=x")],
    "confirm_delete_file": [Sample("GET", "/{p}/-/packages/1/files/1/delete")],
    "delete_file_page": [Sample("POST", "/{p}/-/packages/1/files/1/delete", b"")],
    # Accounts.
    "current_user": [Sample("GET", "/api/v4/user")],
    "own_token": [Sample("GET", "/api/v4/personal_access_tokens/self")],
    "rotate_own_token": [Sample("POST", "/api/v4/personal_access_tokens/self/rotate",
                                b'{"expires_at": "bad"}')],
    "list_tokens": [Sample("GET", "/api/v4/personal_access_tokens?state=active")],
    "get_token": [Sample("GET", "/api/v4/personal_access_tokens/1")],
    "revoke_token": [Sample("DELETE", "/api/v4/personal_access_tokens/99999")],
    "rotate_token": [Sample("POST", "/api/v4/personal_access_tokens/99999/rotate")],
    "list_users": [Sample("GET", "/api/v4/users?search=r")],
    "create_user": [Sample("POST", "/api/v4/users", b'{"username": "newbie"}')],
    "get_user": [Sample("GET", "/api/v4/users/1")],
    "update_user": [Sample("PUT", "/api/v4/users/99999", b'{"name": "N"}')],
    "delete_user": [Sample("DELETE", "/api/v4/users/99999")],
    "block_user": [Sample("POST", "/api/v4/users/99999/block")],
    "unblock_user": [Sample("POST", "/api/v4/users/99999/unblock")],
    "create_user_token": [Sample("POST", "/api/v4/users/99999/personal_access_tokens",
                                 b'{"name": "t", "scopes": ["api"]}')],
}
# Answers that change from one request to the next by design: compared by status and type.
CHANGING = {"metrics", "sign_in_form"}  # sign_in_form: a new CSRF cookie each time
WHO = ("anonymous", "rita", "dev", "mia", "outsider", "deploy-read", "root")


def test_every_endpoint_has_a_sample() -> None:
    """A new endpoint must come with its sample, so that the lanes are compared for it."""
    assert set(SAMPLES) == {endpoint.name for endpoint in ENDPOINTS}


def comparable(reply: Reply) -> tuple[int, bytes, bytes, dict[str, list[str]]]:
    headers = {k: v for k, v in reply.headers.items() if k != "date"}
    return reply.code, reply.phrase, reply.body, headers


def send(client: Client, sample: Sample, project: int, auth: Any) -> Reply:
    return client.request(sample.method, sample.path.format(p=project, g=1), auth=auth,
                          headers=dict(sample.headers), data=sample.body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_both_lanes_answer_alike(world: World, endpoint: Endpoint) -> None:
    """For every principal and every project visibility, the root resource (fast lane
    first) gives exactly Klein's answer, once the caches are warm."""
    client = world.client
    klein_only = Client(client.harness, resource=client.harness.app.app.resource())
    client.upload(world.private_id, FILENAME, CONTENT, "pkg", "1.0", world.tokens["dev"])
    client.upload(world.public_id, FILENAME, CONTENT, "pkg", "1.0", world.tokens["dev"])
    for project in (world.private_id, world.internal_id, world.public_id):
        for who in WHO:
            auth = None if who == "anonymous" else world.tokens[who]
            for sample in SAMPLES[endpoint.name]:
                send(client, sample, project, auth)  # warms what can be warmed
                fast = send(client, sample, project, auth)
                slow = send(klein_only, sample, project, auth)
                if endpoint.name in CHANGING:
                    assert (fast.code, fast.header("Content-Type")) == (
                        slow.code, slow.header("Content-Type"))
                else:
                    assert comparable(fast) == comparable(slow), (who, project, sample)
                assert fast.code < 500


# -- fuzzing every route ---------------------------------------------------------------

ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")
# Any code point but surrogates: control characters, non-ASCII letters, '/', '%'.
anything = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
argument_values = st.one_of(anything, st.sampled_from(
    ["1", "acme/private", "pkg", SHA, FILENAME, "..", "%", "", "0", "-1", "9" * 40]))


def path_from(endpoint: Endpoint, values: Callable[[str], str]) -> str:
    return ARGUMENT.sub(lambda match: values(match.group(2)), endpoint.rule)


header_values = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=60)
headers = st.dictionaries(
    st.sampled_from(["Accept", "Accept-Encoding", "If-None-Match", "Range", "If-Range",
                     "Authorization", "Private-Token", "Content-Type"]),
    header_values, max_size=4)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), data=st.data(), extra=headers,
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
def test_every_route_answers_generated_paths_below_500(
    fuzz_world: World, endpoint: Endpoint, data: st.DataObject, extra: dict[str, str],
    method: str,
) -> None:
    """Paths made from each route's rule with arbitrary Unicode arguments, any method and
    odd headers are answered below 500."""
    values = {name: data.draw(argument_values, label=name)
              for name in ARGUMENT.findall(endpoint.rule) for name in [name[1]]}
    path = path_from(endpoint, lambda name: quote(values[name], safe="/"))
    auth = data.draw(st.sampled_from([None, fuzz_world.tokens["mia"]]), label="auth")
    try:
        reply = fuzz_world.client.request(method, path, auth=auth, headers=extra, data=b"")
    except UnicodeEncodeError:
        return
    assert reply.code < 500, (path, reply)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from tests.web.conftest import make_world

    world = make_world(tmp_path_factory.mktemp("route-fuzz"))
    world.client.upload(world.private_id, FILENAME, CONTENT, "pkg", "1.0", world.tokens["dev"])
    return world
