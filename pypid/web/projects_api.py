"""GitLab's REST API for projects, their members and deploy tokens (doc/api/projects.md,
doc/api/members.md, doc/api/deploy_tokens.md).

The gate has checked the project and the action (read: reporters; delete, which stands for
"maintain": maintainers). What depends on the request's own fields (who may grant owner,
who may delete a project) is decided here.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.web.iweb import IRequest

from pypid.domain.access import Principal, Role
from pypid.store.registry import Registry, Row
from pypid.web.errors import HTTPError
from pypid.web.gate import Allowed
from pypid.web.rest import Fields, bad_request, paginated
from pypid.web.services import Services, json_answer
from pypid.web.users_api import NO_CONTENT, user_json

VISIBILITIES = ("private", "internal", "public")


def _project(allowed: Allowed) -> Row:
    assert allowed.project is not None
    return allowed.project


def _principal(allowed: Allowed) -> Principal:
    assert allowed.principal is not None
    return allowed.principal


def namespace_json(base: str, group: Row) -> dict[str, Any]:
    return {"id": group["id"], "name": group["name"], "path": group["name"],
            "kind": "group", "full_path": group["path"], "parent_id": group["parent_id"],
            "avatar_url": None, "web_url": f"{base}/groups/{group['path']}"}


def project_json(base: str, row: Row, group: Row) -> dict[str, Any]:
    api = f"{base}/api/v4/projects/{row['id']}"
    return {
        "id": row["id"], "name": row["name"], "path": row["name"],
        "path_with_namespace": row["path"],
        "name_with_namespace": row["path"].replace("/", " / "),
        "description": row["description"], "visibility": row["visibility"],
        "created_at": row["created_at"], "last_activity_at": row["created_at"],
        "web_url": f"{base}/{row['path']}", "namespace": namespace_json(base, group),
        "packages_enabled": bool(row["packages_enabled"]),
        "default_branch": None, "archived": False, "empty_repo": True,
        "_links": {"self": api, "members": f"{api}/members"},
    }


def _documents(registry: Registry, rows: list[Row], base: str) -> list[dict[str, Any]]:
    """Database thread: projects as GitLab shows them, with their namespaces."""
    groups: dict[int, Row] = {}
    documents = []
    for row in rows:
        if row["group_id"] not in groups:
            groups[row["group_id"]] = registry.group(row["group_id"])
        documents.append(project_json(base, row, groups[row["group_id"]]))
    return documents


def _changed(services: Services, request: IRequest, principal: Principal | None,
             action: str, **details: Any) -> None:
    services.caches.clear()
    services.audit(request, principal, action, **details)


# -- projects -------------------------------------------------------------------------------

async def list_projects(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    fields = Fields(request)
    rows = await services.run_db(Registry.readable_projects, allowed.principal,
                                 fields.text("search"))
    visibility = fields.text("visibility")
    if visibility is not None:
        if visibility not in VISIBILITIES:
            raise bad_request("visibility does not have a valid value")
        rows = [row for row in rows if row["visibility"] == visibility]
    order_by = fields.text("order_by") or "created_at"
    if order_by not in ("id", "name", "path", "created_at", "last_activity_at"):
        raise bad_request("order_by does not have a valid value")
    key = {"name": "name", "path": "path"}.get(order_by, "id")
    sort = fields.text("sort") or "desc"
    if sort not in ("asc", "desc"):
        raise bad_request("sort does not have a valid value")
    rows.sort(key=lambda row: row[key], reverse=sort == "desc")
    page = list(paginated(request, rows, services.base_url(request)))
    documents = await services.run_db(_documents, page, services.base_url(request))
    return json_answer(request, documents)


async def get_project(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project = await services.store(Registry.project, _project(allowed)["id"])
    documents = await services.run_db(_documents, [project], services.base_url(request))
    return json_answer(request, documents[0])


def _slug(name: str) -> str:
    # GitLab's path from a name: lower case, runs of other characters as one dash.
    return re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-.") or name


async def create_project(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    name = fields.text("name")
    path = fields.text("path") or (_slug(name) if name else None)
    if path is None:
        raise bad_request("name or path is missing")
    namespace_id = fields.integer("namespace_id")
    namespace = fields.text("namespace_path") or fields.text("namespace")
    if namespace_id is None and namespace is None:
        raise bad_request("namespace_id is missing (pypid has no personal namespaces: "
                          "create projects in a group)")
    group = await services.store(Registry.group, namespace_id if namespace_id is not None
                                 else namespace)
    if not principal.is_admin:
        access = await services.run_db(Registry.group_access, group, principal)
        # GitLab's default project_creation_level: developers and up create projects.
        if access.role is None or access.role < Role.developer:
            raise HTTPError(403, "Forbidden - creating projects in this group needs the "
                                 "developer role or higher in it")
    visibility = fields.text("visibility") or "private"
    if visibility not in VISIBILITIES:
        raise bad_request("visibility does not have a valid value")
    project_id = await services.store(Registry.create_project, f"{group['path']}/{path}",
                                      visibility)
    await services.store(Registry.update_project, project_id, None,
                         fields.text("description", limit=2000),
                         fields.boolean("packages_enabled"))
    _changed(services, request, principal, "project_create", path=f"{group['path']}/{path}",
             visibility=visibility)
    project = await services.store(Registry.project, project_id)
    documents = await services.run_db(_documents, [project], services.base_url(request))
    return json_answer(request, documents[0], 201)


async def update_project(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project = _project(allowed)
    fields = Fields(request)
    for renamed in ("name", "path"):
        value = fields.text(renamed)
        if value is not None and value != project["name"]:
            raise bad_request(f"changing a project's {renamed} is not supported")
    visibility = fields.text("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise bad_request("visibility does not have a valid value")
    packages_enabled = fields.boolean("packages_enabled")
    row = await services.store(Registry.update_project, project["id"], visibility,
                               fields.text("description", limit=2000), packages_enabled)
    _changed(services, request, allowed.principal, "project_update", project=project["path"],
             visibility=visibility, packages_enabled=packages_enabled)
    documents = await services.run_db(_documents, [row], services.base_url(request))
    return json_answer(request, documents[0])


async def delete_project(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project, principal = _project(allowed), _principal(allowed)
    if not principal.is_admin:
        access = await services.run_db(Registry.project_access, project, principal)
        if access.role is None or access.role < Role.owner:
            raise HTTPError(403, "Forbidden - deleting a project needs its owner or an "
                                 "administrator")
    await services.store(Registry.delete_project, project["id"])
    _changed(services, request, principal, "project_delete", project=project["path"])
    return json_answer(request, {"message": "202 Accepted"}, 202)


# -- members (of a project or, through groups_api, of a group) ------------------------------

def member_json(base: str, row: Row) -> dict[str, Any]:
    return {**user_json(base, row, full=False), "access_level": int(Role[row["role"]]),
            "expires_at": None, "membership_state": "active"}


def _access_level(fields: Fields) -> Role:
    level = fields.integer("access_level", required=True)
    assert level is not None
    try:
        return Role.from_access_level(level)
    except ValueError as error:
        raise bad_request(str(error)) from None


async def grantor_may(services: Services, principal: Principal, role: Role,
                      own: Role | None) -> None:
    """Only owners (and administrators) grant or change the owner role (GitLab's rule)."""
    if role is Role.owner and not principal.is_admin and (own is None or own < Role.owner):
        raise HTTPError(403, "Forbidden - only owners may make owners")


class Members:
    """The members endpoints, for projects (table members) and groups (group_members)."""

    def __init__(self, table: str) -> None:
        self.table = table

    def _owner(self, allowed: Allowed) -> Row:
        owner = allowed.project if self.table == "members" else allowed.group
        assert owner is not None
        return owner

    async def _own_role(self, services: Services, allowed: Allowed) -> Role | None:
        principal = _principal(allowed)
        if self.table == "members":
            access = await services.run_db(Registry.project_access, self._owner(allowed),
                                           principal)
        else:
            access = await services.run_db(Registry.group_access, self._owner(allowed),
                                           principal)
        return access.role  # type: ignore[no-any-return]

    async def list(self, services: Services, request: IRequest, allowed: Allowed) -> bytes:
        rows = await services.run_db(Registry.members_of, self.table,
                                     self._owner(allowed)["id"])
        base = services.base_url(request)
        page = paginated(request, rows, base)
        return json_answer(request, [member_json(base, row) for row in page])

    async def get(self, services: Services, request: IRequest, allowed: Allowed,
                  user_id: int) -> bytes:
        row = await services.store(Registry.member_of, self.table, self._owner(allowed)["id"],
                                   user_id)
        return json_answer(request, member_json(services.base_url(request), row))

    async def add(self, services: Services, request: IRequest, allowed: Allowed) -> bytes:
        fields = Fields(request)
        user_id = fields.integer("user_id", required=True)
        assert user_id is not None
        role = _access_level(fields)
        owner = self._owner(allowed)
        await grantor_may(services, _principal(allowed), role,
                          await self._own_role(services, allowed))
        user = await services.store(Registry.user_by_id, user_id)
        existing = await services.run_db(Registry.members_of, self.table, owner["id"])
        if any(row["id"] == user_id for row in existing):
            raise HTTPError(409, "Conflict - Member already exists")
        await self._set(services, request, allowed, user["username"], role, "member_add")
        row = await services.store(Registry.member_of, self.table, owner["id"], user_id)
        return json_answer(request, member_json(services.base_url(request), row), 201)

    async def edit(self, services: Services, request: IRequest, allowed: Allowed,
                   user_id: int) -> bytes:
        role = _access_level(Fields(request))
        owner = self._owner(allowed)
        current = await services.store(Registry.member_of, self.table, owner["id"], user_id)
        own = await self._own_role(services, allowed)
        await grantor_may(services, _principal(allowed), role, own)
        await grantor_may(services, _principal(allowed), Role[current["role"]], own)
        await self._set(services, request, allowed, current["username"], role, "member_add")
        row = await services.store(Registry.member_of, self.table, owner["id"], user_id)
        return json_answer(request, member_json(services.base_url(request), row))

    async def remove(self, services: Services, request: IRequest, allowed: Allowed,
                     user_id: int) -> bytes:
        owner = self._owner(allowed)
        current = await services.store(Registry.member_of, self.table, owner["id"], user_id)
        await grantor_may(services, _principal(allowed), Role[current["role"]],
                          await self._own_role(services, allowed))
        remove = Registry.remove_member if self.table == "members" \
            else Registry.remove_group_member
        await services.store(remove, owner["id"], current["username"])
        _changed(services, request, allowed.principal, "member_remove"
                 if self.table == "members" else "group_member_remove",
                 path=owner["path"], user=current["username"])
        request.setResponseCode(204)
        return NO_CONTENT

    async def _set(self, services: Services, request: IRequest, allowed: Allowed,
                   username: str, role: Role, action: str) -> None:
        owner = self._owner(allowed)
        add = Registry.add_member if self.table == "members" else Registry.add_group_member
        await services.store(add, owner["id"], username, role.name)
        _changed(services, request, allowed.principal,
                 action if self.table == "members" else "group_" + action,
                 path=owner["path"], user=username, role=role.name)


project_members = Members("members")


# -- deploy tokens --------------------------------------------------------------------------

def deploy_token_json(row: Row, secret: str | None = None) -> dict[str, Any]:
    document = {"id": row["id"], "name": row["name"], "username": row["username"],
                "expires_at": row["expires_at"], "scopes": row["scopes"],
                "revoked": row["revoked"], "expired": row["expired"]}
    if secret is not None:
        document["token"] = secret
    return document


class DeployTokens:
    """Deploy token endpoints, for projects or groups (maintainers)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "project" or "group"

    def _ids(self, allowed: Allowed) -> tuple[int | None, int | None]:
        if self.kind == "project":
            return _project(allowed)["id"], None
        assert allowed.group is not None
        return None, allowed.group["id"]

    async def list(self, services: Services, request: IRequest, allowed: Allowed) -> bytes:
        rows = await services.run_db(Registry.deploy_token_rows, *self._ids(allowed))
        page = paginated(request, rows, services.base_url(request))
        return json_answer(request, [deploy_token_json(row)
                                     for row in page])

    async def create(self, services: Services, request: IRequest, allowed: Allowed) -> bytes:
        fields = Fields(request)
        name = fields.text("name", required=True)
        scopes = fields.strings("scopes", required=True)
        assert scopes is not None
        if not scopes:
            raise bad_request("scopes is empty")
        project_id, group_id = self._ids(allowed)
        create = Registry.create_deploy_token if project_id is not None \
            else Registry.create_group_deploy_token
        username, secret = await services.store(
            create, project_id if project_id is not None else group_id, ",".join(scopes),
            fields.text("username"), name, fields.text("expires_at"))
        rows = await services.run_db(Registry.deploy_token_rows, project_id, group_id)
        row = next(row for row in rows if row["username"] == username)
        _changed(services, request, allowed.principal, f"{self.kind}_deploy_token_create",
                 username=username, scopes=scopes)
        return json_answer(request, deploy_token_json(row, secret), 201)

    async def revoke(self, services: Services, request: IRequest, allowed: Allowed,
                     token_id: int) -> bytes:
        row = await services.store(Registry.revoke_deploy_token, token_id, *self._ids(allowed))
        _changed(services, request, allowed.principal, f"{self.kind}_deploy_token_revoke",
                 username=row["username"])
        request.setResponseCode(204)
        return NO_CONTENT


project_deploy_tokens = DeployTokens("project")
