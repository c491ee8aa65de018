"""Faults against the real daemon: kill -9 mid-stream, full disk, idle and stalled clients,
backup while running, and secrets kept out of every log."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.e2e.daemon import Daemon
from tests.e2e.test_uploads import listed_sha256s, post

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def upload_then_kill(daemon: Daemon, project: str, files: dict[str, bytes], kill_after: int,
                     acknowledged: dict[str, str]) -> None:
    """Upload 8 at a time; SIGKILL the daemon once kill_after uploads got their 201."""
    enough = threading.Event()
    lock = threading.Lock()
    count = [0]

    def upload(item: tuple[str, bytes]) -> None:
        filename, content = item
        body, headers = upload_form(filename, content, "crash", filename.split("-")[1])
        try:
            code = post(daemon, project, body, headers)[0]
        except OSError:
            return  # the daemon died under this upload: not acknowledged
        if code == 201:
            with lock:
                acknowledged[filename] = hashlib.sha256(content).hexdigest()
                count[0] += 1
                if count[0] >= kill_after:
                    enough.set()

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(upload, item) for item in files.items()]
        enough.wait(timeout=120)
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGKILL)
        for future in futures:
            future.result()


def test_kill_9_during_uploads_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """kill -9 at random points of an upload stream, restart: every 201 is listed and
    downloads with its hash; nothing listed is half-written; temp files are swept."""
    rng = random.Random(20261125)
    acknowledged: dict[str, str] = {}
    daemon = Daemon(tmp_path / "data").start()
    project = daemon.cli("project", "create", "acme/crash").stdout.strip()
    token = daemon.token
    rounds, per_round = int(os.environ.get("PYPID_CRASH_ROUNDS", "4")), 60
    for round_number in range(rounds):
        files = {wheel_filename("crash", f"{round_number}.{n}"):
                 wheel_bytes("crash", f"{round_number}.{n}", padding=rng.choice([0, 300_000]))
                 for n in range(per_round)}
        kill_after = rng.randrange(5, per_round - 5)
        upload_then_kill(daemon, project, files, kill_after, acknowledged)
        daemon.stop()
        daemon = Daemon(tmp_path / "data").start()
        assert os.listdir(tmp_path / "data" / "tmp") == []
    try:
        listed = listed_sha256s(daemon, project, "crash")
        assert set(acknowledged) <= set(listed)
        for filename, sha in acknowledged.items():
            assert listed[filename] == sha
        for filename, sha in listed.items():
            code, data = daemon.get(
                f"/api/v4/projects/{project}/packages/pypi/files/{sha}/{filename}", token)
            assert code == 200 and hashlib.sha256(data).hexdigest() == sha
        tried = rounds * per_round
        print(f"\nkill -9 rounds: {rounds}; uploads tried: {tried}; acknowledged (201): "
              f"{len(acknowledged)}; listed after restarts: {len(listed)}; "
              f"listed without a 201 (committed, answer lost in the kill): "
              f"{len(set(listed) - set(acknowledged))}")
        report = daemon.cli("fsck", "--grace", "3600").stdout
        assert "rows whose blob is missing: 0" in report
        assert "no longer matches their sha256: 0" in report
    finally:
        daemon.stop()


def test_mid_body_disconnect_and_kill_leave_no_leftovers(daemon: Daemon) -> None:
    """A client gone mid-body leaves nothing; a daemon killed mid-body restarts clean."""
    project = daemon.cli("project", "create", "acme/half").stdout.strip()
    body, headers = upload_form(wheel_filename("half", "1.0"),
                                wheel_bytes("half", "1.0", padding=2_000_000), "half", "1.0")
    address = urlsplit(daemon.url)
    for action in ("disconnect", "kill"):
        connection = socket.create_connection((address.hostname, address.port))
        head = (f"POST /api/v4/projects/{project}/packages/pypi HTTP/1.1\r\nHost: x\r\n"
                f"Private-Token: {daemon.token}\r\nContent-Type: {headers['Content-Type']}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        connection.sendall(head + body[: len(body) // 2])
        if action == "disconnect":
            connection.close()
            # The daemon still serves, and the abandoned spool is gone with the connection.
            assert daemon.get("/-/health")[0] == 200
            continue
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGKILL)
        connection.close()
        daemon.stop()
        daemon.start()
    assert os.listdir(daemon.data_dir / "tmp") == []
    assert daemon.get_json(f"/api/v4/projects/{project}/packages", daemon.token) == []


def test_idle_and_stalled_clients(tmp_path: Path) -> None:
    """1,000 idle connections do not stop others being served; stalled ones are cut."""
    daemon = Daemon(tmp_path / "data", ["--request-timeout", "2"]).start()
    address = urlsplit(daemon.url)
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection((address.hostname, address.port)))
        idle[0].sendall(b"GET /-/health HTTP/1.1\r\nHost: x\r\n")  # headers that never end
        started = time.monotonic()
        assert daemon.get("/-/health")[0] == 200
        assert time.monotonic() - started < 2
        idle[0].settimeout(15)  # a bound; the event awaited is the server closing
        received = b""
        while chunk := idle[0].recv(1024):
            received += chunk
        assert received == b"" or received.startswith(b"HTTP/1.1 408")
    finally:
        for connection in idle:
            connection.close()
        daemon.stop()


def test_backup_while_running_and_restore(tmp_path: Path) -> None:
    """`pypid backup` copies a running registry; `pypid restore` gives an identical index."""
    daemon = Daemon(tmp_path / "data").start()
    try:
        project = daemon.cli("project", "create", "acme/saved").stdout.strip()
        for n in range(20):
            body, headers = upload_form(wheel_filename("saved", f"1.{n}"),
                                        wheel_bytes("saved", f"1.{n}"), "saved", f"1.{n}")
            assert post(daemon, project, body, headers)[0] == 201
        before = daemon.get(f"/api/v4/projects/{project}/packages/pypi/simple/saved/",
                            daemon.token, JSON)[1]

        def keep_uploading() -> None:
            for n in range(20, 40):
                body, headers = upload_form(wheel_filename("later", f"1.{n}"),
                                            wheel_bytes("later", f"1.{n}"), "later", f"1.{n}")
                post(daemon, project, body, headers)

        writer = threading.Thread(target=keep_uploading)
        writer.start()
        result = daemon.cli("backup", str(tmp_path / "backup"))
        writer.join()
        assert "backed up" in result.stdout
        token = daemon.token
    finally:
        daemon.stop()
    restored = tmp_path / "restored"
    result = Daemon(restored).cli("restore", str(tmp_path / "backup"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    again = Daemon(restored).start()
    try:
        after = again.get(f"/api/v4/projects/{project}/packages/pypi/simple/saved/", token,
                          JSON)[1]
        assert json.loads(after) == json.loads(before)
        for entry in json.loads(after)["files"]:
            page = f"/api/v4/projects/{project}/packages/pypi/simple/saved/"
            code, data = again.get(urljoin(page, entry["url"]), token)
            assert code == 200 and hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
    finally:
        again.stop()


def test_tokens_never_reach_the_logs(tmp_path: Path) -> None:
    """After using tokens every way (Basic, Private-Token, URL userinfo, deploy token), no
    secret is in the daemon's log (access log on), the audit log or the database."""
    import sys

    daemon = Daemon(tmp_path / "data", ["--access-log"]).start()
    try:
        project = daemon.cli("project", "create", "acme/quiet").stdout.strip()
        secrets = [daemon.token]
        secrets.append(daemon.cli("token", "create", "root", "--scopes", "api").stdout.strip())
        user, deploy = daemon.cli("deploy-token", "create", project, "--scopes",
                                  "read_package_registry").stdout.split()
        secrets.append(deploy)
        body, headers = upload_form(wheel_filename("quiet", "1.0"), wheel_bytes("quiet", "1.0"),
                                    "quiet", "1.0")
        assert post(daemon, project, body, headers)[0] == 201
        daemon.get(f"/api/v4/projects/{project}/packages/pypi/simple/", secrets[1])
        host = daemon.url.removeprefix("http://")
        for name, secret in (("__token__", secrets[0]), (user, deploy)):
            subprocess.run(
                [sys.executable, "-m", "pip", "--isolated", "download", "--no-deps",
                 "--no-cache-dir", "-d", str(tmp_path / "dl"), "--index-url",
                 f"http://{name}:{secret}@{host}/api/v4/projects/{project}/packages/pypi/simple/",
                 "quiet"], check=True, capture_output=True, timeout=120)
        request = urllib.request.Request(
            f"{daemon.url}/api/v4/projects/{project}/packages/pypi/simple/?private_token="
            f"{secrets[1]}")
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except urllib.error.HTTPError:
            pass
    finally:
        daemon.stop()
    log = daemon.log + (tmp_path / "data" / "audit.log").read_text()
    assert "GET /api/v4/projects" in log  # the access log was on
    database = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("pypid.sqlite3*"))
    for secret in secrets:
        assert secret not in log
        assert secret.encode() not in database


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    yield mount  # type: ignore[misc]
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk(small_disk: Path) -> None:
    """A full disk: 507 with a reason, nothing half-stored, reads go on, and uploads work
    again once space is freed."""
    daemon = Daemon(small_disk / "data").start()
    try:
        project = daemon.cli("project", "create", "acme/disk", "--visibility",
                             "public").stdout.strip()
        body, headers = upload_form(wheel_filename("disk", "1.0"), wheel_bytes("disk", "1.0"),
                                    "disk", "1.0")
        assert post(daemon, project, body, headers)[0] == 201
        free = shutil.disk_usage(small_disk).free
        filler = small_disk / "filler"
        with open(filler, "wb") as stream:
            stream.write(b"\0" * (free - 300_000))
        content = wheel_bytes("disk", "2.0", padding=1_000_000)
        body, headers = upload_form(wheel_filename("disk", "2.0"), content, "disk", "2.0")
        code, reason = post(daemon, project, body, headers)
        assert code == 507 and "disk is full" in reason
        assert os.listdir(small_disk / "data" / "tmp") == []
        assert list(listed_sha256s(daemon, project, "disk")) == [wheel_filename("disk", "1.0")]
        filler.unlink()
        assert post(daemon, project, body, headers)[0] == 201
        assert len(listed_sha256s(daemon, project, "disk")) == 2
    finally:
        daemon.stop()
