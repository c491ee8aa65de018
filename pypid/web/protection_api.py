"""GitLab's package protection rules API (doc/api/project_packages_protection_rules.md):
list, create, change (PATCH) and delete a project's rules; maintainers only (the route
table's Action.delete). The rules themselves are pypid.domain.protection."""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from pypid.store.registry import Registry, Row
from pypid.store.upstream_rows import UNCHANGED
from pypid.web.gate import Allowed
from pypid.web.rest import Fields, bad_request, paginated
from pypid.web.services import Services, json_answer
from pypid.web.users_api import NO_CONTENT

FIELDS = ("package_name_pattern", "minimum_access_level_for_push",
          "minimum_access_level_for_delete")


def rule_json(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "project_id": row["project_id"],
            "package_name_pattern": row["package_name_pattern"],
            "package_type": row["package_type"],
            "minimum_access_level_for_push": row["minimum_access_level_for_push"],
            "minimum_access_level_for_delete": row["minimum_access_level_for_delete"]}


def _project_id(allowed: Allowed) -> int:
    assert allowed.project is not None
    return int(allowed.project["id"])


def _values(fields: Fields, creating: bool) -> list[Any]:
    package_type = fields.text("package_type")
    if package_type not in (None, "pypi"):
        raise bad_request("package_type does not have a valid value (pypid keeps pypi only)")
    if creating and package_type is None:
        raise bad_request("package_type is missing")
    values: list[Any] = []
    for name in FIELDS:
        value = fields.text(name, required=creating and name == "package_name_pattern")
        values.append(value if value is not None or creating or name in fields
                      else UNCHANGED)
    return values


async def list_rules(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    rows = await services.run_db(Registry.protection_rules, _project_id(allowed))
    page = paginated(request, rows, services.base_url(request))
    return json_answer(request, [rule_json(row) for row in page])


async def create_rule(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    values = _values(Fields(request), creating=True)
    row = await services.store(Registry.set_protection_rule, _project_id(allowed), None,
                               *values)
    services.audit(request, allowed.principal, "protection_rule_create",
                   project_id=row["project_id"], **dict(zip(FIELDS, values, strict=True)))
    return json_answer(request, rule_json(row), 201)


async def update_rule(services: Services, request: IRequest, allowed: Allowed,
                      rule_id: int) -> bytes:
    values = _values(Fields(request), creating=False)
    row = await services.store(Registry.set_protection_rule, _project_id(allowed), rule_id,
                               *values)
    services.audit(request, allowed.principal, "protection_rule_update", rule_id=rule_id,
                   **rule_json(row))
    return json_answer(request, rule_json(row))


async def delete_rule(services: Services, request: IRequest, allowed: Allowed,
                      rule_id: int) -> bytes:
    row = await services.store(Registry.delete_protection_rule, _project_id(allowed), rule_id)
    services.audit(request, allowed.principal, "protection_rule_delete", **rule_json(row))
    request.setResponseCode(204)
    return NO_CONTENT
