"""Schema creation, upgrade from the previous version, and refusal of newer ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pypid.store import schema
from pypid.store.db import connect


def test_new_database_gets_the_latest_schema(tmp_path: Path) -> None:
    """A fresh data dir gets every table at the latest version, WAL and foreign keys on."""
    db = connect(tmp_path / "db.sqlite3")
    assert schema.current_version(db.conn) == schema.latest_version() >= 2
    assert {"users", "projects", "members", "personal_access_tokens", "deploy_tokens",
            "packages", "package_files"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    columns = {column.name for column in db["package_files"].columns}
    assert {"filename", "sha256", "md5", "blake2_256", "size", "requires_python",
            "upload_time", "uploader", "blob_key", "yanked", "yanked_reason"} <= columns


def test_upgrade_from_previous_version_keeps_data(tmp_path: Path) -> None:
    """A version-1 database is upgraded in place with its rows kept and a backup beside it."""
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.upgrade(conn, path, target=1)
    conn.execute("INSERT INTO users (username, is_admin, created_at) VALUES ('old', 1, 'x')")
    conn.execute("INSERT INTO projects (namespace, name, path, visibility, created_at) "
                 "VALUES ('a', 'b', 'a/b', 'private', 'x')")
    conn.close()

    db = connect(path)
    assert schema.current_version(db.conn) == schema.latest_version()
    assert [row["username"] for row in db["users"].rows] == ["old"]
    assert "yanked" in {column.name for column in db["package_files"].columns}
    assert (tmp_path / "db.sqlite3.v1.bak").exists()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    """An older pypid refuses a data dir whose schema is newer, with a clear message."""
    path = tmp_path / "db.sqlite3"
    connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.latest_version() + 1}")
    conn.close()
    with pytest.raises(schema.SchemaError, match="newer than this pypid"):
        connect(path)


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    """Opening an up-to-date database changes nothing and makes no backup."""
    path = tmp_path / "db.sqlite3"
    connect(path).close()
    connect(path).close()
    assert not list(tmp_path.glob("*.bak"))


def test_version_4_drops_sdist_metadata_pep_643_does_not_back(tmp_path: Path) -> None:
    """Upgrading to version 4 keeps the .metadata of wheels and of sdists with static
    Metadata 2.2 dependencies, and drops it for older or Dynamic ones (and pre-3 blobs)."""
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.upgrade(conn, path, target=3)
    conn.execute("INSERT INTO projects (namespace, name, path, visibility, created_at) "
                 "VALUES ('a', 'b', 'a/b', 'private', 'x')")
    conn.execute("INSERT INTO packages (project_id, name, display_name, version, version_key, "
                 "created_at) VALUES (1, 'p', 'p', '1.0', '1', 'x')")
    cases = {"p-1.0-py3-none-any.whl": "Metadata-Version: 1.0\n",
             "p-1.0.tar.gz": "Metadata-Version: 1.0\n",
             "p-1.0.zip": "Metadata-Version: 2.2\nDynamic: Requires-Dist\n",
             "p-1.0b1.tar.gz": "Metadata-Version: 2.2\nRequires-Dist: x\n",
             "p-1.0b2.tar.gz": None}  # metadata in the blob store (before version 3)
    for number, (filename, text) in enumerate(cases.items()):
        digest = f"{number:064d}"
        if text is not None:
            conn.execute("INSERT INTO core_metadata VALUES (?, ?)",
                         (digest, (text + "Name: p\nVersion: 1.0\n\n").encode()))
        kind = "bdist_wheel" if filename.endswith(".whl") else "sdist"
        conn.execute(
            "INSERT INTO package_files (package_id, project_id, filename, packagetype, sha256, "
            "md5, blake2_256, size, metadata_sha256, upload_time, uploader, blob_key) VALUES "
            "(1, 1, ?, ?, ?, '', '', 1, ?, 'x', 'root', ?)",
            (filename, kind, digest, digest, digest))
    conn.close()
    db = connect(path)
    kept = {row["filename"] for row in db.query(
        "SELECT filename FROM package_files WHERE metadata_sha256 IS NOT NULL")}
    assert kept == {"p-1.0-py3-none-any.whl", "p-1.0b1.tar.gz"}
    assert db.execute("SELECT COUNT(*) FROM core_metadata").fetchone()[0] == 2


def test_version_5_makes_groups_of_the_namespaces(tmp_path: Path) -> None:
    """Each namespace becomes a group, as visible as its most visible project; projects
    point at it; deploy tokens are kept, as project deploy tokens."""
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.upgrade(conn, path, target=4)
    for project_path, visibility in (("acme/a", "private"), ("acme/b", "public"),
                                     ("solo/c", "internal")):
        namespace, name = project_path.split("/")
        conn.execute("INSERT INTO projects (namespace, name, path, visibility, created_at) "
                     "VALUES (?, ?, ?, ?, 'x')", (namespace, name, project_path, visibility))
    conn.execute("INSERT INTO deploy_tokens (project_id, username, name, token_digest, scopes, "
                 "created_at) VALUES (1, 'gitlab+deploy-token-1', 'd', 'digest', 'api', 'x')")
    conn.close()
    db = connect(path)
    groups = {row["path"]: row for row in db.query("SELECT * FROM groups")}
    assert {path: row["visibility"] for path, row in groups.items()} == {
        "acme": "public", "solo": "internal"}
    assert [(row["path"], row["group_id"]) for row in db.query(
        "SELECT path, group_id FROM projects ORDER BY id")] == [
        ("acme/a", groups["acme"]["id"]), ("acme/b", groups["acme"]["id"]),
        ("solo/c", groups["solo"]["id"])]
    (token,) = db.query("SELECT * FROM deploy_tokens")
    assert token["project_id"] == 1 and token["group_id"] is None
