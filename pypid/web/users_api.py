"""GitLab's REST API for accounts: who am I, users (admins change them), personal access
tokens (list, revoke, rotate, create for a user).

Field names, status codes and pagination are GitLab's (doc/api/users.md,
doc/api/personal_access_tokens.md, doc/api/user_tokens.md). The gate has already checked
the principal: any signed-in user (target USER) or an administrator (target ADMIN); a
rule that depends on the thing asked for (your own token, or any for an admin) is here.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from pypid.domain.access import Principal
from pypid.store.accounts import USER_STATES
from pypid.store.registry import Registry, Row
from pypid.web.errors import HTTPError
from pypid.web.gate import Allowed
from pypid.web.rest import Fields, bad_request, paginated
from pypid.web.services import Services, json_answer

NO_CONTENT = b""


def _principal(allowed: Allowed) -> Principal:
    assert allowed.principal is not None  # the gate let a signed-in user through
    return allowed.principal


def user_json(base: str, row: Row, full: bool) -> dict[str, Any]:
    """A user as GitLab shows one; full (admins, and yourself): also is_admin and email.
    base: the server's external URL (Services.base_url)."""
    document: dict[str, Any] = {
        "id": row["id"], "username": row["username"], "name": row["name"] or row["username"],
        "state": row["state"], "locked": False, "avatar_url": None,
        "web_url": f"{base}/{row['username']}", "created_at": row["created_at"],
        "bot": False}
    if full:
        document.update({"is_admin": bool(row["is_admin"]), "email": row["email"],
                         "public_email": None, "can_create_group": True,
                         "can_create_project": True, "two_factor_enabled": False,
                         "external": False, "private_profile": False})
    return document


def token_json(row: Row, secret: str | None = None) -> dict[str, Any]:
    document = {"id": row["id"], "name": row["name"], "revoked": row["revoked"],
                "created_at": row["created_at"], "description": None,
                "scopes": row["scopes"], "user_id": row["user_id"],
                "last_used_at": row["last_used_at"], "active": row["active"],
                "expires_at": row["expires_at"]}
    if secret is not None:
        document["token"] = secret  # shown once, at creation or rotation
    return document


def _changed(services: Services, request: IRequest, principal: Principal, action: str,
             **details: Any) -> None:
    """Every change: the caches drop what they hold (tokens, roles), the audit log has it."""
    services.caches.clear()
    services.audit(request, principal, action, **details)


# -- who am I -------------------------------------------------------------------------------

async def current_user(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    assert principal.user_id is not None
    row = await services.store(Registry.user_by_id, principal.user_id)
    return json_answer(request, user_json(services.base_url(request), row, full=True))


async def own_token(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    assert principal.token_id is not None
    row = await services.store(Registry.token_row, principal.token_id)
    return json_answer(request, token_json(row))


async def rotate_own_token(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    assert principal.token_id is not None
    return await _rotate(services, request, principal, principal.token_id)


# -- personal access tokens -----------------------------------------------------------------

async def _token_of(services: Services, principal: Principal, token_id: int) -> Row:
    """A token the principal may see: their own, or any for an admin (else 404)."""
    row: Row = await services.store(Registry.token_row, token_id)
    if row["user_id"] != principal.user_id and not principal.is_admin:
        raise HTTPError(404, "Personal Access Token Not Found")
    return row


async def list_tokens(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    user_id = fields.integer("user_id")
    if not principal.is_admin:
        if user_id is not None and user_id != principal.user_id:
            raise HTTPError(403, "Forbidden - only administrators see others' tokens")
        user_id = principal.user_id
    rows = await services.run_db(Registry.token_rows, user_id)
    state = fields.text("state")
    if state not in (None, "active", "inactive"):
        raise bad_request("state does not have a valid value")
    if state is not None:
        rows = [row for row in rows if row["active"] == (state == "active")]
    revoked = fields.boolean("revoked")
    if revoked is not None:
        rows = [row for row in rows if row["revoked"] == revoked]
    page = paginated(request, rows, services.base_url(request))
    return json_answer(request, [token_json(row) for row in page])


async def get_token(services: Services, request: IRequest, allowed: Allowed,
                    token_id: int) -> bytes:
    row = await _token_of(services, _principal(allowed), token_id)
    return json_answer(request, token_json(row))


async def revoke_token(services: Services, request: IRequest, allowed: Allowed,
                       token_id: int) -> bytes:
    principal = _principal(allowed)
    row = await _token_of(services, principal, token_id)
    await services.store(Registry.revoke_token, row["id"])
    _changed(services, request, principal, "token_revoke", token_id=row["id"])
    request.setResponseCode(204)
    return NO_CONTENT


async def rotate_token(services: Services, request: IRequest, allowed: Allowed,
                       token_id: int) -> bytes:
    principal = _principal(allowed)
    row = await _token_of(services, principal, token_id)
    return await _rotate(services, request, principal, row["id"])


async def _rotate(services: Services, request: IRequest, principal: Principal,
                  token_id: int) -> bytes:
    expires_at = Fields(request).text("expires_at")
    row, secret = await services.store(Registry.rotate_token, token_id, expires_at)
    _changed(services, request, principal, "token_rotate", token_id=token_id,
             new_token_id=row["id"])
    return json_answer(request, token_json(row, secret), 200)


async def create_user_token(services: Services, request: IRequest, allowed: Allowed,
                            user_id: int) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    name = fields.text("name", required=True)
    scopes = fields.strings("scopes", required=True)
    assert name is not None and scopes is not None
    if not scopes:
        raise bad_request("scopes is empty")
    user = await services.store(Registry.user_by_id, user_id)
    token_id, secret = await services.store(
        Registry.create_token, user["username"], ",".join(scopes), name,
        fields.text("expires_at"))
    row = await services.store(Registry.token_row, token_id)
    _changed(services, request, principal, "token_create", user=user["username"],
             scopes=scopes, name=name, expires_at=row["expires_at"])
    return json_answer(request, token_json(row, secret), 201)


# -- users ----------------------------------------------------------------------------------

async def list_users(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    state = None
    if fields.boolean("active"):
        state = "active"
    if fields.boolean("blocked"):
        state = "blocked"
    rows = await services.run_db(Registry.list_users, fields.text("username"),
                                 fields.text("search"), state, bool(fields.boolean("admins")))
    return json_answer(request, [user_json(services.base_url(request), row, principal.is_admin)
                                 for row in paginated(request, rows, services.base_url(request))])


async def get_user(services: Services, request: IRequest, allowed: Allowed,
                   user_id: int) -> bytes:
    principal = _principal(allowed)
    row = await services.store(Registry.user_by_id, user_id)
    return json_answer(request, user_json(services.base_url(request), row,
                                          principal.is_admin or principal.user_id == row["id"]))


async def create_user(services: Services, request: IRequest, allowed: Allowed) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    username = fields.text("username", required=True)
    assert username is not None
    row = await services.store(Registry.create_user, username, bool(fields.boolean("admin")),
                               fields.text("name"), fields.text("email"))
    _changed(services, request, principal, "user_create", name=username,
             admin=bool(row["is_admin"]))
    return json_answer(request, user_json(services.base_url(request), row, full=True), 201)


async def update_user(services: Services, request: IRequest, allowed: Allowed,
                      user_id: int) -> bytes:
    principal = _principal(allowed)
    fields = Fields(request)
    admin = fields.boolean("admin")
    if admin is False and user_id == principal.user_id:
        raise HTTPError(403, "Forbidden - you cannot take away your own admin rights")
    row = await services.store(Registry.update_user, user_id, fields.text("name"),
                               fields.text("email"), admin)
    _changed(services, request, principal, "user_update", user=row["username"],
             admin=admin)
    return json_answer(request, user_json(services.base_url(request), row, full=True))


async def delete_user(services: Services, request: IRequest, allowed: Allowed,
                      user_id: int) -> bytes:
    principal = _principal(allowed)
    if user_id == principal.user_id:
        raise HTTPError(403, "Forbidden - you cannot delete yourself")
    row = await services.store(Registry.delete_user, user_id)
    _changed(services, request, principal, "user_delete", user=row["username"])
    request.setResponseCode(204)
    return NO_CONTENT


async def block_user(services: Services, request: IRequest, allowed: Allowed,
                     user_id: int) -> bytes:
    return await _set_state(services, request, allowed, user_id, "blocked")


async def unblock_user(services: Services, request: IRequest, allowed: Allowed,
                       user_id: int) -> bytes:
    return await _set_state(services, request, allowed, user_id, "active")


async def _set_state(services: Services, request: IRequest, allowed: Allowed,
                     user_id: int, state: str) -> bytes:
    assert state in USER_STATES
    principal = _principal(allowed)
    if user_id == principal.user_id:
        raise HTTPError(403, "Forbidden - you cannot block yourself")
    row = await services.store(Registry.set_user_state, user_id, state)
    _changed(services, request, principal, "user_block" if state == "blocked"
             else "user_unblock", user=row["username"])
    # GitLab answers 201 with `true` (python-gitlab's block() and unblock() read it).
    return json_answer(request, True, 201)
