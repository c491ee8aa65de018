"""fsck, garbage collection, backup and restore on a real data dir."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pypid.blobs.filesystem import FilesystemBlobs
from pypid.blobs.guard import BlobGuard
from pypid.maintenance import backup, collect_garbage, fsck, restore
from pypid.store.db import open_registry
from pypid.store.registry import Registry
from tests.web.helpers import new_client


def populated(tmp_path: Path, count: int = 3) -> tuple[Registry, FilesystemBlobs, list[str]]:
    client = new_client(tmp_path)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    for n in range(count):
        assert client.upload_wheel(1, "pkg", f"1.{n}", auth).code == 201
    blobs = FilesystemBlobs(tmp_path / "data")
    return registry, blobs, blobs.keys()


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_clean_store_is_ok(tmp_path: Path) -> None:
    """A consistent data dir passes fsck."""
    registry, blobs, _ = populated(tmp_path)
    report = fsck(registry, blobs)
    assert report.clean and report.files_checked == 3 and report.blobs_checked == 3
    assert report.lines()[-1] == "OK"


def test_fsck_finds_and_repairs(tmp_path: Path) -> None:
    """Missing and corrupt blobs, old orphans and stale temp files are found and repaired;
    young orphans and young temp files are left alone."""
    registry, blobs, keys = populated(tmp_path)
    blobs.path(keys[0]).unlink()  # a row without its blob
    blobs.path(keys[1]).write_bytes(b"bit rot")  # a corrupt blob
    old_orphan = blobs.put_bytes(b"nobody's")
    age(blobs.path(old_orphan), 7200)
    young_orphan = blobs.put_bytes(b"upload in progress")
    stale = blobs.temp_dir / "blob-stale.part"
    stale.write_bytes(b"x")
    age(stale, 7200)
    fresh = blobs.temp_dir / "blob-fresh.part"
    fresh.write_bytes(b"x")
    report = fsck(registry, blobs)
    assert len(report.missing_blobs) == 1 and report.corrupt_blobs == [keys[1]]
    assert report.orphan_blobs == [old_orphan] and report.young_orphans == 1
    assert report.stale_temp_files == 1 and not report.clean
    repaired = fsck(registry, blobs, repair=True)
    assert repaired.repaired
    after = fsck(registry, blobs)
    assert after.clean and after.files_checked == 1
    assert (tmp_path / "data" / "quarantine" / keys[1]).exists()
    assert blobs.verify(young_orphan) and not stale.exists() and fresh.exists()


def test_garbage_collection_respects_grace_and_holds(tmp_path: Path) -> None:
    """Only unused blobs older than the grace period and held by no upload are removed."""
    registry, blobs, keys = populated(tmp_path)
    old = blobs.put_bytes(b"old orphan")
    held = blobs.put_bytes(b"held orphan")
    young = blobs.put_bytes(b"young orphan")
    for key in (old, held):
        age(blobs.path(key), 7200)
    guard = BlobGuard()
    guard.hold([held])
    assert collect_garbage(registry, blobs, guard) == 1
    assert not blobs.verify(old) and blobs.verify(held) and blobs.verify(young)
    assert all(blobs.verify(key) for key in keys)


def test_backup_and_restore(tmp_path: Path) -> None:
    """A backup restored into an empty dir has the same rows and blobs, and checks clean."""
    registry, _, keys = populated(tmp_path)
    report = backup(tmp_path / "data", tmp_path / "backup")
    assert report.files == 3 and report.blobs_copied == 3 and report.rows_dropped == []
    check = restore(tmp_path / "backup", tmp_path / "restored")
    assert check.clean
    copy = open_registry(tmp_path / "restored")
    assert copy.package_page_files(1, "pkg") == registry.package_page_files(1, "pkg")
    assert FilesystemBlobs(tmp_path / "restored").keys() == sorted(keys)
    copy.close()


def test_backup_leaves_out_files_whose_blob_went(tmp_path: Path) -> None:
    """A file deleted between the snapshot and the copy is left out, rows and all."""
    _, blobs, keys = populated(tmp_path)
    blobs.path(keys[0]).unlink()
    report = backup(tmp_path / "data", tmp_path / "backup")
    assert report.files == 2 and len(report.rows_dropped) == 1
    assert restore(tmp_path / "backup", tmp_path / "restored").clean


def test_backup_and_restore_refuse_to_overwrite(tmp_path: Path) -> None:
    """Neither writes into a directory that has something in it."""
    populated(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        backup(tmp_path / "data", tmp_path / "busy")
    with pytest.raises(ValueError, match="not empty"):
        restore(tmp_path / "data", tmp_path / "busy")
