"""Projects, their members and deploy tokens as GitLab's REST API reads and changes them
(creating projects, groups and members is in Registry and NamespaceQueries, shared with
the admin CLI). A mixin of Registry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlite_utils

from pypid.domain import protection, tokens
from pypid.domain.access import Action, Principal, ProjectAccess, may
from pypid.store.base import Conflict, Invalid, NotFound, Protected, update_columns
from pypid.store.upstream_rows import UNCHANGED

Row = dict[str, Any]


class ProjectQueries:
    db: sqlite_utils.Database
    _now: Callable[[], datetime]
    _one: Callable[..., Row | None]
    write: Callable[[], AbstractContextManager[Any]]
    project: Callable[[str | int], Row]
    group: Callable[[str | int], Row]
    lineage: Callable[[int | None], tuple[int, ...]]
    project_access: Callable[[Row, Principal | None], ProjectAccess]
    _check_visibility: Callable[[str], None]
    _insert: Callable[[str, dict[str, Any]], int]

    def readable_projects(self, principal: Principal | None,
                          search: str | None = None) -> list[Row]:
        """Every project the principal may read (GitLab's GET /projects), with its group."""
        rows = []
        lineages: dict[int, tuple[int, ...]] = {}
        for row in self.db.query("SELECT * FROM projects ORDER BY id"):
            if search and search.lower() not in row["path"].lower():
                continue
            if row["group_id"] not in lineages:
                lineages[row["group_id"]] = self.lineage(row["group_id"])
            row["group_ids"] = lineages[row["group_id"]]
            if may(principal, self.project_access(row, principal), Action.read):
                rows.append(row)
        return rows

    def update_project(self, reference: str | int, visibility: str | None = None,
                       description: str | None = None,
                       packages_enabled: bool | None = None) -> Row:
        project = self.project(reference)
        changes: dict[str, Any] = {}
        if visibility is not None:
            self._check_visibility(visibility)
            changes["visibility"] = visibility
        if description is not None:
            if len(description) > 2000:
                raise Invalid("description is longer than 2,000 characters")
            changes["description"] = description
        if packages_enabled is not None:
            changes["packages_enabled"] = int(packages_enabled)
        if changes:
            with self.write():
                update_columns(self.db, "projects", project["id"], changes)
        return self.project(project["id"])

    def delete_project(self, reference: str | int) -> Row:
        """The project and its packages' rows go; its blobs, unreferenced now, are left to
        the garbage collector (after its grace period)."""
        project = self.project(reference)
        with self.write():
            self.db.execute("DELETE FROM projects WHERE id = ?", (project["id"],))
            self.db.execute(
                "DELETE FROM core_metadata WHERE sha256 NOT IN (SELECT metadata_sha256 "
                "FROM package_files WHERE metadata_sha256 IS NOT NULL)")
        return project

    def packages_of_projects(self, project_ids: tuple[int, ...], page: int,
                             per_page: int) -> tuple[list[Row], int]:
        """One page of the packages of these projects (a group's), with project_path."""
        if not project_ids:
            return [], 0
        marks = ", ".join("?" * len(project_ids))
        total = self._one(f"SELECT COUNT(*) AS n FROM packages WHERE project_id IN ({marks})",  # noqa: S608
                          project_ids)
        rows = list(self.db.query(
            "SELECT p.*, j.path AS project_path FROM packages p JOIN projects j "  # noqa: S608
            f"ON j.id = p.project_id WHERE p.project_id IN ({marks}) ORDER BY p.id "
            "LIMIT ? OFFSET ?", (*project_ids, per_page, (page - 1) * per_page)))
        return rows, int(total["n"]) if total else 0

    # -- what the web pages read ------------------------------------------------------------

    def package_counts(self, project_ids: list[int]) -> dict[int, int]:
        """Package names with files, per project."""
        if not project_ids:
            return {}
        marks = ", ".join("?" * len(project_ids))
        return {int(row["project_id"]): int(row["n"]) for row in self.db.query(
            "SELECT p.project_id, COUNT(DISTINCT p.name) AS n FROM packages p "  # noqa: S608
            f"WHERE p.project_id IN ({marks}) AND EXISTS (SELECT 1 FROM package_files f "
            "WHERE f.package_id = p.id) GROUP BY p.project_id", tuple(project_ids))}

    def package_versions(self, project_id: int, name: str) -> list[Row]:
        """Every version of a package name (that has files), oldest first."""
        return list(self.db.query(
            "SELECT p.id, p.version, p.version_key, p.display_name, MAX(f.upload_time) AS "
            "uploaded FROM packages p JOIN package_files f ON f.package_id = p.id "
            "WHERE p.project_id = ? AND p.name = ? GROUP BY p.id ORDER BY p.id",
            (project_id, name)))

    def package_summaries(self, project_id: int) -> list[Row]:
        """Per package name with files: its versions' ids, versions and last upload."""
        return list(self.db.query(
            "SELECT p.name, p.display_name, p.id, p.version, MAX(f.upload_time) AS uploaded "
            "FROM packages p JOIN package_files f ON f.package_id = p.id "
            "WHERE p.project_id = ? GROUP BY p.id ORDER BY p.name, p.id", (project_id,)))

    # -- package protection rules ---------------------------------------------------------

    def protection_rules(self, project_id: int) -> list[Row]:
        return list(self.db.query(
            "SELECT * FROM package_protection_rules WHERE project_id = ? ORDER BY id",
            (project_id,)))

    def protection_rule(self, project_id: int, rule_id: int) -> Row:
        row = self._one("SELECT * FROM package_protection_rules WHERE project_id = ? AND "
                        "id = ?", (project_id, rule_id))
        if row is None:
            raise NotFound("Package Protection Rule Not Found")
        return row

    def set_protection_rule(self, project_id: int, rule_id: int | None, pattern: Any,
                            push: Any, delete: Any) -> Row:
        """Create (rule_id None) or change a rule; UNCHANGED values stay as they are."""
        current = self.protection_rule(project_id, rule_id) if rule_id is not None else {
            "package_name_pattern": None, "minimum_access_level_for_push": None,
            "minimum_access_level_for_delete": None}
        values = {
            "package_name_pattern": current["package_name_pattern"] if pattern is UNCHANGED
            else pattern,
            "minimum_access_level_for_push": current["minimum_access_level_for_push"]
            if push is UNCHANGED else push,
            "minimum_access_level_for_delete": current["minimum_access_level_for_delete"]
            if delete is UNCHANGED else delete}
        try:
            protection.check_pattern(values["package_name_pattern"])
            protection.check_level("minimum_access_level_for_push",
                                   values["minimum_access_level_for_push"])
            protection.check_level("minimum_access_level_for_delete",
                                   values["minimum_access_level_for_delete"])
        except protection.RuleError as error:
            raise Invalid(str(error)) from None
        if values["minimum_access_level_for_push"] is None and \
                values["minimum_access_level_for_delete"] is None:
            raise Invalid("a rule needs minimum_access_level_for_push or "
                          "minimum_access_level_for_delete")
        try:
            with self.write():
                if rule_id is None:
                    rule_id = self._insert("package_protection_rules",
                                           {"project_id": project_id, "package_type": "pypi",
                                            **values})
                else:
                    self.db.execute(
                        "UPDATE package_protection_rules SET package_name_pattern = ?, "
                        "minimum_access_level_for_push = ?, "
                        "minimum_access_level_for_delete = ? WHERE id = ?",
                        (*values.values(), rule_id))
        except sqlite3.IntegrityError:
            raise Conflict("a rule for this package_name_pattern already exists") from None
        return self.protection_rule(project_id, rule_id)

    def delete_protection_rule(self, project_id: int, rule_id: int) -> Row:
        row = self.protection_rule(project_id, rule_id)
        with self.write():
            self.db.execute("DELETE FROM package_protection_rules WHERE id = ?", (rule_id,))
        return row

    def check_protection(self, project: Row, name: str, principal: Principal | None,
                         what: str) -> None:
        """Raise Protected if a rule of the project keeps principal from pushing (what
        "push") or deleting ("delete") package name (normalized). Read in the caller's
        transaction, so that a rule made a moment ago counts."""
        rows = self.protection_rules(project["id"])
        if not rows or principal is None:
            return
        rules = [protection.Rule(row["id"], row["package_name_pattern"],
                                 row["minimum_access_level_for_push"],
                                 row["minimum_access_level_for_delete"]) for row in rows]
        role = None
        if principal.user_id is not None and not principal.is_admin:
            role = self.project_access(project, principal).role
        rule = protection.refusing_rule(rules, name, principal, role, what)
        if rule is not None:
            raise Protected(protection.reason(rule, what))

    # -- members ---------------------------------------------------------------------------

    def members_of(self, table: str, owner_id: int) -> list[Row]:
        """Direct members of a project (table "members") or group ("group_members")."""
        column = "project_id" if table == "members" else "group_id"
        assert table in ("members", "group_members")
        return list(self.db.query(
            f"SELECT u.*, m.role FROM {table} m JOIN users u ON u.id = m.user_id "  # noqa: S608
            f"WHERE m.{column} = ? ORDER BY u.id", (owner_id,)))

    def member_of(self, table: str, owner_id: int, user_id: int) -> Row:
        for row in self.members_of(table, owner_id):
            if row["id"] == user_id:
                return row
        raise NotFound("Member Not Found")

    # -- deploy tokens ---------------------------------------------------------------------

    def deploy_token_rows(self, project_id: int | None = None,
                          group_id: int | None = None) -> list[Row]:
        params: tuple[Any, ...]
        if project_id is not None:
            where, params = "project_id = ?", (project_id,)
        elif group_id is not None:
            where, params = "group_id = ?", (group_id,)
        else:
            where, params = "1 = 1", ()
        now = self._now()
        return [
            {**row, "scopes": row["scopes"].split(","), "revoked": bool(row["revoked"]),
             "expired": tokens.is_expired(row["expires_at"], now)}
            for row in self.db.query(
                "SELECT id, project_id, group_id, username, name, scopes, expires_at, "  # noqa: S608
                f"revoked, created_at FROM deploy_tokens WHERE {where} ORDER BY id", params)
        ]

    def revoke_deploy_token(self, token_id: int, project_id: int | None = None,
                            group_id: int | None = None) -> Row:
        for row in self.deploy_token_rows(project_id, group_id):
            if row["id"] == token_id:
                with self.write():
                    self.db.execute("UPDATE deploy_tokens SET revoked = 1 WHERE id = ?",
                                    (token_id,))
                return row
        raise NotFound("Deploy Token Not Found")


__all__ = ["ProjectQueries"]
