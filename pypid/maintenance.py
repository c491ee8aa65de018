"""Consistency checks, garbage collection, backup and restore of a data dir.

Synchronous; the admin CLI runs them directly, the daemon in its database thread. Blobs
are immutable and content-addressed, so a consistent backup is a snapshot of the database
(SQLite's online backup) plus a copy of the blobs that snapshot references.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from pypid.blobs.filesystem import FilesystemBlobs, fsync_directory
from pypid.blobs.guard import BlobGuard
from pypid.blobs.s3 import STORE_FILE, S3Blobs, remembered
from pypid.interfaces import IBlobStore
from pypid.store.db import DATABASE_NAME, connect
from pypid.store.registry import Registry

# A blob or temp file younger than this may belong to an upload in progress.
DEFAULT_GRACE_SECONDS = 3600.0
QUARANTINE = "quarantine"
S3_KEYS = "s3-keys.txt"  # in a backup of an S3 store: the objects its rows need


@dataclass
class FsckReport:
    files_checked: int = 0
    upstream_files_checked: int = 0
    blobs_checked: int = 0
    missing_blobs: list[str] = field(default_factory=list)  # filenames whose blob is gone
    corrupt_blobs: list[str] = field(default_factory=list)  # keys whose bytes changed
    orphan_blobs: list[str] = field(default_factory=list)  # keys no row uses (past grace)
    young_orphans: int = 0
    stale_temp_files: int = 0
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (self.missing_blobs or self.corrupt_blobs or self.orphan_blobs
                    or self.stale_temp_files)

    def lines(self) -> list[str]:
        verb = "removed" if self.repaired else "found"
        return [
            f"checked {self.files_checked} file rows, {self.upstream_files_checked} cached "
            f"upstream files and {self.blobs_checked} blobs",
            f"rows whose blob is missing: {len(self.missing_blobs)}"
            + (" (rows removed)" if self.repaired and self.missing_blobs else ""),
            *(f"  missing: {name}" for name in self.missing_blobs),
            f"blobs whose content no longer matches their sha256: {len(self.corrupt_blobs)}"
            + (f" (moved to {QUARANTINE}/, rows removed)"
               if self.repaired and self.corrupt_blobs else ""),
            *(f"  corrupt: {key}" for key in self.corrupt_blobs),
            f"blobs no row uses, {verb}: {len(self.orphan_blobs)}"
            f" (and {self.young_orphans} younger than the grace period, kept)",
            f"stale temp files, {verb}: {self.stale_temp_files}",
            "OK" if self.clean else ("REPAIRED" if self.repaired else "PROBLEMS FOUND"),
        ]


def _older_than(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def fsck(
    registry: Registry, blobs: IBlobStore, repair: bool = False,
    grace: float = DEFAULT_GRACE_SECONDS, verify: bool = True,
    guard: BlobGuard | None = None,
) -> FsckReport:
    """Compare rows and blobs; with repair, make them agree (never touching young blobs)."""
    report = FsckReport(repaired=repair)
    guard = guard or BlobGuard()  # one process alone (tests); the CLI passes the data dir's
    now = time.time()
    rows = list(registry.db.query(
        "SELECT id, package_id, project_id, filename, blob_key, metadata_sha256 "
        "FROM package_files ORDER BY id"))
    cached = registry.upstream_file_rows()  # files fetched from an upstream
    report.files_checked = len(rows)
    report.upstream_files_checked = len(cached)
    stored = set(blobs.keys())
    report.blobs_checked = len(stored)
    used = {row["blob_key"] for row in rows} | {
        row["metadata_sha256"] for row in rows if row["metadata_sha256"]} | {
        row["sha256"] for row in cached}
    corrupt = set()
    if verify:
        corrupt = {key for key in stored & used if not blobs.verify(key)}
    report.corrupt_blobs = sorted(corrupt)
    broken_rows = [row for row in rows if row["blob_key"] not in stored]
    report.missing_blobs = [row["filename"] for row in broken_rows]
    broken_cached = [row for row in cached if row["sha256"] not in stored or row["sha256"]
                     in corrupt]
    report.missing_blobs += [f"{row['filename']} (from upstream)" for row in broken_cached
                             if row["sha256"] not in stored]
    for key in sorted(stored - used):
        if guard.is_held(key):
            report.young_orphans += 1
        elif now - (blobs.modified(key) or now) > grace:
            report.orphan_blobs.append(key)
        else:
            report.young_orphans += 1
    stale = [path for path in blobs.temp_dir.iterdir() if _older_than(path, grace, now)]
    report.stale_temp_files = len(stale)
    if not repair:
        return report
    if isinstance(blobs, FilesystemBlobs):  # an object store keeps its corrupt objects
        quarantine = blobs.root.parent.parent / QUARANTINE
        for key in report.corrupt_blobs:
            quarantine.mkdir(exist_ok=True)
            os.replace(blobs.path(key), quarantine / key)
    doomed = broken_rows + [row for row in rows if row["blob_key"] in corrupt]
    for row in doomed:
        registry.delete_file(row["project_id"], row["package_id"], row["id"])
    # A cached upstream file is only a copy: without its row it is fetched again.
    registry.forget_upstream_files([row["id"] for row in broken_cached])
    for key in report.orphan_blobs:
        guard.delete_unless_held(blobs, key, registry.unused)
    for path in stale:
        path.unlink(missing_ok=True)
    return report


def collect_garbage(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard,
    grace: float = DEFAULT_GRACE_SECONDS, upstream_retention_days: float = 0.0,
) -> int:
    """Remove blobs no row uses, older than grace and held by no upload; returns how many.
    Cached upstream files not requested for upstream_retention_days (0: kept) go first."""
    registry.forget_unused_upstream_files(upstream_retention_days)
    report = fsck(registry, blobs, repair=False, grace=grace, verify=False, guard=guard)
    removed = 0
    for key in report.orphan_blobs:
        if guard.delete_unless_held(blobs, key, registry.unused):
            removed += 1
    return removed


@dataclass
class BackupReport:
    files: int
    blobs_copied: int
    bytes_copied: int
    rows_dropped: list[str]


def backup(data_dir: Path, destination: Path, with_upstream: bool = True) -> BackupReport:
    """A consistent copy of a (possibly running) data dir into a new directory; without
    the files cached from upstreams if with_upstream is False (they are fetched again)."""
    if destination.exists() and any(destination.iterdir()):
        raise ValueError(f"backup destination {destination} is not empty")
    destination.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(str(data_dir / DATABASE_NAME))
    target = sqlite3.connect(str(destination / DATABASE_NAME))
    try:
        source.backup(target)  # SQLite's online backup: one consistent snapshot
    finally:
        source.close()
        target.close()
    registry = Registry(connect(destination / DATABASE_NAME))
    try:
        rows = list(registry.db.query(
            "SELECT id, package_id, project_id, filename, blob_key FROM package_files"))
        if not with_upstream:
            registry.forget_upstream_files([row["id"] for row in registry.upstream_file_rows()])
        cached = registry.upstream_file_rows()
        s3 = remembered(data_dir)
        if s3 is not None:
            # The objects stay in their bucket (which has its own versioning and
            # replication); the backup holds the rows, the store's settings and the keys
            # the rows need, so that restore can check them.
            shutil.copyfile(data_dir / STORE_FILE, destination / STORE_FILE)
            needed = {row["blob_key"] for row in rows} | {row["sha256"] for row in cached}
            (destination / S3_KEYS).write_text("".join(f"{key}\n" for key in sorted(needed)))
            return BackupReport(len(rows), 0, 0, [])
        source_blobs = FilesystemBlobs(data_dir)
        target_blobs = FilesystemBlobs(destination)
        copied = size = 0
        dropped = []
        keys = {row["blob_key"] for row in rows} | _legacy_metadata(registry)
        for key in sorted(keys | {row["sha256"] for row in cached}):
            origin = source_blobs.path(key)
            copy = target_blobs.path(key)
            try:
                shutil.copyfile(origin, copy)
            except FileNotFoundError:
                # Deleted after the snapshot was taken: the backup drops its rows too.
                dropped += [row for row in rows if row["blob_key"] == key]
                registry.forget_upstream_files(
                    [row["id"] for row in cached if row["sha256"] == key])
                continue
            with open(copy, "rb") as stream:
                os.fsync(stream.fileno())
            copied += 1
            size += copy.stat().st_size
        for row in dropped:
            registry.delete_file(row["project_id"], row["package_id"], row["id"])
        for directory in {target_blobs.root, *target_blobs.root.glob("??")}:
            fsync_directory(directory)
        return BackupReport(len(rows) - len(dropped), copied, size,
                            [row["filename"] for row in dropped])
    finally:
        registry.close()


def _legacy_metadata(registry: Registry) -> set[str]:
    """Metadata blobs of files recorded before schema 3 (metadata not in the database)."""
    return {row["metadata_sha256"] for row in registry.db.query(
        "SELECT DISTINCT metadata_sha256 FROM package_files WHERE metadata_sha256 IS NOT NULL "
        "AND metadata_sha256 NOT IN (SELECT sha256 FROM core_metadata)")}


def restore(source: Path, data_dir: Path) -> FsckReport:
    """Copy a backup into an empty data dir and check it; the schema is upgraded if older."""
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValueError(f"restore needs an empty data dir; {data_dir} is not empty")
    if not (source / DATABASE_NAME).exists():
        raise ValueError(f"{source} is not a pypid backup (no {DATABASE_NAME})")
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / DATABASE_NAME, data_dir / DATABASE_NAME)
    if (source / "blobs").exists():
        shutil.copytree(source / "blobs", data_dir / "blobs")
    if (source / STORE_FILE).exists():
        shutil.copyfile(source / STORE_FILE, data_dir / STORE_FILE)
    s3 = remembered(data_dir)
    registry = Registry(connect(data_dir / DATABASE_NAME))
    try:
        blobs: IBlobStore = FilesystemBlobs(data_dir) if s3 is None else S3Blobs(data_dir, s3)
        return fsck(registry, blobs, repair=False)
    finally:
        registry.close()
