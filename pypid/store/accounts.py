"""Users and their personal access tokens, as GitLab's REST API reads and changes them.

A mixin of Registry (same connection, same transactions). These are the actions the admin
CLI and the HTTP API share: each front end validates nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from pypid.domain import tokens
from pypid.domain.access import Principal
from pypid.store.base import Conflict, Invalid, NotFound, timestamp, update_columns

Row = dict[str, Any]
ROTATED_LIFETIME = timedelta(days=7)  # GitLab's default expiry of a rotated token
USER_STATES = ("active", "blocked")


class AccountQueries:
    db: sqlite_utils.Database
    _now: Callable[[], datetime]
    _one: Callable[..., Row | None]
    _insert: Callable[[str, dict[str, Any]], int]
    write: Callable[[], AbstractContextManager[Any]]
    _expiry: Callable[[str | None], str | None]

    # -- users -----------------------------------------------------------------------------

    def user_by_id(self, user_id: int) -> Row:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFound("User Not Found")
        return row

    def list_users(self, username: str | None = None, search: str | None = None,
                   state: str | None = None, admins: bool = False) -> list[Row]:
        conditions, params = [], []
        if username is not None:
            conditions.append("username = ?")
            params.append(username)
        if search:
            conditions.append("(username LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' "
                              "OR email LIKE ? ESCAPE '\\')")
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            params += [pattern, pattern, pattern]
        if state is not None:
            conditions.append("state = ?")
            params.append(state)
        if admins:
            conditions.append("is_admin = 1")
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        return list(self.db.query(f"SELECT * FROM users{where} ORDER BY id",  # noqa: S608
                                  tuple(params)))

    def set_user_state(self, user_id: int, state: str) -> Row:
        assert state in USER_STATES
        user = self.user_by_id(user_id)
        with self.write():
            self.db.execute("UPDATE users SET state = ? WHERE id = ?", (state, user["id"]))
        return self.user_by_id(user_id)

    def update_user(self, user_id: int, name: str | None = None, email: str | None = None,
                    admin: bool | None = None) -> Row:
        user = self.user_by_id(user_id)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _text("name", name)
        if email is not None:
            changes["email"] = _text("email", email)
        if admin is not None:
            changes["is_admin"] = int(admin)
        if changes:
            with self.write():
                update_columns(self.db, "users", user["id"], changes)
        return self.user_by_id(user_id)

    def delete_user(self, user_id: int) -> Row:
        """Remove a user with their tokens and memberships (their uploads stay)."""
        user = self.user_by_id(user_id)
        if user["is_admin"] and not self._one(
                "SELECT 1 AS found FROM users WHERE is_admin = 1 AND state = 'active' "
                "AND id != ?", (user_id,)):
            raise Conflict("the last active administrator cannot be deleted")
        with self.write():
            self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))
        return user

    # -- personal access tokens ------------------------------------------------------------

    def token_row(self, token_id: int) -> Row:
        rows = self._token_rows("id = ?", (token_id,))
        if not rows:
            raise NotFound("Personal Access Token Not Found")
        return rows[0]

    def token_rows(self, user_id: int | None = None) -> list[Row]:
        if user_id is None:
            return self._token_rows("1 = 1", ())
        return self._token_rows("user_id = ?", (user_id,))

    def _token_rows(self, where: str, params: tuple[Any, ...]) -> list[Row]:
        rows = self.db.query(
            "SELECT id, user_id, name, scopes, expires_at, revoked, last_used_at, "  # noqa: S608
            f"created_at FROM personal_access_tokens WHERE {where} ORDER BY id", params)
        now = self._now()
        return [
            {**row, "scopes": row["scopes"].split(","), "revoked": bool(row["revoked"]),
             "active": not row["revoked"] and not tokens.is_expired(row["expires_at"], now)}
            for row in rows
        ]

    def rotate_token(self, token_id: int, expires_at: str | None = None) -> tuple[Row, str]:
        """GitLab's rotation: the token is revoked and a new one (same user, name, scopes)
        is made, expiring in a week unless expires_at says otherwise; returns the new
        row and its secret (shown once)."""
        old = self.token_row(token_id)
        if not old["active"]:
            raise Invalid("the token is revoked or expired; it cannot be rotated")
        expiry = self._expiry(expires_at) if expires_at is not None else (
            self._now() + ROTATED_LIFETIME).date().isoformat()
        secret = tokens.new_secret(tokens.PERSONAL_PREFIX)
        with self.write():
            self.db.execute("UPDATE personal_access_tokens SET revoked = 1 WHERE id = ?",
                            (token_id,))
            new_id = self._insert("personal_access_tokens", {
                "user_id": old["user_id"], "name": old["name"],
                "token_digest": tokens.digest(secret), "scopes": ",".join(old["scopes"]),
                "expires_at": expiry, "revoked": 0, "last_used_at": None,
                "created_at": timestamp(self._now())})
        return self.token_row(new_id), secret


SESSION_LIFETIME = timedelta(hours=12)


class SessionQueries:
    """Web sessions (pypid.web.pages): made by signing in with a personal access token,
    ended by signing out, by their expiry, or with their token."""

    db: sqlite_utils.Database
    _now: Callable[[], datetime]
    _one: Callable[..., Row | None]
    _insert: Callable[[str, dict[str, Any]], int]
    write: Callable[[], AbstractContextManager[Any]]

    def create_session(self, token_id: int) -> tuple[str, str]:
        """A new session for a (checked) token; returns (cookie secret, CSRF token)."""
        secret, csrf = tokens.new_secret("pses-"), tokens.new_secret("")
        now = self._now()
        with self.write():
            self.db.execute("DELETE FROM web_sessions WHERE expires_at < ?", (timestamp(now),))
            self._insert("web_sessions", {
                "digest": tokens.digest(secret), "token_id": token_id, "csrf": csrf,
                "created_at": timestamp(now),
                "expires_at": timestamp(now + SESSION_LIFETIME)})
        return secret, csrf

    def session(self, secret: str) -> tuple[Principal, str] | None:
        """The principal a session speaks for and its CSRF token, while the session and
        its token are good (the token not revoked or expired, its user not blocked)."""
        now = self._now()
        row = self._one(
            "SELECT s.csrf, s.expires_at AS session_expires, t.id, t.scopes, t.expires_at, "
            "u.id AS user_id, u.username, u.is_admin FROM web_sessions s "
            "JOIN personal_access_tokens t ON t.id = s.token_id JOIN users u "
            "ON u.id = t.user_id WHERE s.digest = ? AND t.revoked = 0 AND u.state = 'active'",
            (tokens.digest(secret),))
        if row is None or row["session_expires"] < timestamp(now) or tokens.is_expired(
                row["expires_at"], now):
            return None
        return Principal(name=row["username"], scopes=frozenset(row["scopes"].split(",")),
                         user_id=row["user_id"], is_admin=bool(row["is_admin"]),
                         token_id=row["id"], expires_at=row["expires_at"]), row["csrf"]

    def end_session(self, secret: str) -> None:
        with self.write():
            self.db.execute("DELETE FROM web_sessions WHERE digest = ?",
                            (tokens.digest(secret),))


def _text(field: str, value: str) -> str:
    if not value.strip() or len(value) > 255 or any(
            ord(char) < 32 or ord(char) == 127 for char in value):
        raise Invalid(f"{field} must be 1 to 255 printable characters")
    return value


__all__ = ["USER_STATES", "AccountQueries", "SessionQueries"]
