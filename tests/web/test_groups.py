"""Groups: inherited roles, and the read-only group index at GitLab's paths."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.web.helpers import Client, absolute, new_client, parse_links

JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Org:
    client: Client
    tokens: dict[str, tuple[str, str]]
    projects: dict[str, int]


@pytest.fixture
def org(tmp_path: Path) -> Org:
    """acme (private) > platform (private) > tools, libs; acme/web (public); other/x."""
    client = new_client(tmp_path)
    registry = client.harness.registry
    projects = {
        "tools": registry.create_project("acme/platform/tools"),
        "libs": registry.create_project("acme/platform/libs"),
        "web": registry.create_project("acme/web", "public"),
        "other": registry.create_project("other/x"),
    }
    tokens: dict[str, tuple[str, str]] = {}
    for name in ("gina", "pete", "olga", "root"):
        if name != "root":
            registry.create_user(name)
        tokens[name] = ("__token__", registry.create_token(name, "api")[1])
    registry.add_group_member("acme", "gina", "developer")      # every project below acme
    registry.add_member(projects["tools"], "pete", "reporter")  # one project only
    tokens["deploy"] = registry.create_group_deploy_token("acme/platform",
                                                          "read_package_registry")
    root = tokens["root"]
    for project, name in ((projects["tools"], "tool"), (projects["libs"], "lib"),
                          (projects["web"], "site"), (projects["other"], "foreign")):
        assert client.upload_wheel(project, name, "1.0", root).code == 201
    return Org(client, tokens, projects)


def group_simple(group: str, rest: str = "") -> str:
    return f"/api/v4/groups/{group}/-/packages/pypi/simple/{rest}"


def names(reply_body: object) -> list[str]:
    return [project["name"] for project in reply_body["projects"]]  # type: ignore[index]


def test_group_index_lists_every_readable_project_below(org: Org) -> None:
    """The root of a group's index names the packages of every project in it and its
    subgroups that the principal may read; the id or the URL-encoded path both work."""
    client = org.client
    for ref in ("1", "acme", "acme%2Fplatform"):
        reply = client.get(group_simple(ref), auth=org.tokens["gina"], headers={"Accept": JSON})
        assert reply.code == 200
        expected = ["lib", "site", "tool"] if ref != "acme%2Fplatform" else ["lib", "tool"]
        assert names(reply.json()) == expected


def test_group_roles_are_inherited_and_the_highest_wins(org: Org) -> None:
    """A group developer uploads to every project below; a project reporter who is a
    group developer uploads too; outside the group the role counts for nothing."""
    client, gina = org.client, org.tokens["gina"]
    assert client.upload_wheel(org.projects["tools"], "more", "1.0", gina).code == 201
    assert client.upload_wheel(org.projects["web"], "more", "1.0", gina).code == 201
    assert client.upload_wheel(org.projects["other"], "more", "1.0", gina).code == 404
    client.harness.registry.add_member(org.projects["libs"], "gina", "reporter")
    client.harness.caches.clear()
    assert client.upload_wheel(org.projects["libs"], "more", "1.0", gina).code == 201
    # The project reporter may read, not write.
    assert client.upload_wheel(org.projects["tools"], "more", "2.0",
                               org.tokens["pete"]).code == 403


def test_who_may_read_a_group(org: Org) -> None:
    """GitLab's rules: a private group is 401 for anonymous and the very same 404 for an
    outsider as a missing group; a member of one project below reads the group index with
    that project only; a public project below shows, to anyone, that project only."""
    client = org.client
    assert client.get(group_simple("acme/platform")).code == 401
    assert client.get(group_simple("nope")).code == 401
    hidden = client.get(group_simple("acme/platform"), auth=org.tokens["olga"])
    missing = client.get(group_simple("nope"), auth=org.tokens["olga"])
    assert hidden.code == missing.code == 404
    assert hidden.body == missing.body and hidden.phrase == missing.phrase == b"Group Not Found"
    pete = client.get(group_simple("acme"), auth=org.tokens["pete"], headers={"Accept": JSON})
    assert pete.code == 200 and names(pete.json()) == ["site", "tool"]
    for auth in (None, org.tokens["olga"]):  # acme/web is public
        reply = client.get(group_simple("acme"), auth=auth, headers={"Accept": JSON})
        assert reply.code == 200 and names(reply.json()) == ["site"]
    client.harness.registry.set_group_visibility("acme/platform", "internal")
    client.harness.caches.clear()
    internal = client.get(group_simple("acme/platform"), auth=org.tokens["olga"],
                          headers={"Accept": JSON})
    assert internal.code == 200 and names(internal.json()) == []  # its projects are private
    assert client.get(group_simple("acme/platform")).code == 401


def test_group_deploy_tokens_read_every_project_below(org: Org) -> None:
    """A group deploy token reads the packages of its group's projects (and subgroups'),
    not those of other groups or of the parent, and never writes without the scope."""
    client, deploy = org.client, org.tokens["deploy"]
    reply = client.get(group_simple("acme/platform"), auth=deploy, headers={"Accept": JSON})
    assert reply.code == 200 and names(reply.json()) == ["lib", "tool"]
    own = f"/api/v4/projects/{org.projects['tools']}/packages/pypi/simple/tool/"
    assert client.get(own, auth=deploy).code == 200
    url = f"/api/v4/projects/{org.projects['other']}/packages/pypi/simple/"
    assert client.get(url, auth=deploy).code == 404
    assert client.get(group_simple("other"), auth=deploy).code == 404
    assert client.upload_wheel(org.projects["tools"], "dep", "1.0", deploy).code == 403


def test_a_name_in_two_projects_comes_from_its_first_publisher(org: Org) -> None:
    """Another project of the group publishing the same name later (even a higher version)
    does not shadow or join it in the group index; its file is not served there either."""
    client, root = org.client, org.tokens["root"]
    assert client.upload_wheel(org.projects["libs"], "tool", "9.0", root).code == 201
    page_url = group_simple("acme", "tool/")
    links = parse_links(client.get(page_url, auth=org.tokens["gina"]))
    assert [text for text, _ in links] == [wheel_filename("tool", "1.0")]
    later = wheel_bytes("tool", "9.0")
    url = (f"/api/v4/groups/acme/-/packages/pypi/files/{hashlib.sha256(later).hexdigest()}/"
           f"{wheel_filename('tool', '9.0')}")
    assert client.get(url, auth=org.tokens["gina"]).code == 404
    project_page = f"/api/v4/projects/{org.projects['libs']}/packages/pypi/simple/tool/"
    assert client.get(project_page, auth=org.tokens["gina"]).code == 200
    # Someone who may read only libs sees libs' tool in the group index.
    client.harness.registry.add_member(org.projects["libs"], "olga", "reporter")
    client.harness.caches.clear()
    links = parse_links(client.get(page_url, auth=org.tokens["olga"]))
    assert [text for text, _ in links] == [wheel_filename("tool", "9.0")]


def test_group_files_download_and_pages_follow_uploads(org: Org) -> None:
    """Links of a group page download (file and .metadata) through the group URL, from
    the cache the second time; an upload below the group changes the cached page."""
    client, gina = org.client, org.tokens["gina"]
    page_url = group_simple("acme", "lib/")
    for _ in range(2):
        (_, attributes), = parse_links(client.get(page_url, auth=gina))
        href = absolute(page_url, str(attributes["href"])).split("#")[0]
        assert href.startswith("http://pypid.test/api/v4/groups/acme/-/packages/pypi/files/")
        answer = client.get(href, auth=gina)
        assert answer.code == 200 and answer.body == wheel_bytes("lib", "1.0")
        assert client.get(href + ".metadata", auth=gina).code == 200
    assert client.upload_wheel(org.projects["libs"], "lib", "2.0", gina).code == 201
    assert len(parse_links(client.get(page_url, auth=gina))) == 2
    assert client.get(group_simple("acme", "foreign/"), auth=gina).code == 404


@pytest.mark.parametrize("rest", ["simple/", "simple/tool/", "simple/Tool",
                                  "files/" + "a" * 64 + "/tool-1.0-py3-none-any.whl"])
def test_every_group_endpoint_hides_a_private_group_like_a_missing_one(
    org: Org, rest: str
) -> None:
    """On every group endpoint: 401 for anonymous, whether the group exists or not; for a
    signed-in outsider the very same answer as for a group that does not exist."""
    client = org.client
    for ref in ("acme%2Fplatform", "2"):
        url = f"/api/v4/groups/{ref}/-/packages/pypi/{rest}"
        other = url.replace(f"/groups/{ref}/", "/groups/nope%2Fnothing/" if "%2F" in ref
                            else "/groups/999/")
        assert client.get(url).code == client.get(other).code == 401
        hidden, missing = (client.get(u, auth=org.tokens["olga"]) for u in (url, other))
        assert (hidden.code, hidden.phrase, hidden.body) == (
            missing.code, missing.phrase, missing.body) == (
            404, b"Group Not Found", b'{"message": "404 Group Not Found"}')
