"""Groups (GitLab's namespaces, nested), their members and what the group index reads.

A mixin of Registry (same connection, same transactions). A project belongs to the group of
its namespace (`acme/platform/tools` -> `acme/platform`), which belongs to `acme`. A group
role counts on every project below the group; the highest of the inherited and the direct
role wins, as in GitLab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlite_utils

from pypid.domain.access import (
    VISIBILITIES,
    Action,
    GroupAccess,
    Principal,
    ProjectAccess,
    Role,
    may,
)
from pypid.domain.names import BadName, validate_group_path
from pypid.store.base import Conflict, Invalid, NotFound, timestamp

Row = dict[str, Any]

_LINEAGE = (
    "WITH RECURSIVE up(id, parent_id, depth) AS ("
    " SELECT id, parent_id, 0 FROM groups WHERE id = ?"
    " UNION ALL SELECT g.id, g.parent_id, up.depth + 1 FROM groups g"
    " JOIN up ON g.id = up.parent_id)"
    " SELECT id FROM up ORDER BY depth"
)
_BELOW = (
    "WITH RECURSIVE down(id) AS (SELECT ?"
    " UNION ALL SELECT g.id FROM groups g JOIN down ON g.parent_id = down.id)"
)


class NamespaceQueries:
    """Registry's queries on groups; expects Registry's helpers (see there)."""

    db: sqlite_utils.Database
    _now: Callable[[], datetime]
    _one: Callable[..., Row | None]
    _insert: Callable[[str, dict[str, Any]], int]
    write: Callable[[], AbstractContextManager[Any]]
    user: Callable[[str], Row]
    project: Callable[[str | int], Row]

    # -- groups ------------------------------------------------------------------------

    def create_group(self, path: str, visibility: str = "private") -> int:
        """A new group; missing parents are created private. Returns its id."""
        parts = self._group_parts(path)
        self._check_visibility(visibility)
        with self.write():
            if self._one("SELECT id FROM groups WHERE path = ?", (path,)) is not None:
                raise Conflict(f"group {path!r} already exists")
            return self._ensure_groups(parts, visibility)

    def _ensure_groups(self, parts: list[str], visibility: str = "private") -> int:
        """Inside a write: the id of the group at parts, made (with its parents) if missing;
        parents made here are private, the group itself gets visibility."""
        parent: int | None = None
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            row = self._one("SELECT id FROM groups WHERE path = ?", (path,))
            if row is None:
                parent = self._insert("groups", {
                    "parent_id": parent, "path": path, "name": parts[depth - 1],
                    "visibility": visibility if depth == len(parts) else "private",
                    "created_at": timestamp(self._now())})
            else:
                parent = int(row["id"])
        assert parent is not None
        return parent

    @staticmethod
    def _group_parts(path: str) -> list[str]:
        try:
            return validate_group_path(path)
        except BadName as error:
            raise Invalid(str(error)) from None

    @staticmethod
    def _check_visibility(visibility: str) -> None:
        if visibility not in VISIBILITIES:
            raise Invalid(f"unknown visibility {visibility!r}; use private, internal or public")

    def group(self, reference: str | int) -> Row:
        """A group by numeric id or full path, with its `lineage` (its id and its
        ancestors' ids, nearest first)."""
        row = self._by_reference("groups", "group", reference)
        return {**row, "lineage": self.lineage(row["id"])}

    def _by_reference(self, table: str, what: str, reference: str | int) -> Row:
        """A project's or group's row by numeric id or by path (GitLab's `:id`)."""
        text = str(reference)
        if text.isdecimal() and text.isascii():
            # Ids SQLite cannot hold (19 digits and more) exist nowhere.
            row = self._one(f"SELECT * FROM {table} WHERE id = ?", (int(text),)) \
                if len(text) < 19 else None  # noqa: S608 - table is ours, not the client's
        else:
            row = self._one(f"SELECT * FROM {table} WHERE path = ?", (text,))  # noqa: S608
        if row is None:
            raise NotFound(f"no {what} {text!r}")
        return row

    def lineage(self, group_id: int | None) -> tuple[int, ...]:
        if group_id is None:
            return ()
        return tuple(int(row[0]) for row in self.db.execute(_LINEAGE, (group_id,)))

    def list_groups(self) -> list[Row]:
        return list(self.db.query(
            "SELECT id, path, name, parent_id, visibility, created_at FROM groups ORDER BY id"))

    def set_group_visibility(self, reference: str | int, visibility: str) -> Row:
        self._check_visibility(visibility)
        group = self.group(reference)
        with self.write():
            self.db.execute("UPDATE groups SET visibility = ? WHERE id = ?",
                            (visibility, group["id"]))
        return self.group(group["id"])

    def set_project_visibility(self, reference: str | int, visibility: str) -> Row:
        self._check_visibility(visibility)
        project = self.project(reference)
        with self.write():
            self.db.execute("UPDATE projects SET visibility = ? WHERE id = ?",
                            (visibility, project["id"]))
        return self.project(project["id"])

    # -- members -----------------------------------------------------------------------

    def add_group_member(self, reference: str | int, username: str, role: str) -> Row:
        try:
            Role.parse(role)
        except ValueError as error:
            raise Invalid(str(error)) from None
        group = self.group(reference)
        user = self.user(username)
        with self.write():
            self.db.execute(
                "INSERT INTO group_members (group_id, user_id, role) VALUES (?, ?, ?) "
                "ON CONFLICT (group_id, user_id) DO UPDATE SET role = excluded.role",
                (group["id"], user["id"], role))
        return {"group": group["path"], "user": user["username"], "role": role}

    def remove_group_member(self, reference: str | int, username: str) -> Row:
        group = self.group(reference)
        return self._remove("group_members", "group_id", group, username)

    def remove_member(self, reference: str | int, username: str) -> Row:
        project = self.project(reference)
        return self._remove("members", "project_id", project, username)

    def _remove(self, table: str, column: str, owner: Row, username: str) -> Row:
        user = self.user(username)
        with self.write():
            cursor = self.db.execute(
                f"DELETE FROM {table} WHERE {column} = ? AND user_id = ?",  # noqa: S608
                (owner["id"], user["id"]))
        if cursor.rowcount != 1:
            raise NotFound(f"{username} is not a direct member of {owner['path']}")
        return {"path": owner["path"], "user": user["username"]}

    def inherited_role(self, lineage: tuple[int, ...], user_id: int) -> Role | None:
        if not lineage:
            return None
        marks = ", ".join("?" * len(lineage))
        rows = self.db.execute(
            f"SELECT role FROM group_members WHERE user_id = ? AND group_id IN ({marks})",  # noqa: S608
            (user_id, *lineage)).fetchall()
        return max((Role[row[0]] for row in rows), default=None)

    # -- what the group index reads --------------------------------------------------------

    def group_projects(self, group_id: int) -> list[Row]:
        """Every project in the group and its subgroups, with their `group_ids`."""
        rows = list(self.db.query(
            _BELOW + " SELECT p.* FROM projects p WHERE p.group_id IN "  # noqa: S608
            "(SELECT id FROM down) ORDER BY p.id", (group_id,)))
        lineages: dict[int, tuple[int, ...]] = {}
        for row in rows:
            if row["group_id"] not in lineages:
                lineages[row["group_id"]] = self.lineage(row["group_id"])
            row["group_ids"] = lineages[row["group_id"]]
        return rows

    def group_access(self, group: Row, principal: Principal | None) -> GroupAccess:
        """The principal's place in a group, and the projects below it that they may read."""
        role = None
        if principal is not None and principal.user_id is not None:
            role = self.inherited_role(group["lineage"], principal.user_id)
        readable = tuple(
            project["id"] for project in self.group_projects(group["id"])
            if project["packages_enabled"]  # the switch off: out of the group index too
            and may(principal, self.project_access(project, principal), Action.read))
        return GroupAccess(group["id"], group["visibility"], role, group["lineage"], readable)

    def project_access(self, project: Row, principal: Principal | None) -> ProjectAccess:
        """The principal's highest role in the project, direct or through its groups."""
        group_ids = tuple(project.get("group_ids") or ())
        role = None
        if principal is not None and principal.user_id is not None:
            row = self._one(
                "SELECT role FROM members WHERE project_id = ? AND user_id = ?",
                (project["id"], principal.user_id),
            )
            direct = Role[row["role"]] if row else None
            inherited = self.inherited_role(group_ids, principal.user_id)
            role = max((r for r in (direct, inherited) if r is not None), default=None)
        return ProjectAccess(project["id"], project["visibility"], role, group_ids)

    def group_package_names(self, project_ids: tuple[int, ...]) -> list[Row]:
        """Every package name with files in these projects, once."""
        if not project_ids:
            return []
        marks = ", ".join("?" * len(project_ids))
        return list(self.db.query(
            "SELECT p.name, MIN(p.display_name) AS display_name FROM packages p "  # noqa: S608
            f"WHERE p.project_id IN ({marks}) AND EXISTS "
            "(SELECT 1 FROM package_files f WHERE f.package_id = p.id) "
            "GROUP BY p.name ORDER BY p.name", project_ids))

    def group_package_owner(self, project_ids: tuple[int, ...], name: str) -> int | None:
        """The project whose files of name the group index shows: the one that published
        the name first (its oldest release that still has files)."""
        if not project_ids:
            return None
        marks = ", ".join("?" * len(project_ids))
        row = self._one(
            "SELECT p.project_id FROM packages p WHERE p.name = ? "  # noqa: S608
            f"AND p.project_id IN ({marks}) AND EXISTS "
            "(SELECT 1 FROM package_files f WHERE f.package_id = p.id) "
            "ORDER BY p.created_at, p.id LIMIT 1", (name, *project_ids))
        return None if row is None else int(row["project_id"])

    def group_file_by_name(
        self, project_ids: tuple[int, ...], sha256: str, filename: str
    ) -> Row | None:
        """The file at a group's .../files/SHA256/FILENAME, if one of these projects owns its
        name in the group index (a file the index does not list is not served either)."""
        for row in self._files_named(project_ids, sha256, filename):
            name = self._one("SELECT name FROM packages WHERE id = ?", (row["package_id"],))
            if name is not None and self.group_package_owner(
                    project_ids, name["name"]) == row["project_id"]:
                return row
        return None

    def _files_named(self, project_ids: tuple[int, ...], sha256: str,
                     filename: str) -> Iterator[Row]:
        if not project_ids:
            return iter(())
        marks = ", ".join("?" * len(project_ids))
        return iter(self.db.query(
            "SELECT * FROM package_files WHERE sha256 = ? AND filename = ? "  # noqa: S608
            f"AND project_id IN ({marks}) ORDER BY id DESC", (sha256, filename, *project_ids)))


__all__ = ["NamespaceQueries"]
