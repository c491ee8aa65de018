"""The group index: GitLab's read-only PyPI endpoints of a group, over every project in
the group and its subgroups that the principal may read.

A name held by several of those projects is shown from one of them: the project that
published it first. GitLab shows the most recently published package of a name and version
(docs: "If multiple packages have the same name and version, the most recently-published
package is retrieved"), which lets any developer of any project in the group shadow a
release of another project by publishing the same name later: a dependency confusion inside
the group. Here the first publisher keeps the name; what other projects publish under it
is left out of the group index (and stays installable from their own project index).

A name no readable project of the group has may come from the group's upstream
(pypid.web.proxied), unless a project anywhere in its top-level group has it.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from pypid.store.registry import Registry, Row
from pypid.web import proxied, pypi, simple
from pypid.web.gate import Allowed
from pypid.web.services import Services


def _group(allowed: Allowed) -> Row:
    assert allowed.group is not None
    return allowed.group


def _files_base(services: Services, group: Row) -> str:
    if services.public_url:
        return f"{services.public_url}/api/v4/groups/{group['id']}/-/packages/pypi/files"
    return "../../files"


async def simple_root(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    redirected = pypi.root_redirect(request)
    if redirected is not None:
        return redirected
    return await _page(services, request, allowed, None)


def simple_root_from_memory(
    services: Services, request: IRequest, allowed: Allowed
) -> bytes | int | None:
    return pypi.page_from_memory(request, services.caches.for_group(_group(allowed)["id"]),
                                 None, allowed.readable)


async def simple_package(
    services: Services, request: IRequest, allowed: Allowed, name: str
) -> bytes:
    normalized = pypi.normalized_or_redirect(request, name)
    if isinstance(normalized, bytes):
        return normalized
    return await _page(services, request, allowed, normalized)


def simple_package_from_memory(
    services: Services, request: IRequest, allowed: Allowed, name: str
) -> bytes | int | None:
    return pypi.page_from_memory(request, services.caches.for_group(_group(allowed)["id"]),
                                 name, allowed.readable)


def _index(services: Services, group: Row) -> proxied.Proxied:
    return proxied.Proxied(services, proxied.Index(
        services.caches.group_table(group["id"]), _files_base(services, group),
        group["lineage"][-1], lambda: services.run_db(Registry.group_layers, group["id"])))


async def _page(
    services: Services, request: IRequest, allowed: Allowed, name: str | None
) -> bytes:
    group = _group(allowed)
    return await pypi.cached_page(
        services, request, services.caches.group_table(group["id"]), name, allowed.readable,
        lambda chosen: services.run_db(simple.render_group_from_registry, allowed.readable,
                                       name, chosen, _files_base(services, group)),
        _index(services, group))


async def file(
    services: Services, request: IRequest, allowed: Allowed, sha256: str, filename: str
) -> bytes | Resource:
    group = _group(allowed)
    return await pypi.cached_file(
        services, request, services.caches.group_table(group["id"]), allowed.readable,
        lambda digest, name: services.run_db(Registry.group_file_by_name, allowed.readable,
                                             digest, name), sha256, filename,
        _index(services, group))


def file_from_memory(
    services: Services, request: IRequest, allowed: Allowed, sha256: str, filename: str
) -> bytes | int | None:
    return pypi.file_in_memory(services, request,
                               services.caches.for_group(_group(allowed)["id"]),
                               allowed.readable, sha256, filename)
