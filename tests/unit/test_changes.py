"""The change signal several processes on one data dir share, and the caches' use of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from pypid.caches import Caches, ChangeWatcher
from pypid.changes import EVERYTHING, FILE_NAME, NOTHING, SIZE, SLOTS, ChangeSignal


def test_a_change_published_by_one_is_read_by_another(tmp_path: Path) -> None:
    writer, reader = ChangeSignal(tmp_path), ChangeSignal(tmp_path)
    seen = reader.sequence()
    assert writer.publish(7) == seen + 1
    assert writer.publish(EVERYTHING) == seen + 2
    assert reader.sequence() == seen + 2
    assert reader.since(seen, reader.sequence()) == [7, EVERYTHING]
    assert reader.since(seen + 2, seen + 2) == []
    assert (tmp_path / FILE_NAME).stat().st_size == SIZE


def test_changes_from_another_process(tmp_path: Path) -> None:
    """The admin CLI and other daemons are other processes: the mapping is shared."""
    reader = ChangeSignal(tmp_path)
    script = ("import sys; from pathlib import Path; from pypid.changes import ChangeSignal; "
              "signal = ChangeSignal(Path(sys.argv[1])); [signal.publish(n) for n in (3, 4)]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    assert reader.since(0, reader.sequence()) == [3, 4]


def test_a_reader_too_far_behind_cannot_know(tmp_path: Path) -> None:
    signal = ChangeSignal(tmp_path)
    for number in range(SLOTS + 1):
        signal.publish(number + 1)
    now = signal.sequence()
    assert signal.since(now - SLOTS, now) is not None
    assert signal.since(now - SLOTS - 1, now) is None
    assert signal.since(now + 1, now) is None  # a file that went back (restored): unknown


def test_a_slot_that_does_not_carry_its_number_is_unknown(tmp_path: Path) -> None:
    """A slot half written, or overwritten: the reader cannot take it for the one asked."""
    signal = ChangeSignal(tmp_path)
    signal.publish(5)
    with open(tmp_path / FILE_NAME, "r+b") as stream:
        stream.seek(8 + 1 * 16)  # slot of change 1
        stream.write((99).to_bytes(8, sys.byteorder))
    assert signal.since(0, 1) is None


def filled(caches: Caches) -> None:
    caches.for_project(1)["page"] = b"one"
    caches.for_project(2)["page"] = b"two"
    caches.principals.put("token", "root")


def test_caches_apply_what_others_published(tmp_path: Path) -> None:
    mine, theirs = Caches(signal=ChangeSignal(tmp_path)), Caches(signal=ChangeSignal(tmp_path))
    filled(mine)
    theirs.project_changed(1)
    assert mine.for_project(1) == {"page": b"one"}  # nothing applied until the next request
    mine.sync()
    assert mine.for_project(1) == {}
    assert mine.for_project(2) == {"page": b"two"}
    assert mine.principals.get("token") == "root"
    theirs.clear()  # a token revoked there
    mine.sync()
    assert mine.principals.get("token") is None and mine.for_project(2) == {}


def test_own_changes_are_not_applied_twice(tmp_path: Path) -> None:
    mine = Caches(signal=ChangeSignal(tmp_path))
    mine.project_changed(1)
    filled(mine)
    mine.sync()
    assert mine.for_project(2) == {"page": b"two"}


def test_a_fill_that_raced_a_published_change_is_not_kept(tmp_path: Path) -> None:
    """A load that read the database before another daemon's commit finishes after this
    daemon has applied the change: its (stale) answer is not cached."""
    from twisted.internet.defer import Deferred, ensureDeferred

    mine, theirs = Caches(signal=ChangeSignal(tmp_path)), Caches(signal=ChangeSignal(tmp_path))
    loading: Deferred[Any] = Deferred()
    answer = ensureDeferred(mine.fill(mine.project_table(1), "page", lambda: loading))
    theirs.project_changed(1)
    mine.sync()
    loading.callback(b"stale")
    assert answer.result == b"stale"
    assert "page" not in mine.for_project(1)


@pytest.mark.parametrize("scope", [2, NOTHING])
def test_the_watcher_drops_for_unpublished_writes_only(tmp_path: Path, scope: int) -> None:
    """data_version moves on every other connection's commit; the published ones are
    applied already (a project, or NOTHING: what the database thread publishes for a
    commit that changes no cached answer), so only a move the signal does not explain
    drops everything."""
    caches, other = Caches(signal=ChangeSignal(tmp_path)), ChangeSignal(tmp_path)
    version = [1]
    watcher = ChangeWatcher(Clock(), lambda function: succeed(version[0]), caches)
    watcher.check()
    filled(caches)
    version[0] = 2
    other.publish(scope)
    caches.sync()
    watcher.check()
    assert caches.for_project(1) == {"page": b"one"} and caches.principals.get("token")
    version[0] = 3  # a commit nobody published (a sqlite3 shell)
    watcher.check()
    assert caches.for_project(1) == {}


def test_the_cli_publishes_its_changes_only(tmp_path: Path) -> None:
    """A CLI command that changed rows publishes "everything" for the running daemons; a
    listing publishes nothing; and the CLI never makes the file itself (a CLI run as
    another user would leave one the daemon cannot open)."""
    from pypid import cli
    from pypid.store.db import open_registry

    open_registry(tmp_path).close()
    assert cli.main(["--data-dir", str(tmp_path), "user", "create", "alice"]) == 0
    assert not (tmp_path / FILE_NAME).exists()
    daemon = ChangeSignal(tmp_path)  # what a daemon makes at its start
    seen = daemon.sequence()
    assert cli.main(["--data-dir", str(tmp_path), "project", "list"]) == 0
    assert daemon.sequence() == seen
    assert cli.main(["--data-dir", str(tmp_path), "user", "create", "bob"]) == 0
    assert daemon.since(seen, daemon.sequence()) == [EVERYTHING]


def test_the_database_thread_publishes_its_commits(tmp_path: Path) -> None:
    """A database job that wrote publishes NOTHING; a read publishes nothing."""
    from pypid.store.db import open_registry, run_job
    from pypid.store.registry import Registry

    registry = open_registry(tmp_path)
    signal = ChangeSignal(tmp_path)
    seen = signal.sequence()
    assert run_job(registry, Registry.has_users, (), {}, None, signal) is False
    assert signal.sequence() == seen
    run_job(registry, Registry.create_user, ("carol",), {}, None, signal)
    assert signal.since(seen, signal.sequence()) == [NOTHING]
    registry.close()
