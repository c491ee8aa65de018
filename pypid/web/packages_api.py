"""GitLab's packages API for a project: list, show, files, delete, yank, settings.

Handlers run after the gate (the route table names the action each needs).
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from pypid.blobs.guard import BlobGuard
from pypid.domain.access import Principal
from pypid.interfaces import IBlobStore
from pypid.publish import remove_unreferenced
from pypid.store.registry import PYPI_METADATA_FIELDS, Registry, Row
from pypid.web.errors import HTTPError
from pypid.web.gate import Allowed
from pypid.web.rest import Fields, bad_request, page_args, paginated, set_page_headers
from pypid.web.services import Services, json_answer, json_body

log = Logger()
# GitLab's package states; pypid's packages are all in the default one.
STATUSES = ("default", "hidden", "processing", "error", "pending_destruction", "deprecated")


def package_json(row: Row, project_path: str) -> dict[str, Any]:
    return {"id": row["id"], "name": row["display_name"], "version": row["version"],
            "package_type": "pypi", "status": "default", "created_at": row["created_at"],
            "tags": [], "pipelines": [],
            "_links": {"web_path": f"/{project_path}/-/packages/{row['id']}"}}


def _file_json(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "package_id": row["package_id"],
            "created_at": row["upload_time"], "file_name": row["filename"],
            "size": row["size"], "file_md5": row["md5"], "file_sha1": None,
            "file_sha256": row["sha256"], "pipelines": [],
            "yanked": bool(row["yanked"]), "yanked_reason": row["yanked_reason"]}


def _settings_json(project: Row) -> dict[str, Any]:
    return {"pypi_duplicates_allowed": project["duplicates"] == "allow"}


def _project(allowed: Allowed) -> Row:
    assert allowed.project is not None
    return allowed.project


async def list_packages(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project = _project(allowed)
    page, per_page = page_args(request)
    fields = Fields(request)
    package_type = fields.text("package_type") or "pypi"
    name = fields.text("package_name")
    order_by = fields.text("order_by") or "created_at"
    if order_by not in ("created_at", "name", "version", "type"):
        raise bad_request("order_by does not have a valid value")
    sort = fields.text("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise bad_request("sort does not have a valid value")
    status = fields.text("status") or "default"
    if status not in STATUSES:
        raise bad_request("status does not have a valid value")
    fields.boolean("include_versionless")  # checked; every PyPI package has a version
    if package_type != "pypi" or status != "default":
        rows, total = [], 0  # pypid keeps PyPI packages only, all in GitLab's default state
    else:
        rows, total = await services.run_db(
            Registry.list_packages, project["id"], name or None, page, per_page, order_by,
            sort, fields.text("package_version"))
    set_page_headers(request, page, per_page, total, services.base_url(request))
    return json_answer(request, [package_json(row, project["path"]) for row in rows])


async def get_package(
    services: Services, request: IRequest, allowed: Allowed, package_id: int
) -> bytes:
    row = await services.store(Registry.package, _project(allowed)["id"], package_id)
    metadata = await services.run_db(Registry.pypi_metadata, package_id)
    document = package_json(row, _project(allowed)["path"])
    document["pypi_metadata"] = metadata or dict.fromkeys(PYPI_METADATA_FIELDS)
    return json_answer(request, document)


async def package_files(
    services: Services, request: IRequest, allowed: Allowed, package_id: int
) -> bytes:
    await services.store(Registry.package, _project(allowed)["id"], package_id)
    rows = await services.run_db(Registry.package_files, package_id)
    page = paginated(request, rows, services.base_url(request))
    return json_answer(request, [_file_json(row) for row in page])


async def delete_package(
    services: Services, request: IRequest, allowed: Allowed, package_id: int
) -> bytes:
    await remove_package(services, request, _project(allowed), allowed.principal, package_id)
    request.setResponseCode(204)
    return b""


async def remove_package(services: Services, request: IRequest, project: Row,
                         principal: Principal | None, package_id: int) -> Row:
    """Delete a package (a name and version) and its files: the API's and the pages'."""
    package: Row = await services.store(
        _delete_package, services.blobs, services.publisher.guard, project["id"], package_id,
        principal)
    services.caches.project_changed(project["id"])
    log.info("{user} deleted package {name} {version} of project {project}",
             user=principal.name if principal else None, name=package["name"],
             version=package["version"], project=project["path"])
    services.audit(request, principal, "delete_package", project=project["path"],
                   package=package["name"], version=package["version"])
    return package


async def delete_file(
    services: Services, request: IRequest, allowed: Allowed, package_id: int, file_id: int
) -> bytes:
    await remove_file(services, request, _project(allowed), allowed.principal, package_id,
                      file_id)
    request.setResponseCode(204)
    return b""


async def remove_file(services: Services, request: IRequest, project: Row,
                      principal: Principal | None, package_id: int, file_id: int) -> Row:
    """Delete one file of a package: the API's and the pages'."""
    row: Row = await services.store(
        _delete_file, services.blobs, services.publisher.guard, project["id"], package_id,
        file_id, principal)
    services.caches.project_changed(project["id"])
    log.info("{user} deleted file {filename} of project {project}",
             user=principal.name if principal else None, filename=row["filename"],
             project=project["path"])
    services.audit(request, principal, "delete_file", project=project["path"],
                   filename=row["filename"], sha256=row["sha256"])
    return row


async def yank(
    services: Services, request: IRequest, allowed: Allowed, package_id: int
) -> bytes:
    return await _set_yanked(services, request, allowed, package_id, True)


async def unyank(
    services: Services, request: IRequest, allowed: Allowed, package_id: int
) -> bytes:
    return await _set_yanked(services, request, allowed, package_id, False)


async def _set_yanked(
    services: Services, request: IRequest, allowed: Allowed, package_id: int, yanked: bool
) -> bytes:
    options = json_body(request)
    reason, filename = options.get("reason"), options.get("file_name")
    if reason is not None and not isinstance(reason, str):
        raise HTTPError(400, "Bad request - reason must be a string")
    if filename is not None and not isinstance(filename, str):
        raise HTTPError(400, "Bad request - file_name must be a string")
    await change_yank(services, request, _project(allowed), allowed.principal, package_id,
                      yanked, reason, filename)
    rows = await services.run_db(Registry.package_files, package_id)
    page = paginated(request, rows, services.base_url(request))
    return json_answer(request, [_file_json(row) for row in page])


async def change_yank(services: Services, request: IRequest, project: Row,
                      principal: Principal | None, package_id: int, yanked: bool,
                      reason: str | None, filename: str | None = None) -> Row:
    """Yank (PEP 592) or unyank a release or one of its files: the API's and the pages'."""
    package: Row = await services.store(Registry.package, project["id"], package_id)
    await services.store(Registry.set_yanked, project["id"], package["name"],
                         package["version"], filename, yanked, reason)
    services.caches.project_changed(project["id"])
    services.audit(request, principal, "yank" if yanked else "unyank",
                   project=project["path"], package=package["name"],
                   version=package["version"], file=filename, reason=reason)
    return package


async def get_settings(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    return json_answer(request, _settings_json(_project(allowed)))


async def put_settings(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project, principal = _project(allowed), allowed.principal
    duplicates_allowed = json_body(request).get("pypi_duplicates_allowed")
    if not isinstance(duplicates_allowed, bool):
        raise HTTPError(400, "Bad request - pypi_duplicates_allowed must be true or false")
    project = await services.store(
        Registry.set_duplicates, project["id"], "allow" if duplicates_allowed else "deny")
    services.caches.clear()  # the project row itself is cached under every reference
    services.audit(request, principal, "settings", project=project["path"],
                   duplicates=project["duplicates"])
    return json_answer(request, _settings_json(project))


def _check_delete(registry: Registry, project_id: int, package_id: int,
                  principal: Principal | None) -> None:
    """A package protection rule may keep the principal from deleting the package."""
    package = registry.package(project_id, package_id)
    registry.check_protection(registry.project(project_id), package["name"], principal,
                              "delete")


def _delete_package(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard, project_id: int, package_id: int,
    principal: Principal | None,
) -> Row:
    _check_delete(registry, project_id, package_id, principal)
    package, keys = registry.delete_package(project_id, package_id)
    remove_unreferenced(registry, blobs, guard, keys)
    return package


def _delete_file(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard, project_id: int, package_id: int,
    file_id: int, principal: Principal | None,
) -> Row:
    _check_delete(registry, project_id, package_id, principal)
    row, keys = registry.delete_file(project_id, package_id, file_id)
    remove_unreferenced(registry, blobs, guard, keys)
    return row
