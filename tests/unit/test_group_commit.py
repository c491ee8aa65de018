"""Uploads' rows committed together: one transaction per batch, refusals kept apart."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pypid.domain.names import check_upload_filename
from pypid.publish import GroupCommit
from pypid.store.db import open_registry
from pypid.store.registry import Conflict, FileRecord, NewFile, Registry, Row
from pypid.testing import ManualRunner


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = open_registry(tmp_path)
    registry.bootstrap()
    return registry


def new_file(project: int, version: str, content: str = "") -> NewFile:
    filename = f"pkg-{version}-py3-none-any.whl"
    sha = hashlib.sha256((filename + content).encode()).hexdigest()
    record = FileRecord(filename, sha, "0" * 32, "0" * 64, 10, None, None)
    return (project, check_upload_filename(filename, "pkg", version), "pkg", version, record,
            "root", None)


class DatabaseThread(ManualRunner):
    """The database thread, run when the test says so; notes each batch's size."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.registry = registry
        self.batches: list[int] = []

    def step(self) -> tuple[Any, ...]:
        args = super().step()
        self.batches.append(len(args[0]))
        return args


def test_uploads_arriving_during_a_commit_share_the_next(registry: Registry) -> None:
    project = registry.create_project("a/b")
    registry.set_duplicates(project, "deny")
    database = DatabaseThread(registry)
    commits = GroupCommit(database.run)
    recorded: list[str] = []
    answers: list[Row | BaseException] = []

    def record(version: str, content: str = "") -> None:
        done = commits.record(new_file(project, version, content=content),
                              lambda row: recorded.append(row["filename"]))
        done.addCallbacks(answers.append, lambda failure: answers.append(failure.value))

    record("1.0")  # goes at once
    record("1.1")
    record("1.0", content="again")  # refused: the filename exists by then
    record("1.2")
    assert len(database.jobs) == 1
    database.step()
    assert answers[0]["filename"] == "pkg-1.0-py3-none-any.whl"  # type: ignore[index]
    database.step()  # the three that waited, in one transaction
    assert database.batches == [1, 3]
    assert isinstance(answers[2], Conflict)
    assert [a["filename"] for a in answers if not isinstance(a, BaseException)] == [  # type: ignore[index]
        "pkg-1.0-py3-none-any.whl", "pkg-1.1-py3-none-any.whl", "pkg-1.2-py3-none-any.whl"]
    assert recorded == ["pkg-1.0-py3-none-any.whl", "pkg-1.1-py3-none-any.whl",
                        "pkg-1.2-py3-none-any.whl"]  # audit records only for committed ones
    files = registry.db.execute("SELECT filename FROM package_files ORDER BY id").fetchall()
    assert [f[0] for f in files] == ["pkg-1.0-py3-none-any.whl", "pkg-1.1-py3-none-any.whl",
                                     "pkg-1.2-py3-none-any.whl"]


def test_a_failed_transaction_fails_every_upload_in_it(registry: Registry) -> None:
    project = registry.create_project("a/b")
    database = DatabaseThread(registry)
    commits = GroupCommit(database.run)
    failures: list[BaseException] = []
    commits.record(new_file(project, "1.0"), None)
    for version in ("1.1", "1.2"):
        commits.record(new_file(project, version), None).addErrback(
            lambda failure: failures.append(failure.value))
    database.step()
    registry.db.execute("BEGIN IMMEDIATE")  # something holds the write lock...
    database.step()  # ...(here: ourselves), so BEGIN fails for the whole batch
    registry.db.execute("ROLLBACK")
    assert len(failures) == 2
    assert all("within a transaction" in str(failure) for failure in failures)
    count = registry.db.execute("SELECT COUNT(*) FROM package_files").fetchone()[0]
    assert count == 1
    assert database.jobs == []  # nothing left waiting; the next upload goes at once
    commits.record(new_file(project, "1.3"), None)
    database.step()
    assert registry.db.execute("SELECT COUNT(*) FROM package_files").fetchone()[0] == 2
