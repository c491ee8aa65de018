"""GitLab's REST API for groups (doc/api/groups.md): list, create, show, the packages of
every project below a group (doc/api/packages.md, "group level"), and, through
projects_api's Members and DeployTokens, the group's members and deploy tokens.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from pypid.domain.access import Principal, may_manage_group, may_read_group
from pypid.store.registry import Registry, Row
from pypid.web.errors import HTTPError
from pypid.web.gate import Allowed
from pypid.web.packages_api import package_json
from pypid.web.projects_api import VISIBILITIES, DeployTokens, Members
from pypid.web.rest import Fields, bad_request, page_args, paginated, set_page_headers
from pypid.web.services import Services, json_answer


def group_json(base: str, row: Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "path": row["name"],
            "full_path": row["path"], "full_name": row["path"].replace("/", " / "),
            "description": "", "visibility": row["visibility"],
            "parent_id": row["parent_id"], "created_at": row["created_at"],
            "avatar_url": None, "web_url": f"{base}/groups/{row['path']}"}


def readable_groups(registry: Registry, principal: Principal | None,
                     search: str | None) -> list[Row]:
    """Database thread: every group the principal may read."""
    found = []
    for row in registry.list_groups():
        if search and search.lower() not in row["path"].lower():
            continue
        group = registry.group(row["id"])
        if may_read_group(principal, registry.group_access(group, principal)):
            found.append(row)
    return found


async def list_groups(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    fields = Fields(request)
    rows = await services.run_db(readable_groups, allowed.principal, fields.text("search"))
    base = services.base_url(request)
    page = paginated(request, rows, base)
    return json_answer(request, [group_json(base, row) for row in page])


async def get_group(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    assert allowed.group is not None
    row = await services.store(Registry.group, allowed.group["id"])
    return json_answer(request, group_json(services.base_url(request), row))


async def create_group(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    """Top-level groups by administrators; subgroups by the parent's maintainers (GitLab's
    default subgroup_creation_level)."""
    principal = allowed.principal
    assert principal is not None
    fields = Fields(request)
    name = fields.text("name")
    path = fields.text("path") or name
    if path is None:
        raise bad_request("path is missing")
    parent_id = fields.integer("parent_id")
    full_path = path
    if parent_id is not None:
        parent = await services.store(Registry.group, parent_id)
        access = await services.run_db(Registry.group_access, parent, principal)
        if not may_read_group(principal, access):
            raise HTTPError(404, "Group Not Found")
        if not may_manage_group(principal, access):
            raise HTTPError(403, "Forbidden - making subgroups needs the maintainer role "
                                 "or higher in the parent group")
        full_path = f"{parent['path']}/{path}"
    elif not principal.is_admin:
        raise HTTPError(403, "Forbidden - top-level groups are made by administrators")
    if "/" in path:
        raise bad_request("path is invalid (a subgroup's parent is given by parent_id)")
    visibility = fields.text("visibility") or "private"
    if visibility not in VISIBILITIES:
        raise bad_request("visibility does not have a valid value")
    group_id = await services.store(Registry.create_group, full_path, visibility)
    services.caches.clear()
    services.audit(request, principal, "group_create", path=full_path, visibility=visibility)
    row = await services.store(Registry.group, group_id)
    return json_answer(request, group_json(services.base_url(request), row), 201)


async def group_packages(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    """The packages of every project below the group that the principal may read."""
    page, per_page = page_args(request)
    rows, total = await services.run_db(Registry.packages_of_projects, allowed.readable,
                                        page, per_page)
    set_page_headers(request, page, per_page, total, services.base_url(request))
    return json_answer(request, [
        {**package_json(row, row["project_path"]), "project_id": row["project_id"],
         "project_path": row["project_path"]} for row in rows])


group_members = Members("group_members")
group_deploy_tokens = DeployTokens("group")
