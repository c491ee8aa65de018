"""The route table: every endpoint declared once (method, path, the action the gate checks,
its handler, and the fast lane's twin if memory can answer it).

The Klein routes are registered from this table in a loop (pypid.web.app), and the fast
lane matches requests with the same werkzeug Map (Router, below), so no URL grammar is
written twice. Paths are GitLab's; `ref` is the numeric project id or the URL-encoded
path (`acme%2Ftools`), which werkzeug sees decoded, hence `<path:ref>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from pypid.domain.access import Action
from pypid.web import (
    group_pypi,
    groups_api,
    health,
    packages_api,
    projects_api,
    protection_api,
    pypi,
    users_api,
)
from pypid.web.gate import ADMIN, USER
from pypid.web.gate import GROUP as GROUP_TARGET
from pypid.web.gate import PROJECT as PROJECT_TARGET
from pypid.web.pages import views

API = "/api/v4"
PROJECT = "/api/v4/projects/<path:ref>"
PYPI = PROJECT + "/packages/pypi"
GROUP = "/api/v4/groups/<path:ref>"
PAGE = "/<path:ref>/-/packages"  # GitLab's UI path of a project's packages
GROUP_PYPI = GROUP + "/-/packages/pypi"
READS = ("GET", "HEAD")
GET, POST, PUT, DELETE = ("GET",), ("POST",), ("PUT",), ("DELETE",)

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Endpoint:
    name: str  # the Klein endpoint, and the label it carries in logs and metrics
    methods: tuple[str, ...]
    rule: str  # werkzeug rule syntax
    action: Action | None  # what the gate checks on the `ref` project; None: no gate
    handler: Handler  # async (services, request, allowed, **arguments)
    from_memory: Handler | None = None  # (same arguments) -> answer, or None: not in memory
    # The fast lane may run `handler` itself once the gate's peek allows (uploads: the
    # body is streamed to a worker anyway, and Klein's dispatch would only add cost).
    direct: bool = False
    # Its body is an upload form, parsed while it arrives (pypid.web.formbody).
    streams_body: bool = False
    target: str = PROJECT_TARGET  # what `ref` names: a project or a group
    # False: the rule matches with and without its trailing slash, and the handler
    # decides (index pages redirect; uploads must never be redirected: twine gives up).
    strict_slashes: bool = True
    # An endpoint of the project's package registry: package-registry token scopes and
    # deploy tokens reach it, and while the project's packages switch (GitLab's
    # packages_enabled) is off the gate refuses it with 403. False: the rest of GitLab's
    # REST API (projects, members...), for api and read_api tokens only.
    registry: bool = True
    # A web page (pypid.web.pages): a session cookie signs its visitor in.
    session: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("health", READS, "/-/health", None, health.health),
    Endpoint("metrics", READS, "/-/metrics", None, health.metrics),
    Endpoint("upload", ("POST",), PYPI + "/", Action.write, pypi.upload, direct=True,
             streams_body=True, strict_slashes=False),
    Endpoint("simple_root", READS, PYPI + "/simple/", Action.read, pypi.simple_root,
             pypi.simple_root_from_memory, strict_slashes=False),
    Endpoint("simple_package", READS, PYPI + "/simple/<name>/", Action.read,
             pypi.simple_package, pypi.simple_package_from_memory, strict_slashes=False),
    Endpoint("file", READS, PYPI + "/files/<sha256>/<filename>", Action.read, pypi.file,
             pypi.file_from_memory),
    # The group index (read-only: uploads go to projects).
    Endpoint("group_simple_root", READS, GROUP_PYPI + "/simple/", Action.read,
             group_pypi.simple_root, group_pypi.simple_root_from_memory,
             strict_slashes=False, target=GROUP_TARGET),
    Endpoint("group_simple_package", READS, GROUP_PYPI + "/simple/<name>/", Action.read,
             group_pypi.simple_package, group_pypi.simple_package_from_memory,
             strict_slashes=False, target=GROUP_TARGET),
    Endpoint("group_file", READS, GROUP_PYPI + "/files/<sha256>/<filename>", Action.read,
             group_pypi.file, group_pypi.file_from_memory, target=GROUP_TARGET),
    Endpoint("packages", ("GET",), PROJECT + "/packages", Action.read,
             packages_api.list_packages),
    Endpoint("package", ("GET",), PROJECT + "/packages/<int:package_id>", Action.read,
             packages_api.get_package),
    Endpoint("package_files", ("GET",), PROJECT + "/packages/<int:package_id>/package_files",
             Action.read, packages_api.package_files),
    Endpoint("delete_package", ("DELETE",), PROJECT + "/packages/<int:package_id>",
             Action.delete, packages_api.delete_package),
    Endpoint("delete_file", ("DELETE",),
             PROJECT + "/packages/<int:package_id>/package_files/<int:file_id>",
             Action.delete, packages_api.delete_file),
    Endpoint("yank", ("POST",), PROJECT + "/packages/<int:package_id>/yank", Action.delete,
             packages_api.yank),
    Endpoint("unyank", ("POST",), PROJECT + "/packages/<int:package_id>/unyank",
             Action.delete, packages_api.unyank),
    Endpoint("get_settings", ("GET",), PROJECT + "/packages/settings", Action.read,
             packages_api.get_settings),
    Endpoint("put_settings", ("PUT",), PROJECT + "/packages/settings", Action.delete,
             packages_api.put_settings),
    # Package protection rules (maintainers).
    Endpoint("list_protection_rules", GET, PROJECT + "/packages/protection/rules",
             Action.delete, protection_api.list_rules, registry=False),
    Endpoint("create_protection_rule", POST, PROJECT + "/packages/protection/rules",
             Action.delete, protection_api.create_rule, registry=False),
    Endpoint("update_protection_rule", ("PATCH",),
             PROJECT + "/packages/protection/rules/<int:rule_id>", Action.delete,
             protection_api.update_rule, registry=False),
    Endpoint("delete_protection_rule", DELETE,
             PROJECT + "/packages/protection/rules/<int:rule_id>", Action.delete,
             protection_api.delete_rule, registry=False),
    # Projects, members and deploy tokens (GitLab's REST API). Action.delete stands for
    # what maintainers may do; deleting a project also needs an owner (projects_api).
    Endpoint("list_projects", GET, API + "/projects", Action.read,
             projects_api.list_projects, registry=False),
    Endpoint("create_project", POST, API + "/projects", Action.write,
             projects_api.create_project, target=USER),
    Endpoint("get_project", GET, PROJECT, Action.read, projects_api.get_project,
             registry=False),
    Endpoint("update_project", PUT, PROJECT, Action.delete, projects_api.update_project,
             registry=False),
    Endpoint("delete_project", DELETE, PROJECT, Action.delete, projects_api.delete_project,
             registry=False),
    Endpoint("list_members", GET, PROJECT + "/members", Action.read,
             projects_api.project_members.list, registry=False),
    Endpoint("add_member", POST, PROJECT + "/members", Action.delete,
             projects_api.project_members.add, registry=False),
    Endpoint("get_member", GET, PROJECT + "/members/<int:user_id>", Action.read,
             projects_api.project_members.get, registry=False),
    Endpoint("edit_member", PUT, PROJECT + "/members/<int:user_id>", Action.delete,
             projects_api.project_members.edit, registry=False),
    Endpoint("remove_member", DELETE, PROJECT + "/members/<int:user_id>", Action.delete,
             projects_api.project_members.remove, registry=False),
    Endpoint("list_deploy_tokens", GET, PROJECT + "/deploy_tokens", Action.delete,
             projects_api.project_deploy_tokens.list, registry=False),
    Endpoint("create_deploy_token", POST, PROJECT + "/deploy_tokens", Action.delete,
             projects_api.project_deploy_tokens.create, registry=False),
    Endpoint("revoke_deploy_token", DELETE, PROJECT + "/deploy_tokens/<int:token_id>",
             Action.delete, projects_api.project_deploy_tokens.revoke, registry=False),
    # Groups: list, create, show, their packages, members and deploy tokens.
    Endpoint("list_groups", GET, API + "/groups", Action.read, groups_api.list_groups,
             registry=False),
    Endpoint("create_group", POST, API + "/groups", Action.write, groups_api.create_group,
             target=USER),
    Endpoint("get_group", GET, GROUP + "", Action.read, groups_api.get_group,
             target=GROUP_TARGET, registry=False),
    Endpoint("group_packages", GET, GROUP + "/packages", Action.read,
             groups_api.group_packages, target=GROUP_TARGET, registry=False),
    Endpoint("list_group_members", GET, GROUP + "/members", Action.read,
             groups_api.group_members.list, target=GROUP_TARGET, registry=False),
    Endpoint("add_group_member", POST, GROUP + "/members", Action.delete,
             groups_api.group_members.add, target=GROUP_TARGET, registry=False),
    Endpoint("get_group_member", GET, GROUP + "/members/<int:user_id>", Action.read,
             groups_api.group_members.get, target=GROUP_TARGET, registry=False),
    Endpoint("edit_group_member", PUT, GROUP + "/members/<int:user_id>", Action.delete,
             groups_api.group_members.edit, target=GROUP_TARGET, registry=False),
    Endpoint("remove_group_member", DELETE, GROUP + "/members/<int:user_id>",
             Action.delete, groups_api.group_members.remove, target=GROUP_TARGET, registry=False),
    Endpoint("list_group_deploy_tokens", GET, GROUP + "/deploy_tokens", Action.delete,
             groups_api.group_deploy_tokens.list, target=GROUP_TARGET, registry=False),
    Endpoint("create_group_deploy_token", POST, GROUP + "/deploy_tokens", Action.delete,
             groups_api.group_deploy_tokens.create, target=GROUP_TARGET, registry=False),
    Endpoint("revoke_group_deploy_token", DELETE, GROUP + "/deploy_tokens/<int:token_id>",
             Action.delete, groups_api.group_deploy_tokens.revoke, target=GROUP_TARGET,
             registry=False),
    # Web pages, at GitLab's UI paths (a session cookie signs the visitor in).
    Endpoint("home", READS, "/", Action.read, views.home, session=True),
    Endpoint("sign_in_form", READS, "/users/sign_in", None, views.sign_in_form),
    Endpoint("sign_in", POST, "/users/sign_in", None, views.sign_in),
    Endpoint("sign_out", POST, "/users/sign_out", Action.read, views.sign_out, session=True),
    Endpoint("packages_page", READS, PAGE, Action.read, views.packages_page,
             views.packages_page_from_memory, session=True),
    Endpoint("package_page", READS, PAGE + "/<int:package_id>", Action.read,
             views.package_page, session=True),
    Endpoint("yank_page", POST, PAGE + "/<int:package_id>/yank", Action.delete, views.yank,
             session=True),
    Endpoint("unyank_page", POST, PAGE + "/<int:package_id>/unyank", Action.delete,
             views.unyank, session=True),
    Endpoint("confirm_delete_package", READS, PAGE + "/<int:package_id>/delete",
             Action.delete, views.confirm_delete_package, session=True),
    Endpoint("delete_package_page", POST, PAGE + "/<int:package_id>/delete", Action.delete,
             views.delete_package, session=True),
    Endpoint("confirm_delete_file", READS,
             PAGE + "/<int:package_id>/files/<int:file_id>/delete", Action.delete,
             views.confirm_delete_file, session=True),
    Endpoint("delete_file_page", POST, PAGE + "/<int:package_id>/files/<int:file_id>/delete",
             Action.delete, views.delete_file, session=True),
    # Accounts (GitLab's REST API; administrators change users).
    Endpoint("current_user", GET, API + "/user", Action.read, users_api.current_user,
             target=USER),
    Endpoint("own_token", GET, API + "/personal_access_tokens/self", Action.read,
             users_api.own_token, target=USER),
    Endpoint("rotate_own_token", POST, API + "/personal_access_tokens/self/rotate",
             Action.write, users_api.rotate_own_token, target=USER),
    Endpoint("list_tokens", GET, API + "/personal_access_tokens", Action.read,
             users_api.list_tokens, target=USER),
    Endpoint("get_token", GET, API + "/personal_access_tokens/<int:token_id>", Action.read,
             users_api.get_token, target=USER),
    Endpoint("revoke_token", DELETE, API + "/personal_access_tokens/<int:token_id>",
             Action.delete, users_api.revoke_token, target=USER),
    Endpoint("rotate_token", POST, API + "/personal_access_tokens/<int:token_id>/rotate",
             Action.write, users_api.rotate_token, target=USER),
    Endpoint("list_users", GET, API + "/users", Action.read, users_api.list_users,
             target=USER),
    Endpoint("create_user", POST, API + "/users", Action.write, users_api.create_user,
             target=ADMIN),
    Endpoint("get_user", GET, API + "/users/<int:user_id>", Action.read, users_api.get_user,
             target=USER),
    Endpoint("update_user", PUT, API + "/users/<int:user_id>", Action.write,
             users_api.update_user, target=ADMIN),
    Endpoint("delete_user", DELETE, API + "/users/<int:user_id>", Action.delete,
             users_api.delete_user, target=ADMIN),
    Endpoint("block_user", POST, API + "/users/<int:user_id>/block", Action.write,
             users_api.block_user, target=ADMIN),
    Endpoint("unblock_user", POST, API + "/users/<int:user_id>/unblock", Action.write,
             users_api.unblock_user, target=ADMIN),
    Endpoint("create_user_token", POST, API + "/users/<int:user_id>/personal_access_tokens",
             Action.write, users_api.create_user_token, target=ADMIN),
)


@dataclass(frozen=True)
class Match:
    """What a request's method and path are: an endpoint and its arguments, or nothing
    (then Klein answers the 404/405), or a path that is not UTF-8 (400)."""

    endpoint: Endpoint | None
    ref: str | None  # the project the gate checks, taken out of the arguments
    arguments: Mapping[str, Any]  # the handler's own (never modified by callers)
    bad_path: bool = False


NO_MATCH = Match(None, None, {})
MEMO_SIZE = 8192


class Router:
    """Matches requests with the Klein app's own werkzeug Map; results are memoized per
    (method, raw path), so a hot path costs one dict lookup, whatever the table's size."""

    def __init__(self, url_map: Map, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> None:
        self._adapter = url_map.bind("pypid", "/")
        self._by_name = {endpoint.name: endpoint for endpoint in endpoints}
        self._memo: dict[tuple[bytes, bytes], Match] = {}

    def match(self, method: bytes, path: bytes) -> Match:
        key = (method, path)
        found = self._memo.get(key)
        if found is None:
            found = self._match(method, path)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def endpoint_name(self, method: bytes, path: bytes) -> str:
        """The label a request is counted under (/-/metrics)."""
        endpoint = self.match(method, path).endpoint
        return "unmatched" if endpoint is None else endpoint.name

    def _match(self, method: bytes, path: bytes) -> Match:
        try:
            # As Klein (through twisted.web's postpath) decodes it.
            path_info = unquote_to_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            return Match(None, None, {}, bad_path=True)
        try:
            name, arguments = self._adapter.match(
                path_info, method.decode("latin-1"), return_rule=False)
        except HTTPException:
            return NO_MATCH
        rest = dict(arguments)
        ref = rest.pop("ref", None)
        return Match(self._by_name[str(name)], ref, rest)
