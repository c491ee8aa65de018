"""The web pages, at GitLab's UI paths: `/` (projects), `/users/sign_in`, a project's
packages (`/<full path>/-/packages`) and one package (`/<full path>/-/packages/<id>`), with
the maintainer's yank, unyank and delete (each delete confirmed on a page of its own).

Pages go through the route table and the gate like every endpoint (a session cookie signs
the visitor in: pypid.web.gate.Gate.session). Templates are Jinja2 with autoescaping on
(pypid.web.pages.render). Every form that changes something carries the session's CSRF
token; the sign-in form, before any session exists, a double-submit cookie's.
"""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Any
from urllib.parse import quote, urlencode

from packaging.version import InvalidVersion, Version
from twisted.web.iweb import IRequest

from pypid.domain.access import Action, Principal, may
from pypid.store.registry import Registry, Row
from pypid.web import packages_api
from pypid.web.errors import HTTPError, reason_phrase
from pypid.web.gate import SESSION_COOKIE, Allowed
from pypid.web.groups_api import readable_groups
from pypid.web.pages import render, snippets
from pypid.web.rest import Fields
from pypid.web.services import Services

PER_PAGE = 50
MAX_CACHED_PAGES = 2000
FORM_CSRF_COOKIE = b"pypid_form_csrf"
SORTS = ("name", "recent", "version")


def _visitor(allowed: Allowed) -> str | None:
    return allowed.principal.name if allowed.principal is not None else None


def _page(services: Services, request: IRequest, allowed: Allowed, template: str,
          code: int = 200, **context: Any) -> bytes:
    request.setResponseCode(code)
    render.security_headers(request)
    return render.page(template, visitor=_visitor(allowed), csrf=allowed.csrf, **context)


def _see_other(request: IRequest, location: str) -> bytes:
    request.setResponseCode(303)
    request.setHeader(b"Location", location.encode("ascii"))
    return b""


def _cookie(services: Services, request: IRequest, name: bytes, value: str,
            max_age: int) -> None:
    """HttpOnly, SameSite=Lax, Secure when the public URL is https, path /."""
    secure = bool(services.public_url and services.public_url.startswith("https:"))
    request.addCookie(  # type: ignore[call-arg]  # IRequest lags twisted.web.http's
        name, value.encode("ascii"), path=b"/", max_age=str(max_age).encode(),
        httpOnly=True, secure=secure, sameSite="lax")


def _check_csrf(allowed: Allowed, fields: Fields) -> None:
    """A change needs a signed-in session and its CSRF token in the form."""
    sent = fields.text("csrf_token") or ""
    if allowed.csrf is None or not hmac.compare_digest(sent.encode(), allowed.csrf.encode()):
        raise HTTPError(403, "Forbidden: the form's CSRF token is missing or wrong; reload "
                             "the page and try again")


def error_page(services: Services, request: IRequest, allowed: Allowed,
               error: HTTPError) -> bytes:
    for name, value in error.headers.items():
        request.setHeader(name, value)
    body = _page(services, request, allowed, "error.html", error.code, status=error.code,
                 message=error.message)
    request.setResponseCode(error.code, reason_phrase(error.message))
    return body


# -- sign in and out ------------------------------------------------------------------------

async def sign_in_form(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    return _sign_in_page(services, request, allowed, None, 200)


def _sign_in_page(services: Services, request: IRequest, allowed: Allowed,
                  error: str | None, code: int) -> bytes:
    form_csrf = secrets.token_urlsafe(24)
    _cookie(services, request, FORM_CSRF_COOKIE, form_csrf, 3600)
    return _page(services, request, allowed, "sign_in.html", code, error=error,
                 form_csrf=form_csrf)


async def sign_in(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    fields = Fields(request)
    sent = (fields.text("csrf_token") or "").encode()
    expected = request.getCookie(FORM_CSRF_COOKIE) or b""
    if not expected or not hmac.compare_digest(sent, expected):
        raise HTTPError(403, "Forbidden: the sign-in form's CSRF token is missing or wrong; "
                             "reload the page and try again")
    gate = services.gate
    if gate is not None:
        gate.check_ban(request)  # the form is no way around the sign-in bans
    token = fields.text("token", limit=200) or ""
    principal: Principal | None = await services.run_db(Registry.authenticate, None,
                                                        token.strip())
    if principal is None or principal.is_deploy_token or principal.token_id is None:
        if gate is not None:
            gate.failed_sign_in(request)
        return _sign_in_page(services, request, allowed,
                             "That is not a valid personal access token.", 401)
    secret, _csrf = await services.run_db(Registry.create_session, principal.token_id)
    _cookie(services, request, SESSION_COOKIE, secret, 12 * 3600)
    services.audit(request, principal, "sign_in")
    return _see_other(request, "/")


async def sign_out(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    _check_csrf(allowed, Fields(request))
    secret = request.getCookie(SESSION_COOKIE)
    if secret:
        await services.run_db(Registry.end_session, secret.decode("ascii", "replace"))
    services.caches.clear()  # the session's principal is cached
    _cookie(services, request, SESSION_COOKIE, "", 0)
    services.audit(request, allowed.principal, "sign_out")
    return _see_other(request, "/")


# -- projects -------------------------------------------------------------------------------

def _home_rows(registry: Registry, principal: Principal | None) -> tuple[list[Row], list[Row]]:
    projects = registry.readable_projects(principal)
    counts = registry.package_counts([row["id"] for row in projects])
    return ([{"path": row["path"], "visibility": row["visibility"],
              "packages": counts.get(row["id"], 0)} for row in projects],
            readable_groups(registry, principal, None))


async def home(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    projects, groups = await services.run_db(_home_rows, allowed.principal)
    return _page(services, request, allowed, "home.html", projects=projects, groups=groups)


# -- a project's packages -------------------------------------------------------------------

def _version(text: str) -> Any:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _latest_per_name(rows: list[Row]) -> list[Row]:
    """Database thread: one entry per package name, its latest version (PEP 440)."""
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    summaries = []
    for name, versions in by_name.items():
        latest = max(versions, key=lambda row: _version(row["version"]))
        summaries.append({"name": name, "display_name": latest["display_name"],
                          "id": latest["id"], "version": latest["version"],
                          "uploaded": max(row["uploaded"] for row in versions)})
    return summaries


def _listing(registry: Registry, project: Row, search: str, sort: str, page: int) -> bytes:
    """Database thread: the rendered list of one page of packages (kept in the project's
    cache until the project changes)."""
    rows = _latest_per_name(registry.package_summaries(project["id"]))
    if search:
        needle = search.lower()
        rows = [row for row in rows if needle in row["display_name"].lower()]
    if sort == "recent":
        rows.sort(key=lambda row: row["uploaded"], reverse=True)
    elif sort == "version":
        rows.sort(key=lambda row: _version(row["version"]), reverse=True)
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    page = min(page, pages)
    shown = rows[(page - 1) * PER_PAGE:page * PER_PAGE]

    def query(number: int) -> str:
        return urlencode({"search": search, "sort": sort, "page": number})

    return render.page("listing.html", packages=shown, page=page, pages=pages,
                           total=len(rows), search=search, query=query,
                           base=f"/{quote(project['path'])}/-/packages")


def _query(request: IRequest) -> tuple[str, str, int] | None:
    """(search, sort, page) of a packages page's query; None where a value is unusable
    (the handler answers those: its Fields give the reasons)."""
    def first(name: bytes) -> str:
        values = request.args.get(name)
        return values[0].decode("utf-8", "replace") if values else ""

    search, sort, page = first(b"search"), first(b"sort") or "name", first(b"page") or "1"
    if len(search) > 100 or any(ord(char) < 32 for char in search):
        return None
    if sort not in SORTS:
        sort = "name"
    if not (page.isascii() and page.isdecimal()) or len(page) > 7:
        return None
    return search, sort, max(1, int(page))


# Stand-ins for the visitor's name and CSRF token in a cached page (no name or token can
# contain them: names are [A-Za-z0-9_.-], tokens URL-safe base64).
_VISITOR, _CSRF = "pypid~visitor~", "pypid~csrf~"


def _personal(frame: bytes, allowed: Allowed) -> bytes:
    principal = allowed.principal
    if principal is None:
        return frame
    return frame.replace(_VISITOR.encode(), principal.name.encode("utf-8")).replace(
        _CSRF.encode(), (allowed.csrf or "").encode("ascii"))


def _frame_key(services: Services, request: IRequest, allowed: Allowed,
               query: tuple[str, str, int]) -> tuple[Any, ...]:
    # The snippets carry the server's URL; the header differs for visitors signed in by a
    # session (a sign-out form) or a token, and for anonymous ones.
    kind = "anonymous" if allowed.principal is None else (
        "session" if allowed.csrf is not None else "token")
    return ("packages-page", *query, kind, services.base_url(request))


async def packages_page(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    project = allowed.project
    assert project is not None
    query = _query(request)
    if query is None:
        raise HTTPError(400, "Bad request - search must be at most 100 printable "
                             "characters, page a whole number")
    search, sort, page = query
    table = services.caches.project_table(project["id"])

    def room(_: object) -> bool:
        # Searches and Host headers vary without end: a project keeps this many pages.
        return len(services.caches.for_project(project["id"])) < MAX_CACHED_PAGES

    listing = await services.caches.fill(
        table, ("listing", search, sort, page),
        lambda: services.run_db(_listing, project, search, sort, page), keep=room)

    async def render_frame() -> bytes:
        return render.page(
            "packages.html", visitor=None if allowed.principal is None else _VISITOR,
            csrf=None if allowed.csrf is None else _CSRF, project=project,
            listing=render.Markup(listing.decode("utf-8")), search=search, sort=sort,
            snippets=snippets.for_project(services.base_url(request), project))

    frame: bytes = await services.caches.fill(
        table, _frame_key(services, request, allowed, query), render_frame, keep=room)
    render.security_headers(request)
    return _personal(frame, allowed)


def packages_page_from_memory(services: Services, request: IRequest,
                              allowed: Allowed) -> bytes | None:
    """The fast lane's twin: a cached page, made personal (the visitor's name, the
    session's CSRF token) by two replacements."""
    project = allowed.project
    assert project is not None
    query = _query(request)
    if query is None:
        return None
    frame = services.caches.for_project(project["id"]).get(
        _frame_key(services, request, allowed, query))
    if frame is None:
        return None
    render.security_headers(request)
    return _personal(frame, allowed)


# -- one package ----------------------------------------------------------------------------

def _package_view(registry: Registry, project_id: int, package_id: int) -> dict[str, Any]:
    package = registry.package(project_id, package_id)
    return {"package": package, "files": registry.package_files(package_id),
            "versions": registry.package_versions(project_id, package["name"]),
            "metadata": registry.pypi_metadata(package_id) or {}}


async def _maintainer(services: Services, allowed: Allowed) -> bool:
    principal, project = allowed.principal, allowed.project
    if principal is None or project is None:
        return False
    access = await services.run_db(Registry.project_access, project, principal)
    return may(principal, access, Action.delete)


async def package_page(services: Services, request: IRequest, allowed: Allowed,
                       package_id: int) -> bytes:
    project = allowed.project
    assert project is not None
    view = await services.store(_package_view, project["id"], package_id)
    metadata = view["metadata"]
    description = None
    if metadata.get("description"):
        description = await services.caches.fill(
            services.caches.project_table(project["id"]), ("description", package_id),
            lambda: services.run_worker(render.description, metadata["description"],
                                        metadata.get("description_content_type")))
    files = view["files"]
    return _page(services, request, allowed, "package.html", project=project,
                 package=view["package"], files=files, versions=view["versions"],
                 metadata=metadata,
                 description=render.Markup(description) if description else None,
                 maintainer=await _maintainer(services, allowed) and allowed.csrf is not None,
                 any_available=any(not row["yanked"] for row in files),
                 any_yanked=any(row["yanked"] for row in files),
                 install=snippets.install(services.base_url(request), project,
                                          view["package"]["display_name"]))


def _package_url(project: Row, package_id: int) -> str:
    return f"/{quote(project['path'])}/-/packages/{package_id}"


async def yank(services: Services, request: IRequest, allowed: Allowed,
               package_id: int) -> bytes:
    fields = Fields(request)
    _check_csrf(allowed, fields)
    project = allowed.project
    assert project is not None
    await packages_api.change_yank(services, request, project, allowed.principal, package_id,
                                   True, fields.text("reason") or None)
    return _see_other(request, _package_url(project, package_id))


async def unyank(services: Services, request: IRequest, allowed: Allowed,
                 package_id: int) -> bytes:
    _check_csrf(allowed, Fields(request))
    project = allowed.project
    assert project is not None
    await packages_api.change_yank(services, request, project, allowed.principal, package_id,
                                   False, None)
    return _see_other(request, _package_url(project, package_id))


async def confirm_delete_package(services: Services, request: IRequest, allowed: Allowed,
                                 package_id: int) -> bytes:
    project = allowed.project
    assert project is not None
    package = await services.store(Registry.package, project["id"], package_id)
    return _page(services, request, allowed, "confirm.html",
                 question=f"Delete {package['display_name']} {package['version']} and all "
                          "its files?", button="Delete this version",
                 back=_package_url(project, package_id))


async def delete_package(services: Services, request: IRequest, allowed: Allowed,
                         package_id: int) -> bytes:
    _check_csrf(allowed, Fields(request))
    project = allowed.project
    assert project is not None
    await packages_api.remove_package(services, request, project, allowed.principal,
                                      package_id)
    return _see_other(request, f"/{quote(project['path'])}/-/packages")


async def confirm_delete_file(services: Services, request: IRequest, allowed: Allowed,
                              package_id: int, file_id: int) -> bytes:
    project = allowed.project
    assert project is not None
    files = await services.run_db(Registry.package_files, package_id)
    await services.store(Registry.package, project["id"], package_id)
    chosen = [row for row in files if row["id"] == file_id]
    if not chosen:
        raise HTTPError(404, "Package File Not Found")
    return _page(services, request, allowed, "confirm.html",
                 question=f"Delete the file {chosen[0]['filename']}?", button="Delete file",
                 back=_package_url(project, package_id))


async def delete_file(services: Services, request: IRequest, allowed: Allowed,
                      package_id: int, file_id: int) -> bytes:
    _check_csrf(allowed, Fields(request))
    project = allowed.project
    assert project is not None
    await packages_api.remove_file(services, request, project, allowed.principal, package_id,
                                   file_id)
    remaining = await services.run_db(Registry.package_files, package_id)
    if not remaining:
        return _see_other(request, f"/{quote(project['path'])}/-/packages")
    return _see_other(request, _package_url(project, package_id))
