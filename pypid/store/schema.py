"""Versioned schema: numbered SQL files in package data, applied in order at open.

The version lives in SQLite's user_version. A newer pypid upgrades an older data dir in
place (after copying the database aside); an older pypid refuses a newer one.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path


class SchemaError(RuntimeError):
    """The database's schema cannot be used by this pypid."""


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) for every schema file, in order."""
    files = resources.files("pypid.store").joinpath("schema")
    found = []
    for entry in files.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade(conn: sqlite3.Connection, database_path: Path | None, target: int | None = None) -> int:
    """Bring the schema to target (default: latest); returns the version reached.

    Each step runs in one immediate transaction, so a crash leaves the old or new version.
    Before upgrading an existing database, a copy is kept beside it.
    """
    target = latest_version() if target is None else target
    version = current_version(conn)
    if version > latest_version():
        raise SchemaError(
            f"the data dir's database has schema version {version}, newer than this pypid "
            f"understands ({latest_version()}); upgrade pypid to use it"
        )
    pending = [(number, sql) for number, sql in migrations() if version < number <= target]
    if not pending:
        return version
    if version > 0 and database_path is not None:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        backup = database_path.with_name(f"{database_path.name}.v{version}.bak")
        shutil.copy2(database_path, backup)
    for number, sql in pending:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= number:  # another process got there first
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            step = STEPS.get(number)
            if step is not None:
                step(conn)
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current_version(conn)


def _statements(sql: str) -> list[str]:
    """Split a schema file into statements (executescript would commit on its own)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        statements.append(buffer.strip())
    return [statement for statement in statements if statement]


def _judge_sdist_metadata(conn: sqlite3.Connection) -> None:
    """Version 4: drop the .metadata advertisement of sdists that PEP 643 does not back."""
    from pypid.dists.metadata import parse_raw, servable

    rows = conn.execute(
        "SELECT f.id, f.filename, m.content FROM package_files f LEFT JOIN core_metadata m "
        "ON m.sha256 = f.metadata_sha256 WHERE f.packagetype = 'sdist' "
        "AND f.metadata_sha256 IS NOT NULL"
    ).fetchall()
    for file_id, filename, content in rows:
        if content is None or not servable(parse_raw(bytes(content)), filename):
            conn.execute("UPDATE package_files SET metadata_sha256 = NULL WHERE id = ?",
                         (file_id,))
    conn.execute("DELETE FROM core_metadata WHERE sha256 NOT IN (SELECT metadata_sha256 "
                 "FROM package_files WHERE metadata_sha256 IS NOT NULL)")


# Python steps run after a version's SQL, in its transaction.
STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {4: _judge_sdist_metadata}
