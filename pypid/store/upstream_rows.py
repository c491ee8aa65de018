"""The upstream's rows: each project's and group's settings, and the files fetched from
an upstream (checked against its page) into the blob store.

A mixin of Registry (same connection, same transactions), like NamespaceQueries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from pypid.store.base import Invalid, timestamp, update_columns
from pypid.upstream.settings import (
    Layer,
    SettingError,
    check_min_age,
    check_patterns,
    check_ttl,
    check_url,
)

Row = dict[str, Any]
INHERIT = "inherit"  # the value that gives a setting back to the level above
# What set_upstream leaves as it is.
UNCHANGED: Any = object()


class UpstreamQueries:
    """Registry's queries on upstream settings and cached upstream files."""

    db: sqlite_utils.Database
    _now: Callable[[], datetime]
    _one: Callable[..., Row | None]
    _insert: Callable[[str, dict[str, Any]], int]
    write: Callable[[], AbstractContextManager[Any]]
    project: Callable[[str | int], Row]
    group: Callable[[str | int], Row]
    lineage: Callable[[int | None], tuple[int, ...]]

    # -- settings ------------------------------------------------------------------------

    def set_upstream(
        self, table: str, reference: str | int, url: Any = UNCHANGED, allow: Any = UNCHANGED,
        min_age: Any = UNCHANGED, ttl: Any = UNCHANGED,
    ) -> Row:
        """Change a project's (table "projects") or group's ("groups") upstream settings;
        each value "inherit" gives that setting back to the level above."""
        assert table in ("projects", "groups")
        changes: dict[str, Any] = {}
        try:
            if url is not UNCHANGED:
                changes["upstream"] = None if url == INHERIT else check_url(url)
            if allow is not UNCHANGED:
                changes["upstream_allow"] = None if list(allow) == [INHERIT] else json.dumps(
                    list(check_patterns(allow)))
            if min_age is not UNCHANGED:
                changes["upstream_min_age"] = None if min_age == INHERIT else check_min_age(
                    min_age)
            if ttl is not UNCHANGED:
                changes["upstream_ttl"] = None if ttl == INHERIT else check_ttl(ttl)
        except SettingError as error:
            raise Invalid(str(error)) from None
        row = self.project(reference) if table == "projects" else self.group(reference)
        if changes:
            with self.write():
                update_columns(self.db, table, row["id"], changes)
        return self._one(f"SELECT * FROM {table} WHERE id = ?", (row["id"],)) or {}  # noqa: S608

    def group_layers(self, group_id: int) -> list[Layer]:
        """A group's own settings and its ancestors', nearest first (the daemon's default
        goes last, added by the caller)."""
        layers = []
        for ancestor in self.lineage(group_id):
            row = self._one("SELECT * FROM groups WHERE id = ?", (ancestor,))
            if row is not None:
                layers.append(Layer.from_row(row))
        return layers

    def project_layers(self, project: Row) -> list[Layer]:
        """A project's own settings, then its groups', nearest first."""
        own = self._one("SELECT * FROM projects WHERE id = ?", (project["id"],)) or project
        return [Layer.from_row(own), *self.group_layers(project["group_id"])]

    def name_is_local(self, top_group_id: int, name: str) -> bool:
        """Has any project below the top-level group files of this name? Such a name is
        never taken from upstream, in any index of the namespace (pypid.upstream)."""
        row = self._one(
            "WITH RECURSIVE down(id) AS (SELECT ? UNION ALL SELECT g.id FROM groups g "
            "JOIN down ON g.parent_id = down.id) "
            "SELECT 1 AS found FROM packages p JOIN projects j ON j.id = p.project_id "
            "WHERE p.name = ? AND j.group_id IN (SELECT id FROM down) AND EXISTS "
            "(SELECT 1 FROM package_files f WHERE f.package_id = p.id) LIMIT 1",
            (top_group_id, name))
        return row is not None

    # -- cached upstream files -------------------------------------------------------------

    def upstream_file(self, sha256: str, filename: str) -> Row | None:
        return self._one("SELECT * FROM upstream_files WHERE sha256 = ? AND filename = ?",
                         (sha256, filename))

    def record_upstream_file(self, sha256: str, filename: str, name: str, size: int,
                             source_url: str) -> Row:
        """A fetched file, once its blob is committed (the blob first, then the row)."""
        now = timestamp(self._now())
        with self.write():
            self.db.execute(
                "INSERT INTO upstream_files (sha256, filename, name, size, source_url, "
                "fetched_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sha256, filename) DO UPDATE SET last_used_at = excluded.last_used_at",
                (sha256, filename, name, size, source_url, now, now))
        row = self.upstream_file(sha256, filename)
        assert row is not None
        return row

    def upstream_metadata(self, sha256: str) -> bytes | None:
        row = self._one("SELECT content FROM upstream_metadata WHERE sha256 = ?", (sha256,))
        return None if row is None else bytes(row["content"])

    def record_upstream_metadata(self, sha256: str, content: bytes) -> None:
        """Metadata whose sha256 was checked against the upstream's page."""
        now = timestamp(self._now())
        with self.write():
            self.db.execute(
                "INSERT INTO upstream_metadata (sha256, content, last_used_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256) DO UPDATE SET last_used_at = excluded.last_used_at",
                (sha256, content, now))

    def touch_upstream_file(self, file_id: int) -> None:
        """Record a use (at most once a day per file: see pypid.upstream.proxy)."""
        with self.write():
            self.db.execute("UPDATE upstream_files SET last_used_at = ? WHERE id = ?",
                            (timestamp(self._now()), file_id))

    def forget_unused_upstream_files(self, days: float) -> list[Row]:
        """Drop the rows of cached upstream files (and metadata) not used for days: their
        blobs become unreferenced, for the garbage collector. Returns the file rows."""
        if days <= 0:
            return []
        cutoff = timestamp(self._now() - timedelta(days=days))
        with self.write():
            rows = list(self.db.query(
                "SELECT * FROM upstream_files WHERE last_used_at < ?", (cutoff,)))
            self.db.execute("DELETE FROM upstream_files WHERE last_used_at < ?", (cutoff,))
            self.db.execute("DELETE FROM upstream_metadata WHERE last_used_at < ?", (cutoff,))
        return rows

    def forget_upstream_files(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.write():
            for file_id in ids:
                self.db.execute("DELETE FROM upstream_files WHERE id = ?", (file_id,))

    def upstream_file_rows(self) -> list[Row]:
        return list(self.db.query("SELECT * FROM upstream_files ORDER BY id"))


__all__ = ["INHERIT", "UNCHANGED", "UpstreamQueries"]
