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
    reporter = 20
    developer = 30
    maintainer = 40

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(
                f"unknown role {name!r}; roles: reporter, developer, maintainer"
            ) from None


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

    @property
    def is_deploy_token(self) -> bool:
        return self.deploy_project_id is not None


@dataclass(frozen=True)
class ProjectAccess:
    """What the rules need to know about a project and the principal's place in it."""

    project_id: int
    visibility: str
    role: Role | None  # the principal's membership role, None if not a member


def may(principal: Principal | None, project: ProjectAccess, action: Action) -> bool:
    """May principal (None: anonymous) perform action on project?"""
    if action is Action.read and project.visibility == "public":
        return True
    if principal is None:
        return False
    if not principal.scopes & _SCOPES_FOR[action]:
        return False
    if principal.is_deploy_token:
        # Deploy tokens act within their own project only, and never delete.
        return principal.deploy_project_id == project.project_id and action is not Action.delete
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
    else the one answer every lane gives. A project the principal may not read looks
    exactly like a missing one."""
    if access is not None and may(principal, access, action):
        return None
    if principal is None:
        return Refusal.unauthorized
    if access is not None and action is not Action.read and may(principal, access, Action.read):
        return Refusal.forbidden
    return Refusal.not_found


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
