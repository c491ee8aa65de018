"""Who may do what: principal x visibility x role x scope -> read / write / delete.

Pure rules, no I/O. GitLab's model: public projects are readable by anyone, internal ones
by any signed-in user, private ones by members; reporter reads, developer also uploads,
maintainer also deletes, yanks and changes settings; admins may do everything their token's
scopes allow. A deploy token belongs to one project and never reaches any other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

VISIBILITIES = ("private", "internal", "public")


class Role(enum.IntEnum):
    """GitLab's roles, valued as its access levels. For the package registry a guest is no
    member at all (reads public and internal projects only, GitLab's permission table),
    and an owner may what a maintainer may (and, on the REST API, delete the project)."""

    guest = 10
    reporter = 20
    developer = 30
    maintainer = 40
    owner = 50

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(
                f"unknown role {name!r}; roles: guest, reporter, developer, maintainer, owner"
            ) from None

    @classmethod
    def from_access_level(cls, level: int) -> Role:
        try:
            return cls(level)
        except ValueError:
            raise ValueError(f"access_level {level} is not one of GitLab's: 10 (guest), "
                             "20 (reporter), 30 (developer), 40 (maintainer), 50 (owner)") from None


class Action(enum.Enum):
    read = "read"
    write = "write"
    delete = "delete"


READ_SCOPES = frozenset({"api", "read_api", "read_package_registry"})
WRITE_SCOPES = frozenset({"api", "write_package_registry"})
# Deleting and yanking are registry writes too, done by maintainers.
DELETE_SCOPES = WRITE_SCOPES

_SCOPES_FOR = {Action.read: READ_SCOPES, Action.write: WRITE_SCOPES, Action.delete: DELETE_SCOPES}
_ROLE_FOR = {
    Action.read: Role.reporter, Action.write: Role.developer, Action.delete: Role.maintainer
}


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: a user through a personal token, or a deploy token."""

    name: str
    scopes: frozenset[str]
    user_id: int | None = None
    is_admin: bool = False
    deploy_project_id: int | None = None
    token_id: int | None = None
    expires_at: str | None = None  # YYYY-MM-DD: the token stops working at 00:00 UTC
    deploy_group_id: int | None = None  # a group deploy token: every project below it

    @property
    def is_deploy_token(self) -> bool:
        return self.deploy_project_id is not None or self.deploy_group_id is not None


@dataclass(frozen=True)
class ProjectAccess:
    """What the rules need to know about a project and the principal's place in it."""

    project_id: int
    visibility: str
    role: Role | None  # the principal's highest role, direct or through a group; None: none
    group_ids: tuple[int, ...] = ()  # the project's group and that group's ancestors


def may(principal: Principal | None, project: ProjectAccess, action: Action) -> bool:
    """May principal (None: anonymous) perform action on project?"""
    if action is Action.read and project.visibility == "public":
        return True
    if principal is None:
        return False
    if not principal.scopes & _SCOPES_FOR[action]:
        return False
    if principal.is_deploy_token:
        # Deploy tokens act within their own project (or their group's projects) only, and
        # never delete.
        return action is not Action.delete and (
            principal.deploy_project_id == project.project_id
            or (principal.deploy_group_id is not None
                and principal.deploy_group_id in project.group_ids))
    if principal.is_admin:
        return True
    if action is Action.read and project.visibility == "internal":
        return True
    return project.role is not None and project.role >= _ROLE_FOR[action]


class Refusal(enum.Enum):
    """Why a request may not go on, as GitLab answers it (SPEC.md, "Authentication")."""

    unauthorized = 401  # anonymous, where the project is not anonymously readable or missing
    forbidden = 403  # the principal may read the project, not do this
    not_found = 404  # the principal may not even read it, or it does not exist


def refusal(
    principal: Principal | None, access: ProjectAccess | None, action: Action
) -> Refusal | None:
    """None if principal may do action on the project (access None: no such project);
    else the one answer every lane gives."""
    if access is None:
        return decide(principal, False, False, action)
    return decide(principal, may(principal, access, action),
                  action is not Action.read and may(principal, access, Action.read), action)


def decide(principal: Principal | None, allowed: bool, readable: bool,
           action: Action) -> Refusal | None:
    """The one table of refusals, for projects and groups alike: what is allowed goes on;
    anonymous is asked to sign in; who may read but not do this is forbidden; anything
    else (no read access, or nothing there) looks exactly like a missing thing."""
    if allowed:
        return None
    if principal is None:
        return Refusal.unauthorized
    if readable:
        return Refusal.forbidden
    return Refusal.not_found


# The REST API's endpoints about accounts (users, tokens): GitLab's api scope does
# anything, read_api reads; package-registry scopes and deploy tokens reach none of them.
_ACCOUNT_SCOPES = {Action.read: frozenset({"api", "read_api"}),
                   Action.write: frozenset({"api"}), Action.delete: frozenset({"api"})}


def account_refusal(principal: Principal | None, action: Action,
                    admin: bool) -> Refusal | None:
    """None if principal may use an account endpoint (admin: one for administrators)."""
    if principal is None or principal.is_deploy_token:
        return Refusal.unauthorized
    if not principal.scopes & _ACCOUNT_SCOPES[action]:
        return Refusal.forbidden
    if admin and not principal.is_admin:
        return Refusal.forbidden
    return None


def why_account_forbidden(principal: Principal, action: Action) -> str:
    needed = _ACCOUNT_SCOPES[action]
    if not principal.scopes & needed:
        return (f"insufficient_scope: the token's scopes ({', '.join(sorted(principal.scopes))})"
                f" do not allow this; it needs {' or '.join(sorted(needed))}")
    return "this needs an administrator"


@dataclass(frozen=True)
class GroupAccess:
    """What the rules need to know about a group and the principal's place in it."""

    group_id: int
    visibility: str
    role: Role | None  # through the group or one of its ancestors
    lineage: tuple[int, ...]  # the group and its ancestors
    readable_projects: tuple[int, ...]  # the projects below it that the principal may read


def may_read_group(principal: Principal | None, group: GroupAccess) -> bool:
    """GitLab's read_group: public groups for anyone; internal ones for anyone signed in;
    private ones for members (direct or inherited), admins, the group's deploy tokens, and
    whoever may read a project below it (anonymous too, where such a project is public:
    pypid lets a public project live in a private group, GitLab does not)."""
    if group.visibility == "public" or group.readable_projects:
        return True
    if principal is None or not principal.scopes & READ_SCOPES:
        return False
    if principal.is_deploy_token:
        return principal.deploy_group_id is not None and principal.deploy_group_id in group.lineage
    return principal.is_admin or group.visibility == "internal" or group.role is not None


def may_manage_group(principal: Principal | None, group: GroupAccess) -> bool:
    """Change a group's members and deploy tokens, make subgroups and projects in it:
    its maintainers and owners (direct or inherited) and admins, with an api token."""
    if principal is None or principal.is_deploy_token or "api" not in principal.scopes:
        return False
    return principal.is_admin or (group.role is not None and group.role >= Role.maintainer)


_ROLE_NAMES = {Action.write: "developer", Action.delete: "maintainer", Action.read: "reporter"}


def why_forbidden(principal: Principal, action: Action) -> str:
    """What keeps a principal who may read a project from doing action (for the 403)."""
    needed = _SCOPES_FOR[action]
    if not principal.scopes & needed:
        return (f"the token's scopes ({', '.join(sorted(principal.scopes))}) do not allow "
                f"this; it needs {' or '.join(sorted(needed))}")
    if principal.is_deploy_token:
        return "deploy tokens may not delete or change settings"
    return f"this needs the {_ROLE_NAMES[action]} role or higher in the project"
