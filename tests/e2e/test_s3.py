"""Blobs in S3 (moto's S3 server on 127.0.0.1, the real wire protocol): the daemon with
--blob-store s3 takes uploads, pip installs through --download serve and redirect, a bad
bucket stops the start, an unreachable store refuses uploads with 503 and keeps nothing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.e2e.daemon import BIN, Daemon, environment, run
from tests.e2e.test_clients import uv_install
from tests.unit.test_blobs import moto_s3


@pytest.fixture
def s3() -> Iterator[str]:
    yield from moto_s3()


def bucket(endpoint: str, name: str) -> None:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    client.close()


def object_keys(endpoint: str, name: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=name)["Contents"]]
    client.close()
    return keys


def s3_args(endpoint: str, name: str, *extra: str) -> list[str]:
    return ["--blob-store", "s3", "--s3-endpoint-url", endpoint, "--s3-bucket", name,
            "--s3-prefix", "pypid", "--s3-region", "us-east-1", "--s3-addressing-style",
            "path", *extra]


def publish_and_install(daemon: Daemon, tmp_path: Path, name: str) -> Path:
    project = daemon.cli("project", "create", "acme/tools").stdout.strip()
    path = tmp_path / wheel_filename(name, "1.0")
    path.write_bytes(wheel_bytes(name, "1.0"))
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{daemon.url}/api/v4/projects/{project}/packages/pypi",
         "-u", "__token__", "-p", daemon.token, str(path)])
    host = daemon.url.removeprefix("http://")
    target = tmp_path / "site"
    index = f"http://__token__:{daemon.token}@{host}/api/v4/projects/{project}/packages/pypi/simple/"
    run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
         "--disable-pip-version-check", "--target", str(target), "--index-url", index, name])
    python = uv_install(tmp_path, index, name)  # and uv, through the same mode
    module = name.replace("-", "_")
    assert run([str(python), "-c", f"import {module}"]).returncode == 0
    return target


@pytest.mark.parametrize("mode", ["serve", "redirect", "proxy"])
def test_pip_installs_from_s3(s3: str, tmp_path: Path, mode: str) -> None:
    """The upload's object is in the bucket under pypid/sha256/ab/<sha256>; pip installs
    it, through pypid (serve) or from a presigned URL (redirect: a 302 after the same
    authorization, which an anonymous request does not pass)."""
    bucket(s3, "blobs")
    daemon = Daemon(tmp_path / "data", args=s3_args(s3, "blobs", "--download", mode)).start()
    try:
        site = publish_and_install(daemon, tmp_path, "cloud-pkg")
        assert (site / "cloud_pkg.py").exists()
        keys = object_keys(s3, "blobs")
        assert len(keys) == 1 and keys[0].startswith("pypid/sha256/")
        sha = keys[0].rsplit("/", 1)[-1]
        url = f"/api/v4/projects/1/packages/pypi/files/{sha}/{wheel_filename('cloud-pkg', '1.0')}"
        code, _ = daemon.get(url)
        assert code == 401
        local = list((tmp_path / "data" / "blobs" / "sha256").glob("??/*"))
        assert (local == []) is (mode == "proxy")  # proxy keeps no local copy
        if mode == "proxy":
            import http.client

            host, port = daemon.url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", url, headers={"Private-Token": daemon.token,
                                                    "Range": "bytes=10-29"})
            response = connection.getresponse()
            part = response.read()
            connection.close()
            whole = wheel_bytes("cloud-pkg", "1.0")
            assert (response.status, part) == (206, whole[10:30])
            assert response.getheader("Content-Range") == f"bytes 10-29/{len(whole)}"
            # A file of several chunks, read a chunk at a time while the client reads.
            big = tmp_path / wheel_filename("big-cloud", "1.0")
            big.write_bytes(wheel_bytes("big-cloud", "1.0", padding=3 * 1024 * 1024))
            run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                 "--repository-url", f"{daemon.url}/api/v4/projects/1/packages/pypi",
                 "-u", "__token__", "-p", daemon.token, str(big)])
            digest = hashlib.sha256(big.read_bytes()).hexdigest()
            code, body = daemon.get(f"/api/v4/projects/1/packages/pypi/files/{digest}/"
                                    f"{big.name}", daemon.token)
            assert code == 200 and body == big.read_bytes()
        if mode == "redirect":
            import http.client

            host, port = daemon.url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", url, headers={"Private-Token": daemon.token})
            response = connection.getresponse()
            response.read()
            connection.close()
            assert response.status == 302
            location = response.getheader("Location", "")
            assert location.startswith(s3) and "X-Amz-Signature" in location
            assert "response-content-disposition" in location
    finally:
        daemon.stop()


def test_a_bad_bucket_stops_the_start(s3: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "pypid", "--data-dir", str(tmp_path / "d"),
         "--listen", "tcp:0:interface=127.0.0.1", *s3_args(s3, "missing-bucket")],
        capture_output=True, text=True, env=environment(), timeout=60, check=False)
    assert result.returncode != 0
    assert "missing-bucket" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unreachable_store_refuses_uploads(tmp_path: Path) -> None:
    """The bucket goes away under a running daemon: an upload gets 503 with the reason and
    no row is committed (the index stays empty)."""
    servers = moto_s3()
    endpoint = next(servers)
    bucket(endpoint, "gone")
    daemon = Daemon(tmp_path / "data", args=s3_args(endpoint, "gone")).start()
    try:
        project = daemon.cli("project", "create", "acme/tools").stdout.strip()
        next(servers, None)  # stops the server
        path = tmp_path / wheel_filename("lost-pkg", "1.0")
        path.write_bytes(wheel_bytes("lost-pkg", "1.0"))
        result = run([str(BIN / "twine"), "upload", "--non-interactive",
                      "--disable-progress-bar", "--repository-url",
                      f"{daemon.url}/api/v4/projects/{project}/packages/pypi", "-u",
                      "__token__", "-p", daemon.token, str(path)], check=False)
        assert result.returncode != 0
        assert "503" in result.stdout + result.stderr
        code, body = daemon.get(f"/api/v4/projects/{project}/packages/pypi/simple/",
                                daemon.token)
        assert code == 200 and b"lost-pkg" not in body
    finally:
        daemon.stop()


def test_a_vanished_object_is_a_404_and_fsck_reports_it(s3: str, tmp_path: Path) -> None:
    """An object deleted behind pypid's back (and its local copy gone): the download is a
    404, never a 5xx, and `pypid fsck` (which finds the S3 store from the data dir) names
    the file; --repair drops its row."""
    bucket(s3, "vanishing")
    daemon = Daemon(tmp_path / "data", args=s3_args(s3, "vanishing")).start()
    try:
        publish_and_install(daemon, tmp_path, "ghost-pkg")
        key = object_keys(s3, "vanishing")[0]
        client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1")
        client.delete_object(Bucket="vanishing", Key=key)
        client.close()
        sha = key.rsplit("/", 1)[-1]
        (tmp_path / "data" / "blobs" / "sha256" / sha[:2] / sha).unlink()
        daemon.stop()
        daemon.start()  # no file in memory any more
        url = f"/api/v4/projects/1/packages/pypi/files/{sha}/{wheel_filename('ghost-pkg', '1.0')}"
        assert daemon.get(url, daemon.token)[0] == 404
        report = daemon.cli("fsck", check=False)
        assert report.returncode == 1 and "ghost_pkg-1.0-py3-none-any.whl" in report.stdout
        assert daemon.cli("fsck", "--repair").returncode == 0
        assert daemon.cli("fsck").stdout.rstrip().endswith("OK")
    finally:
        daemon.stop()


def test_an_object_without_its_row_is_an_orphan_for_gc(s3: str, tmp_path: Path) -> None:
    """What a kill -9 between the put and the commit leaves: an object no row uses. fsck
    finds it (past the grace period), --repair removes it; the store keeps the others."""
    import hashlib

    bucket(s3, "orphans")
    daemon = Daemon(tmp_path / "data", args=s3_args(s3, "orphans")).start()
    try:
        publish_and_install(daemon, tmp_path, "kept-pkg")
        data = b"the bytes of an upload whose row never came"
        sha = hashlib.sha256(data).hexdigest()
        client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1")
        client.put_object(Bucket="orphans", Key=f"pypid/sha256/{sha[:2]}/{sha}", Body=data)
        client.close()
        assert daemon.cli("fsck", "--grace", "3600").returncode == 0  # young: kept
        report = daemon.cli("fsck", "--grace", "0", check=False).stdout
        assert "blobs no row uses, found: 1" in report
        daemon.cli("fsck", "--repair", "--grace", "0")
        keys = object_keys(s3, "orphans")
        assert len(keys) == 1 and sha not in keys[0]
    finally:
        daemon.stop()


def test_backup_and_restore_of_an_s3_store(s3: str, tmp_path: Path) -> None:
    """A backup of an S3 data dir holds the rows, the store's settings and the keys (the
    objects stay in the bucket, none is dropped); restore checks them against the bucket."""
    bucket(s3, "backed")
    daemon = Daemon(tmp_path / "data", args=s3_args(s3, "backed")).start()
    try:
        publish_and_install(daemon, tmp_path, "saved-pkg")
        for blob in (tmp_path / "data" / "blobs" / "sha256").glob("??/*"):
            blob.unlink()  # the local copies are a cache: a backup must not need them
        result = daemon.cli("backup", str(tmp_path / "backup"))
        assert "backed up 1 files" in result.stdout
        keys = (tmp_path / "backup" / "s3-keys.txt").read_text().split()
        assert [f"pypid/sha256/{key[:2]}/{key}" for key in keys] == object_keys(s3, "backed")
        restored = run([str(BIN / "pypid"), "--data-dir", str(tmp_path / "restored"),
                        "restore", str(tmp_path / "backup")])
        assert restored.stdout.splitlines()[-2] == "OK"
    finally:
        daemon.stop()


def test_s3_failing_then_recovering(s3: str, tmp_path: Path) -> None:
    """The store answers 500 to two puts, then recovers: the upload is retried (with
    backoff, boto3's standard mode) and succeeds. Answering 500 to every put: the retries
    are bounded and the client gets 503 with a reason; nothing is committed."""
    from tests.e2e.flaky_s3 import FlakyS3

    bucket(s3, "flaky")
    flaky = FlakyS3(s3)
    daemon = Daemon(tmp_path / "data", args=s3_args(flaky.url, "flaky")).start()
    try:
        project = daemon.cli("project", "create", "acme/tools").stdout.strip()

        def upload(name: str) -> subprocess.CompletedProcess[str]:
            path = tmp_path / wheel_filename(name, "1.0")
            path.write_bytes(wheel_bytes(name, "1.0"))
            return run([str(BIN / "twine"), "upload", "--non-interactive",
                        "--disable-progress-bar", "--repository-url",
                        f"{daemon.url}/api/v4/projects/{project}/packages/pypi", "-u",
                        "__token__", "-p", daemon.token, str(path)], check=False)

        flaky.fail("PUT", 2)
        assert upload("recovered-pkg").returncode == 0
        assert flaky.seen["PUT"] == 3  # two 500s, then the put that worked
        flaky.fail("PUT", 1000)
        # One request (twine would retry a 503 itself): pypid's retries are bounded.
        import http.client

        from tests.dists import upload_form

        body, headers = upload_form(wheel_filename("refused-pkg", "1.0"),
                                    wheel_bytes("refused-pkg", "1.0"), "refused-pkg", "1.0")
        host, port = daemon.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        connection.request("POST", f"/api/v4/projects/{project}/packages/pypi", body=body,
                           headers={**headers, "Private-Token": daemon.token})
        answer = connection.getresponse()
        reason = answer.read()
        connection.close()
        assert answer.status == 503 and b"object store" in reason
        assert flaky.seen["PUT"] == 6  # the first try and 5 retries, with backoff, no more
        code, body = daemon.get(f"/api/v4/projects/{project}/packages/pypi/simple/",
                                daemon.token)
        assert code == 200 and b"recovered-pkg" in body and b"refused-pkg" not in body
    finally:
        daemon.stop()
        flaky.stop()


def test_blobs_migrate_a_file_store_into_a_bucket(s3: str, tmp_path: Path) -> None:
    """`pypid blobs migrate --to s3` beside the running daemon copies every blob (a second
    run copies nothing: resumable); restarted with --blob-store s3 the daemon serves them,
    from the bucket once the local copies are gone."""
    bucket(s3, "moved")
    daemon = Daemon(tmp_path / "data").start()
    try:
        site = publish_and_install(daemon, tmp_path, "moving-pkg")
        assert (site / "moving_pkg.py").exists()
        settings = ["--s3-bucket", "moved", "--s3-endpoint-url", s3, "--s3-prefix", "pypid",
                    "--s3-region", "us-east-1", "--s3-addressing-style", "path"]
        first = daemon.cli("blobs", "migrate", "--to", "s3", *settings).stdout
        assert first.startswith("copied 1 blobs")
        again = daemon.cli("blobs", "migrate", "--to", "s3", *settings).stdout
        assert again.startswith("copied 0 blobs") and "1 were there already" in again
    finally:
        daemon.stop()
    for blob in (tmp_path / "data" / "blobs" / "sha256").glob("??/*"):
        blob.unlink()
    moved = Daemon(tmp_path / "data", args=s3_args(s3, "moved")).start()
    try:
        host = moved.url.removeprefix("http://")
        target = tmp_path / "site-after"
        run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
             "--disable-pip-version-check", "--target", str(target), "--index-url",
             f"http://__token__:{moved.token}@{host}/api/v4/projects/1/packages/pypi/simple/",
             "moving-pkg"])
        assert (target / "moving_pkg.py").exists()
        bad = moved.cli("blobs", "migrate", "--to", "s3", "--s3-bucket", "Not_A_Bucket",
                        check=False)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "s3-bucket" in bad.stderr
    finally:
        moved.stop()


def test_a_slow_store_blocks_nothing_else(s3: str, tmp_path: Path) -> None:
    """While the store holds an upload's put, the daemon answers other requests (S3 calls
    run in worker threads); once the store answers, the upload completes."""
    import threading
    import time

    from tests.e2e.flaky_s3 import FlakyS3

    bucket(s3, "slow")
    flaky = FlakyS3(s3)
    daemon = Daemon(tmp_path / "data", args=s3_args(flaky.url, "slow")).start()
    try:
        project = daemon.cli("project", "create", "acme/tools").stdout.strip()
        path = tmp_path / wheel_filename("slow-pkg", "1.0")
        path.write_bytes(wheel_bytes("slow-pkg", "1.0"))
        release = flaky.hold("PUT")
        outcome: list[subprocess.CompletedProcess[str]] = []
        uploading = threading.Thread(target=lambda: outcome.append(run(
            [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", f"{daemon.url}/api/v4/projects/{project}/packages/pypi",
             "-u", "__token__", "-p", daemon.token, str(path)], check=False)))
        uploading.start()
        started = time.monotonic()
        while not flaky.seen.get("PUT"):  # the put has reached the (held) store
            assert time.monotonic() - started < 30, "the upload never reached the store"
        answered = time.monotonic()
        assert daemon.get("/-/health")[0] == 200
        assert time.monotonic() - answered < 2.0  # not queued behind the held put
        release.set()
        uploading.join(timeout=60)
        assert outcome and outcome[0].returncode == 0, outcome
    finally:
        daemon.stop()
        flaky.stop()


def test_kill_9_between_the_put_and_the_commit_leaves_an_orphan(
        s3: str, tmp_path: Path) -> None:
    """The daemon is killed (SIGKILL) after S3 has the object and before the row: the
    store's size check after the put is held, then the process dies. The upload was never
    answered 201; after a restart the file is not listed, fsck finds the object as an
    orphan, and --repair (past the grace period) removes it."""
    import socket

    from tests.dists import upload_form
    from tests.e2e.flaky_s3 import FlakyS3

    bucket(s3, "killed")
    flaky = FlakyS3(s3)
    data = tmp_path / "data"
    daemon = Daemon(data, args=s3_args(flaky.url, "killed")).start()
    restarted: Daemon | None = None
    try:
        project = daemon.cli("project", "create", "acme/tools").stdout.strip()
        content = wheel_bytes("killed-pkg", "1.0")
        body, headers = upload_form(wheel_filename("killed-pkg", "1.0"), content,
                                    "killed-pkg", "1.0")
        # HEAD before the put (is it there?) goes through; the HEAD after it is held.
        release = flaky.hold("HEAD", after=1)
        host, port = daemon.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall((f"POST /api/v4/projects/{project}/packages/pypi HTTP/1.1\r\n"
                          f"Host: {host}\r\nPrivate-Token: {daemon.token}\r\n"
                          f"Content-Type: {headers['Content-Type']}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            # The put is done and its check is held: S3 has the object, pypid no row.
            assert flaky.waiting["HEAD"].wait(30), "the upload never reached the store"
            assert flaky.seen.get("PUT") == 1
            assert daemon.process is not None
            daemon.process.kill()
            daemon.process.wait(timeout=30)
            assert sock.recv(100) == b""  # closed, never answered
        release.set()
        daemon.stop()
        sha = hashlib.sha256(content).hexdigest()
        assert any(sha in key for key in object_keys(s3, "killed"))
        restarted = Daemon(data, args=s3_args(s3, "killed")).start()
        code, _ = restarted.get(f"/api/v4/projects/{project}/packages/pypi/simple/killed-pkg/",
                                restarted.token)
        assert code == 404
        assert "blobs no row uses, found: 1" in restarted.cli(
            "fsck", "--grace", "0", check=False).stdout
        restarted.cli("fsck", "--repair", "--grace", "0")
        assert not any(sha in key for key in object_keys_or_none(s3, "killed"))
    finally:
        if restarted is not None:
            restarted.stop()
        flaky.stop()


def object_keys_or_none(endpoint: str, name: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", [])]
    client.close()
    return keys
