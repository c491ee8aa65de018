"""Queries and transactions on the metadata database: one method per thing pypid asks.

Synchronous: the daemon calls it in its database thread, the CLI directly. Every write is
one `BEGIN IMMEDIATE` transaction, so a crash leaves the old state or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from pypid.domain import tokens
from pypid.domain.access import (
    Action,
    Principal,
    Refusal,
    Role,
    refusal,
)
from pypid.domain.names import (
    BadName,
    DistributionFile,
    parse_version,
    validate_project_path,
    validate_user_name,
    version_key,
)
from pypid.store.accounts import AccountQueries, SessionQueries
from pypid.store.base import (
    Conflict,
    Invalid,
    NotFound,
    Protected,
    StoreError,
    WriteRefused,
    timestamp,
    utc_now,
)
from pypid.store.namespaces import NamespaceQueries
from pypid.store.project_rows import ProjectQueries
from pypid.store.upstream_rows import UpstreamQueries

Row = dict[str, Any]
PYPI_METADATA_FIELDS = ("summary", "keywords", "author_email", "description",
                        "description_content_type", "metadata_version", "required_python")
_SET_PYPI_METADATA = (
    f"INSERT OR REPLACE INTO pypi_metadata (package_id, {', '.join(PYPI_METADATA_FIELDS)}) "  # noqa: S608
    f"VALUES (?{', ?' * len(PYPI_METADATA_FIELDS)})")
_PACKAGE_ORDER = {"created_at": "created_at", "name": "name", "version": "version_key",
                  "type": "id"}
# GitLab records a token's use at most this often, to keep reads from becoming writes.
LAST_USED_INTERVAL_SECONDS = 600


@dataclass(frozen=True)
class FileRecord:
    """What an accepted upload stores about its file (digests computed while streaming)."""

    filename: str
    sha256: str
    md5: str
    blake2_256: str
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    metadata: bytes | None = None  # the core metadata itself, stored with the row
    # GitLab's pypi_metadata of the package (PYPI_METADATA_FIELDS), as the upload gave it.
    package_metadata: tuple[str | None, ...] | None = None

    def blob_keys(self) -> list[str]:
        return [self.sha256]


# add_file's arguments: project id, distribution, display name, version, file record,
# uploader's name, and the principal whose right to write the transaction checks again
# (None: a trusted local caller, such as the CLI or a test).
NewFile = tuple[int, DistributionFile, str, str, FileRecord, str, "Principal | None"]


def _usable(row: Row, secret: str, now: datetime) -> bool:
    """A token row found by digest: not expired, and the digest compared in constant time."""
    return not tokens.is_expired(row["expires_at"], now) and tokens.digests_match(
        row["token_digest"], secret)


class Registry(NamespaceQueries, UpstreamQueries, AccountQueries, ProjectQueries,
               SessionQueries):
    def __init__(self, db: sqlite_utils.Database, now: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self._now = now

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One immediate transaction: the write lock is taken up front, then commit or roll back."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row; returns its id.

        Plain SQL built from the row's keys (our own column names, never client input):
        sqlite-utils' insert() re-reads the table's schema on every call, which costs
        more than the insert on the upload path.
        """
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        cursor = self.db.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
            tuple(row.values()),
        )
        return int(cursor.lastrowid or 0)

    def _one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Row | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def data_version(self) -> int:
        """Changes whenever another connection (the CLI) commits: the daemon's cache signal."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # -- users ---------------------------------------------------------------------------

    def create_user(self, username: str, admin: bool = False, name: str | None = None,
                    email: str | None = None) -> Row:
        try:
            validate_user_name(username)
        except BadName as error:
            raise Invalid(str(error)) from None
        try:
            with self.write():
                self._insert("users",
                    {"username": username, "is_admin": int(admin),
                     "created_at": timestamp(self._now()), "name": name, "email": email}
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        return self.user(username)

    def user(self, username: str) -> Row:
        row = self._one("SELECT * FROM users WHERE username = ?", (username,))
        if row is None:
            raise NotFound(f"no user {username!r}")
        return row

    def has_users(self) -> bool:
        return self._one("SELECT 1 AS found FROM users LIMIT 1") is not None

    # -- projects and members --------------------------------------------------------------

    def create_project(self, path: str, visibility: str = "private") -> int:
        try:
            namespace, name = validate_project_path(path)
        except BadName as error:
            raise Invalid(str(error)) from None
        self._check_visibility(visibility)
        try:
            with self.write():
                # A missing group (and its parents) is made private, as GitLab's
                # "create project in a new namespace" does.
                group_id = self._ensure_groups(namespace.split("/"))
                row_id = self._insert("projects",
                    {"namespace": namespace, "name": name, "path": path,
                     "visibility": visibility, "duplicates": "allow",
                     "created_at": timestamp(self._now()), "group_id": group_id}
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"project {path!r} already exists") from None
        return row_id

    def list_projects(self) -> list[Row]:
        return list(self.db.query(
            "SELECT id, path, namespace, name, visibility, duplicates, created_at "
            "FROM projects ORDER BY id"
        ))

    def project(self, reference: str | int) -> Row:
        """A project by numeric id or by NAMESPACE/NAME path, with its `group_ids`."""
        row = self._by_reference("projects", "project", reference)
        return {**row, "group_ids": self.lineage(row["group_id"])}

    def set_duplicates(self, reference: str | int, policy: str) -> Row:
        if policy not in ("allow", "deny"):
            raise Invalid(f"duplicates must be allow or deny, not {policy!r}")
        project = self.project(reference)
        with self.write():
            self.db.execute(
                "UPDATE projects SET duplicates = ? WHERE id = ?", (policy, project["id"])
            )
        return self.project(project["id"])

    def add_member(self, reference: str | int, username: str, role: str) -> Row:
        try:
            Role.parse(role)
        except ValueError as error:
            raise Invalid(str(error)) from None
        project = self.project(reference)
        user = self.user(username)
        with self.write():
            self.db.execute(
                "INSERT INTO members (project_id, user_id, role) VALUES (?, ?, ?) "
                "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                (project["id"], user["id"], role),
            )
        return {"project_id": project["id"], "project": project["path"],
                "user": user["username"], "role": role}

    def _check_writer(self, project: Row, writer: Principal) -> None:
        """Raise WriteRefused unless writer, as the database has it now, may upload."""
        fresh = self._current(writer)
        if fresh is None:
            raise WriteRefused(Refusal.unauthorized)
        refused = refusal(fresh, self.project_access(project, fresh), Action.write)
        if refused is not None:
            raise WriteRefused(refused)

    def _current(self, principal: Principal) -> Principal | None:
        """principal re-read from its token row: None if revoked or expired since."""
        if principal.token_id is None:
            return principal
        now = self._now()
        if principal.is_deploy_token:
            row = self._one("SELECT scopes, expires_at, project_id FROM deploy_tokens "
                            "WHERE id = ? AND revoked = 0", (principal.token_id,))
        else:
            row = self._one(
                "SELECT t.scopes, t.expires_at, u.is_admin FROM personal_access_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE t.id = ? AND t.revoked = 0 "
                "AND u.state = 'active'",
                (principal.token_id,))
        if row is None or tokens.is_expired(row["expires_at"], now):
            return None
        return dataclasses.replace(
            principal, scopes=frozenset(row["scopes"].split(",")),
            is_admin=bool(row.get("is_admin", principal.is_admin)))

    # -- tokens ----------------------------------------------------------------------------

    def _expiry(self, expires_at: str | None) -> str | None:
        if expires_at is None:
            return None
        try:
            return tokens.parse_expiry(expires_at, self._now().date()).isoformat()
        except tokens.TokenError as error:
            raise Invalid(str(error)) from None

    @staticmethod
    def _scopes(text: str) -> str:
        try:
            return ",".join(tokens.parse_scopes(text))
        except tokens.TokenError as error:
            raise Invalid(str(error)) from None

    def create_token(
        self, username: str, scopes: str, name: str | None = None, expires_at: str | None = None
    ) -> tuple[int, str]:
        """A new personal access token; returns (id, secret). Only the digest is stored."""
        scope_text = self._scopes(scopes)
        expiry = self._expiry(expires_at)
        user = self.user(username)
        secret = tokens.new_secret(tokens.PERSONAL_PREFIX)
        with self.write():
            row_id = self._insert("personal_access_tokens",
                {"user_id": user["id"], "name": name or "token",
                 "token_digest": tokens.digest(secret), "scopes": scope_text,
                 "expires_at": expiry, "revoked": 0, "last_used_at": None,
                 "created_at": timestamp(self._now())}
            )
        return row_id, secret

    def list_tokens(self, username: str) -> list[Row]:
        user = self.user(username)
        rows = self.db.query(
            "SELECT id, name, scopes, expires_at, revoked, last_used_at, created_at "
            "FROM personal_access_tokens WHERE user_id = ? ORDER BY id",
            (user["id"],),
        )
        return [
            {**row, "scopes": row["scopes"].split(","), "revoked": bool(row["revoked"]),
             "active": not row["revoked"]
             and not tokens.is_expired(row["expires_at"], self._now())}
            for row in rows
        ]

    def revoke_token(self, token_id: int) -> Row:
        with self.write():
            cursor = self.db.execute(
                "UPDATE personal_access_tokens SET revoked = 1 WHERE id = ?", (token_id,)
            )
        if cursor.rowcount != 1:
            raise NotFound(f"no personal access token with id {token_id}")
        row = self._one("SELECT id, name FROM personal_access_tokens WHERE id = ?", (token_id,))
        assert row is not None
        return row

    def create_deploy_token(
        self, reference: str | int, scopes: str, username: str | None = None,
        name: str | None = None, expires_at: str | None = None,
    ) -> tuple[str, str]:
        """A new deploy token for one project; returns (username, secret)."""
        project = self.project(reference)
        return self._create_deploy_token("project_id", project["id"], scopes, username, name,
                                         expires_at)

    def create_group_deploy_token(
        self, reference: str | int, scopes: str, username: str | None = None,
        name: str | None = None, expires_at: str | None = None,
    ) -> tuple[str, str]:
        """A new deploy token for every project of a group and its subgroups."""
        group = self.group(reference)
        return self._create_deploy_token("group_id", group["id"], scopes, username, name,
                                         expires_at)

    def _create_deploy_token(
        self, owner: str, owner_id: int, scopes: str, username: str | None,
        name: str | None, expires_at: str | None,
    ) -> tuple[str, str]:
        scope_text = self._scopes(scopes)
        expiry = self._expiry(expires_at)
        if username is not None:
            try:
                validate_user_name(username)
            except BadName as error:
                raise Invalid(str(error)) from None
        secret = tokens.new_secret(tokens.DEPLOY_PREFIX)
        try:
            with self.write():
                token_id = self._insert("deploy_tokens",
                    {owner: owner_id,
                     # GitLab's default name, made unique below once the id is known.
                     "username": username or f"pending-{tokens.digest(secret)}",
                     "name": name or "deploy-token", "token_digest": tokens.digest(secret),
                     "scopes": scope_text, "expires_at": expiry, "revoked": 0,
                     "last_used_at": None, "created_at": timestamp(self._now())}
                )
                if username is None:
                    username = f"gitlab+deploy-token-{token_id}"
                    self.db.execute(
                        "UPDATE deploy_tokens SET username = ? WHERE id = ?", (username, token_id)
                    )
        except sqlite3.IntegrityError:
            raise Conflict(f"a deploy token named {username!r} already exists") from None
        return username, secret

    def authenticate(self, username: str | None, secret: str) -> Principal | None:
        """The principal a credential speaks for, or None if it is unknown/expired/revoked.

        username is None for the Private-Token header. A deploy token counts only with its
        own user name; a personal token with any user name (GitLab's convention).
        """
        now = self._now()
        token_digest = tokens.digest(secret)
        row = self._one(
            "SELECT t.id, t.scopes, t.expires_at, t.last_used_at, u.id AS user_id, "
            "u.username, u.is_admin, t.token_digest FROM personal_access_tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.token_digest = ? AND t.revoked = 0 "
            "AND u.state = 'active'",
            (token_digest,),
        )
        if row is not None:
            if not _usable(row, secret, now):
                return None
            self._touch("personal_access_tokens", row, now)
            return Principal(
                name=row["username"], scopes=frozenset(row["scopes"].split(",")),
                user_id=row["user_id"], is_admin=bool(row["is_admin"]), token_id=row["id"],
                expires_at=row["expires_at"],
            )
        row = self._one(
            "SELECT id, project_id, group_id, username, scopes, expires_at, last_used_at, "
            "token_digest FROM deploy_tokens WHERE token_digest = ? AND revoked = 0",
            (token_digest,),
        )
        if row is None or username != row["username"] or not _usable(row, secret, now):
            return None
        self._touch("deploy_tokens", row, now)
        return Principal(
            name=row["username"], scopes=frozenset(row["scopes"].split(",")),
            deploy_project_id=row["project_id"], deploy_group_id=row["group_id"],
            token_id=row["id"], expires_at=row["expires_at"],
        )

    def _touch(self, table: str, row: Row, now: datetime) -> None:
        last = row["last_used_at"]
        if last is not None:
            seconds = (now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
            if seconds < LAST_USED_INTERVAL_SECONDS:
                return
        try:
            with self.write():
                self.db.execute(
                    f"UPDATE {table} SET last_used_at = ? WHERE id = ?",  # noqa: S608
                    (timestamp(now), row["id"]),
                )
        except sqlite3.OperationalError:
            pass  # a busy database must not refuse a valid token; next use records it

    # -- first start -----------------------------------------------------------------------

    def bootstrap(self) -> str | None:
        """On an empty database: admin user root and an api token; returns the secret."""
        if self.has_users():
            return None
        try:
            self.create_user("root", admin=True)
        except Conflict:
            return None  # a daemon starting beside this one on the data dir made it first
        _, secret = self.create_token("root", "api", name="initial-root-token")
        return secret

    # -- packages and files ----------------------------------------------------------------

    def add_file(
        self, project_id: int, dist: DistributionFile, display_name: str, version: str,
        record: FileRecord, uploader: str, writer: Principal | None = None,
    ) -> Row:
        """Record an accepted file (its blob is already durable); returns the file row.

        If the project denies duplicates, a filename it already has is refused (Conflict).
        """
        with self.write():
            return self._add_file_rows(project_id, dist, display_name, version, record,
                                       uploader, writer)

    def add_files(self, uploads: list[NewFile]) -> list[Row | Exception]:
        """Record several accepted files in one transaction (one commit, one fsync): each
        in a savepoint, so a refused one (Conflict) leaves the others in. Per upload, its
        row or the exception that refused it; an error of the transaction itself (the
        database locked by another process, say) is raised and records none."""
        results: list[Row | Exception] = []
        with self.write():
            for upload in uploads:
                self.db.execute("SAVEPOINT upload")
                try:
                    results.append(self._add_file_rows(*upload))
                except (Conflict, WriteRefused, NotFound, sqlite3.IntegrityError) as error:
                    self.db.execute("ROLLBACK TO upload")
                    results.append(error)
                self.db.execute("RELEASE upload")
        return results

    def _add_file_rows(
        self, project_id: int, dist: DistributionFile, display_name: str, version: str,
        record: FileRecord, uploader: str, writer: Principal | None,
    ) -> Row:
        # What decides the write is read here, in its own transaction, not taken from the
        # daemon's caches, which may be a moment behind the admin CLI.
        project = self._one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if project is None:
            raise NotFound("Project Not Found")
        project["group_ids"] = self.lineage(project["group_id"])
        if writer is not None:
            self._check_writer(project, writer)
        self.check_protection(project, dist.name, writer, "push")
        now = timestamp(self._now())
        key = version_key(dist.version)
        if project["duplicates"] == "deny" and self._one(
            "SELECT 1 AS found FROM package_files WHERE project_id = ? AND filename = ?",
            (project_id, record.filename),
        ):
            raise Conflict("File already exists")
        package = self._one(
            "SELECT id FROM packages WHERE project_id = ? AND name = ? AND version_key = ?",
            (project_id, dist.name, key),
        )
        if package is None:
            package_id = self._insert("packages",
                {"project_id": project_id, "name": dist.name, "display_name": display_name,
                 "version": version, "version_key": key, "created_at": now}
            )
        else:
            package_id = int(package["id"])
        if record.metadata is not None and record.metadata_sha256:
            self.db.execute(
                "INSERT OR IGNORE INTO core_metadata (sha256, content) VALUES (?, ?)",
                (record.metadata_sha256, record.metadata),
            )
        if record.package_metadata is not None:
            self.db.execute(_SET_PYPI_METADATA, (package_id, *record.package_metadata))
        file_id = self._insert("package_files",
            {"package_id": package_id, "project_id": project_id,
             "filename": record.filename, "packagetype": dist.kind,
             "sha256": record.sha256, "md5": record.md5, "blake2_256": record.blake2_256,
             "size": record.size, "requires_python": record.requires_python,
             "metadata_sha256": record.metadata_sha256, "upload_time": now,
             "uploader": uploader, "blob_key": record.sha256, "yanked": 0,
             "yanked_reason": None}
        )
        return {"id": file_id, "package_id": package_id, "project_id": project_id,
                "filename": record.filename, "sha256": record.sha256, "size": record.size,
                "upload_time": now}

    def project_package_names(self, project_id: int) -> list[Row]:
        """Every package of a project that has files: normalized and display names."""
        return list(self.db.query(
            "SELECT p.name, MIN(p.display_name) AS display_name FROM packages p "
            "WHERE p.project_id = ? AND EXISTS "
            "(SELECT 1 FROM package_files f WHERE f.package_id = p.id) "
            "GROUP BY p.name ORDER BY p.name",
            (project_id,),
        ))

    def package_page_files(self, project_id: int, name: str) -> list[Row]:
        """A package's files for its index page: each filename once, its newest upload."""
        return list(self.db.query(
            "SELECT f.*, p.version FROM package_files f JOIN packages p ON p.id = f.package_id "
            "WHERE p.project_id = ? AND p.name = ? AND f.id IN "
            "(SELECT MAX(f2.id) FROM package_files f2 JOIN packages p2 ON p2.id = f2.package_id "
            " WHERE p2.project_id = ? AND p2.name = ? GROUP BY f2.filename) "
            "ORDER BY f.filename",
            (project_id, name, project_id, name),
        ))

    def file_by_name(self, project_id: int, sha256: str, filename: str) -> Row | None:
        """The file at .../files/SHA256/FILENAME: both must match (equal bytes may be
        uploaded under several names, each its own file)."""
        return self._one(
            "SELECT * FROM package_files WHERE project_id = ? AND sha256 = ? AND filename = ? "
            "ORDER BY id DESC LIMIT 1",
            (project_id, sha256, filename),
        )

    # -- the packages API ------------------------------------------------------------------

    def list_packages(
        self, project_id: int, package_name: str | None, page: int, per_page: int,
        order_by: str = "created_at", sort: str = "asc", version: str | None = None,
    ) -> tuple[list[Row], int]:
        """One page of a project's packages (GitLab's order_by: created_at, name, version,
        type; sort asc or desc); version: that version only."""
        column = _PACKAGE_ORDER[order_by]
        direction = "DESC" if sort == "desc" else "ASC"
        where, params = "project_id = ?", [str(project_id)]
        if version is not None:
            where += " AND version = ?"
            params.append(version)
        if package_name:
            # GitLab filters by a fuzzy match of the name.
            where += " AND (name LIKE ? ESCAPE '\\' OR display_name LIKE ? ESCAPE '\\')"
            pattern = "%" + package_name.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            params += [pattern, pattern]
        total_row = self._one(f"SELECT COUNT(*) AS n FROM packages WHERE {where}", tuple(params))  # noqa: S608
        total = int(total_row["n"]) if total_row else 0
        rows = list(self.db.query(
            f"SELECT * FROM packages WHERE {where} ORDER BY {column} {direction}, "  # noqa: S608
            f"id {direction} LIMIT ? OFFSET ?",
            (*params, per_page, (page - 1) * per_page),
        ))
        return rows, total

    def package(self, project_id: int, package_id: int) -> Row:
        row = self._one(
            "SELECT * FROM packages WHERE project_id = ? AND id = ?", (project_id, package_id)
        )
        if row is None:
            raise NotFound("Package Not Found")
        return row

    def pypi_metadata(self, package_id: int) -> Row | None:
        row = self._one("SELECT * FROM pypi_metadata WHERE package_id = ?", (package_id,))
        if row is not None:
            del row["package_id"]
        return row

    def package_files(self, package_id: int) -> list[Row]:
        return list(self.db.query(
            "SELECT * FROM package_files WHERE package_id = ? ORDER BY id", (package_id,)
        ))

    def delete_package(self, project_id: int, package_id: int) -> tuple[Row, list[str]]:
        """Delete a package and its files; returns it and the blob keys its files used."""
        with self.write():
            package = self.package(project_id, package_id)
            keys = self._blob_keys("package_id = ?", (package_id,))
            self.db.execute("DELETE FROM package_files WHERE package_id = ?", (package_id,))
            self.db.execute("DELETE FROM packages WHERE id = ?", (package_id,))
            self._drop_unused_metadata(keys)
        return package, sorted(keys)

    def delete_file(self, project_id: int, package_id: int, file_id: int) -> tuple[Row, list[str]]:
        with self.write():
            package = self.package(project_id, package_id)
            row = self._one(
                "SELECT * FROM package_files WHERE id = ? AND package_id = ?", (file_id, package_id)
            )
            if row is None:
                raise NotFound("Package File Not Found")
            keys = self._blob_keys("id = ?", (file_id,))
            self.db.execute("DELETE FROM package_files WHERE id = ?", (file_id,))
            self._drop_unused_metadata(keys)
            if not self._one("SELECT 1 AS found FROM package_files WHERE package_id = ?",
                             (package_id,)):
                self.db.execute("DELETE FROM packages WHERE id = ?", (package_id,))
        return {**row, "package": package["name"]}, sorted(keys)

    def _blob_keys(self, where: str, params: tuple[Any, ...]) -> set[str]:
        keys: set[str] = set()
        for row in self.db.query(
            f"SELECT blob_key, metadata_sha256 FROM package_files WHERE {where}", params  # noqa: S608
        ):
            keys.add(row["blob_key"])
            if row["metadata_sha256"]:
                keys.add(row["metadata_sha256"])
        return keys

    def _drop_unused_metadata(self, keys: set[str]) -> None:
        for key in keys:
            self.db.execute(
                "DELETE FROM core_metadata WHERE sha256 = ? AND NOT EXISTS "
                "(SELECT 1 FROM package_files WHERE metadata_sha256 = ?)", (key, key),
            )

    def core_metadata(self, sha256: str) -> bytes | None:
        """Core metadata by its sha256: of a local file, else of an upstream file."""
        row = self._one("SELECT content FROM core_metadata WHERE sha256 = ?", (sha256,))
        return self.upstream_metadata(sha256) if row is None else bytes(row["content"])

    def unused(self, key: str) -> bool:
        """No row references this blob key now."""
        return bool(self.unreferenced([key]))

    def unreferenced(self, keys: list[str]) -> list[str]:
        """Which of these blob keys no file row references any more."""
        return sorted(
            key for key in keys
            if not self._one(
                "SELECT 1 AS found FROM package_files WHERE blob_key = ? OR metadata_sha256 = ? "
                "UNION ALL SELECT 1 FROM upstream_files WHERE sha256 = ? "
                "LIMIT 1", (key, key, key),
            )
        )

    def set_yanked(
        self, project_id: int, name: str, version: str | None, filename: str | None,
        yanked: bool, reason: str | None,
    ) -> list[Row]:
        """Yank (PEP 592) or un-yank every file of a release, or one file; returns them."""
        conditions, params = ["p.project_id = ?", "p.name = ?"], [project_id, name]
        if filename is not None:
            conditions.append("f.filename = ?")
            params.append(filename)
        with self.write():
            where = " AND ".join(conditions)  # fixed clauses; the values are bound
            select = "SELECT f.id, f.filename, p.version_key FROM package_files f "
            sql = f"{select}JOIN packages p ON p.id = f.package_id WHERE {where}"
            rows = list(self.db.query(sql, tuple(params)))
            if version is not None:
                try:
                    key = version_key(parse_version(version))
                except BadName as error:
                    raise Invalid(str(error)) from None
                rows = [row for row in rows if row["version_key"] == key]
            if not rows:
                raise NotFound("no such release or file to yank")
            for row in rows:
                self.db.execute(
                    "UPDATE package_files SET yanked = ?, yanked_reason = ? WHERE id = ?",
                    (int(yanked), reason if yanked else None, row["id"]),
                )
        return rows


# Where the rest of pypid imports the store's refusals and clock from.
__all__ = ["Conflict", "FileRecord", "Invalid", "NewFile", "NotFound", "Protected", "Registry",
           "Row", "StoreError", "WriteRefused", "timestamp", "utc_now"]
