"""GitLab's REST API, driven by python-gitlab (the client teams leaving GitLab have scripts
for) against the real daemon: every call through python-gitlab's own objects."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import gitlab
import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.e2e.daemon import BIN, Daemon, run


@pytest.fixture
def admin(daemon: Daemon) -> Iterator[gitlab.Gitlab]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. python-gitlab's "base URL differs" warning
        client = gitlab.Gitlab(daemon.url, private_token=daemon.token)
        client.auth()
        yield client


def as_user(daemon: Daemon, token: str) -> gitlab.Gitlab:
    client = gitlab.Gitlab(daemon.url, private_token=token)
    client.auth()
    return client


def twine_upload(daemon: Daemon, project_id: int, token: str, path: Path,
                 check: bool = True) -> str:
    result = run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                  "--repository-url", f"{daemon.url}/api/v4/projects/{project_id}/packages/pypi",
                  "-u", "__token__", "-p", token, str(path)], check=check)
    return result.stdout + result.stderr


def wheel(tmp_path: Path, name: str, version: str, summary: str = "a test package") -> Path:
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                f"Summary: {summary}\nKeywords: one,two\nAuthor-email: dev@example.org\n"
                "Requires-Python: >=3.9\nDescription-Content-Type: text/markdown\n\n"
                "# The long description\n")
    path = tmp_path / wheel_filename(name, version)
    path.write_bytes(wheel_bytes(name, version, metadata=metadata))
    return path


def test_an_admin_sets_up_a_team_and_the_team_publishes(
        daemon: Daemon, admin: gitlab.Gitlab, tmp_path: Path) -> None:
    """Users, a group, a project, a member, a token for the user; the user rotates it and
    publishes with twine; python-gitlab lists, sorts, reads pypi_metadata and deletes."""
    assert admin.user is not None and admin.user.username == "root" and admin.user.is_admin
    alice = admin.users.create({"username": "alice", "name": "Alice A.",
                                "email": "alice@example.org"})
    group = admin.groups.create({"name": "team", "path": "team"})
    project = admin.projects.create({"name": "libs", "namespace_id": group.id,
                                     "visibility": "private"})
    assert project.path_with_namespace == "team/libs" and project.packages_enabled
    member = project.members.create({"user_id": alice.id, "access_level": 30})
    assert member.access_level == 30 and member.username == "alice"
    assert [m.username for m in project.members.list(get_all=True)] == ["alice"]
    token = alice.personal_access_tokens.create({"name": "laptop", "scopes": ["api"]})
    deploy = project.deploytokens.create({"name": "ci", "scopes": ["read_package_registry"]})
    assert deploy.username.startswith("gitlab+deploy-token-") and deploy.token

    client = as_user(daemon, token.token)
    own = client.personal_access_tokens.get("self")
    own.rotate(self_rotate=True)
    with pytest.raises(gitlab.GitlabAuthenticationError):
        as_user(daemon, token.token)  # the old secret stopped working
    assert own.token != token.token and own.expires_at
    client = as_user(daemon, own.token)
    assert client.user is not None and client.user.username == "alice"

    for version in ("1.0", "2.0", "1.5"):
        twine_upload(daemon, project.id, own.token,
                     wheel(tmp_path, "alpha", version, summary=f"alpha {version}"))
    twine_upload(daemon, project.id, own.token, wheel(tmp_path, "beta", "0.1"))
    packages = client.projects.get(project.id).packages
    by_version = packages.list(order_by="version", sort="desc", get_all=True)
    assert [(p.name, p.version) for p in by_version] == [
        ("alpha", "2.0"), ("alpha", "1.5"), ("alpha", "1.0"), ("beta", "0.1")]
    assert [p.version for p in packages.list(package_name="alpha", package_version="1.5",
                                             get_all=True)] == ["1.5"]
    assert [p.name for p in packages.list(order_by="name", sort="desc", per_page=1,
                                          page=1)] == ["beta"]
    one = packages.get(by_version[0].id)
    assert one.pypi_metadata["summary"] == "alpha 2.0"
    assert one.pypi_metadata["required_python"] == ">=3.9"
    assert one.pypi_metadata["keywords"] in ("one,two", "one, two")  # as twine sends them
    assert one._links["web_path"] == f"/team/libs/-/packages/{one.id}"
    files = one.package_files.list(get_all=True)
    assert [f.file_name for f in files] == ["alpha-2.0-py3-none-any.whl"]
    with pytest.raises(gitlab.GitlabDeleteError) as denied:  # a developer does not delete
        one.package_files.delete(files[0].id)
    assert denied.value.response_code == 403
    maintained = admin.projects.get(project.id).packages
    maintained.get(one.id).package_files.delete(files[0].id)
    maintained.delete(by_version[1].id)
    assert [p.version for p in packages.list(package_name="alpha", get_all=True)] == ["1.0"]
    audited = [json.loads(line) for line in
               (daemon.data_dir / "audit.log").read_text().splitlines()]
    actions = {entry["action"] for entry in audited}
    assert {"user_create", "group_create", "project_create", "member_add", "token_create",
            "project_deploy_token_create", "token_rotate", "upload", "delete_file",
            "delete_package"} <= actions
    assert not any(own.token in line or token.token in line or deploy.token in line
                   for line in (daemon.data_dir / "audit.log").read_text().splitlines())


def test_the_packages_switch(daemon: Daemon, admin: gitlab.Gitlab, tmp_path: Path) -> None:
    """packages_enabled off: the project's PyPI endpoints answer 403 and uploads are
    refused with the reason; on again, everything is back (nothing was deleted)."""
    group = admin.groups.create({"name": "acme", "path": "acme", "visibility": "public"})
    project = admin.projects.create({"name": "tools", "namespace_id": group.id,
                                     "visibility": "public"})
    twine_upload(daemon, project.id, daemon.token, wheel(tmp_path, "tool", "1.0"))
    index = f"/api/v4/projects/{project.id}/packages/pypi/simple/tool/"
    assert daemon.get(index)[0] == 200
    project.packages_enabled = False
    project.save()
    assert admin.projects.get(project.id).packages_enabled is False
    code, body = daemon.get(index)
    assert code == 403 and b"package registry is turned off" in body
    output = twine_upload(daemon, project.id, daemon.token, wheel(tmp_path, "tool", "2.0"),
                          check=False)
    assert "403" in output and "turned off" in output
    assert daemon.get("/api/v4/groups/acme/-/packages/pypi/simple/tool/")[0] == 404
    project.packages_enabled = True
    project.save()
    assert daemon.get(index)[0] == 200


def test_users_blocked_and_tokens_revoked(daemon: Daemon, admin: gitlab.Gitlab) -> None:
    bob = admin.users.create({"username": "bob"})
    token = bob.personal_access_tokens.create({"name": "t", "scopes": ["read_api"]})
    client = as_user(daemon, token.token)
    assert client.user is not None and client.user.is_admin is False  # its own profile
    with pytest.raises(gitlab.GitlabCreateError) as refused:
        client.users.create({"username": "mallory"})  # read_api, and not an admin
    assert refused.value.response_code == 403
    bob.block()
    assert admin.users.get(bob.id).state == "blocked"
    with pytest.raises(gitlab.GitlabAuthenticationError):
        as_user(daemon, token.token)
    bob.unblock()
    as_user(daemon, token.token)
    listed = admin.personal_access_tokens.list(user_id=bob.id, get_all=True)
    assert [t.name for t in listed] == ["t"]
    admin.personal_access_tokens.delete(listed[0].id)
    with pytest.raises(gitlab.GitlabAuthenticationError):
        as_user(daemon, token.token)
    with pytest.raises(gitlab.GitlabCreateError) as taken:
        admin.users.create({"username": "bob"})
    assert taken.value.response_code == 409
    bob.delete()
    with pytest.raises(gitlab.GitlabGetError) as gone:
        admin.users.get(bob.id)
    assert gone.value.response_code == 404


def test_group_members_and_deploy_tokens(daemon: Daemon, admin: gitlab.Gitlab,
                                         tmp_path: Path) -> None:
    """A group member's role reaches the projects below; a group deploy token reads them."""
    carol = admin.users.create({"username": "carol"})
    group = admin.groups.create({"name": "org", "path": "org"})
    sub = admin.groups.create({"name": "platform", "path": "platform", "parent_id": group.id})
    assert sub.full_path == "org/platform"
    project = admin.projects.create({"name": "core", "namespace_id": sub.id})
    group.members.create({"user_id": carol.id, "access_level": 40})
    assert [(m.username, m.access_level) for m in group.members.list(get_all=True)] == [
        ("carol", 40)]
    token = carol.personal_access_tokens.create({"name": "t", "scopes": ["api"]})
    twine_upload(daemon, project.id, token.token, wheel(tmp_path, "core", "1.0"))
    carol_client = as_user(daemon, token.token)
    # A maintainer of the group manages it: a subgroup and a deploy token.
    carol_group = carol_client.groups.get(group.id)
    deploy = carol_group.deploytokens.create({"name": "ci",
                                              "scopes": ["read_package_registry"]})
    code, body = daemon.get("/api/v4/groups/org/-/packages/pypi/simple/",
                            headers={"Authorization": _basic(deploy.username, deploy.token)})
    assert code == 200 and b"core" in body
    assert [p.name for p in carol_group.packages.list(get_all=True)] == ["core"]
    member = group.members.get(carol.id)
    member.access_level = 20
    member.save()
    with pytest.raises(gitlab.GitlabCreateError):
        carol_client.groups.get(group.id).deploytokens.create(
            {"name": "x", "scopes": ["read_package_registry"]})
    group.members.delete(carol.id)
    assert group.members.list(get_all=True) == []


def _basic(username: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def test_package_protection_rules(daemon: Daemon, admin: gitlab.Gitlab, tmp_path: Path) -> None:
    """A rule keeps developers and deploy tokens from pushing protected names (403 naming
    the rule) and maintainers from deleting where the rule says owner; others are free."""
    dave = admin.users.create({"username": "dave"})
    group = admin.groups.create({"name": "safe", "path": "safe"})
    project = admin.projects.create({"name": "lib", "namespace_id": group.id})
    project.members.create({"user_id": dave.id, "access_level": 30})
    token = dave.personal_access_tokens.create({"name": "t", "scopes": ["api"]}).token
    rule = project.package_protection_rules.create({
        "package_name_pattern": "Safe_*", "package_type": "pypi",
        "minimum_access_level_for_push": "maintainer"})
    assert rule.minimum_access_level_for_push == "maintainer"
    output = twine_upload(daemon, project.id, token, wheel(tmp_path, "safe-core", "1.0"),
                          check=False)
    assert "403" in output and f"protection rule {rule.id}" in output
    twine_upload(daemon, project.id, token, wheel(tmp_path, "other", "1.0"))  # not protected
    twine_upload(daemon, project.id, daemon.token, wheel(tmp_path, "safe-core", "1.0"))
    deploy = project.deploytokens.create({"name": "ci", "scopes": ["write_package_registry"]})
    result = run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                  "--repository-url", f"{daemon.url}/api/v4/projects/{project.id}/packages/pypi",
                  "-u", deploy.username, "-p", deploy.token,
                  str(wheel(tmp_path, "safe-core", "2.0"))], check=False)
    assert "403" in result.stdout + result.stderr
    rule.minimum_access_level_for_delete = "owner"
    rule.save()
    assert [r.minimum_access_level_for_delete for r in
            project.package_protection_rules.list(get_all=True)] == ["owner"]
    member = project.members.get(dave.id)
    member.access_level = 40
    member.save()
    maintainer = as_user(daemon, token).projects.get(project.id)
    safe = maintainer.packages.list(package_name="safe-core", get_all=True)[0]
    with pytest.raises(gitlab.GitlabDeleteError) as refused:
        maintainer.packages.delete(safe.id)
    assert refused.value.response_code == 403 and "protection rule" in str(refused.value)
    project.package_protection_rules.delete(rule.id)
    maintainer.packages.delete(safe.id)
    with pytest.raises(gitlab.GitlabCreateError) as bad:
        project.package_protection_rules.create({
            "package_name_pattern": "x y", "package_type": "pypi",
            "minimum_access_level_for_push": "maintainer"})
    assert bad.value.response_code == 400
