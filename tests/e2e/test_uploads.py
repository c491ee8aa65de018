"""Uploads against the real daemon: concurrency, big files, memory."""

from __future__ import annotations

import hashlib
import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.e2e.daemon import Daemon


def post(daemon: Daemon, project: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    address = urlsplit(daemon.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    try:
        connection.request("POST", f"/api/v4/projects/{project}/packages/pypi", body=body,
                           headers={**headers, "Private-Token": daemon.token})
        response = connection.getresponse()
        response.read()
        return response.status, response.reason
    finally:
        connection.close()


def listed_sha256s(daemon: Daemon, project: str, name: str) -> dict[str, str]:
    code, body = daemon.get(f"/api/v4/projects/{project}/packages/pypi/simple/{name}/",
                            daemon.token, {"Accept": "application/vnd.pypi.simple.v1+json"})
    assert code == 200, body
    return {entry["filename"]: entry["hashes"]["sha256"] for entry in json.loads(body)["files"]}


def test_concurrent_uploads_all_land(daemon: Daemon) -> None:
    """2,000 distinct files uploaded 16 at a time: every one is 201 and listed with its hash."""
    project = daemon.cli("project", "create", "acme/many").stdout.strip()
    files = {wheel_filename("many", f"1.{n}"): wheel_bytes("many", f"1.{n}") for n in range(2000)}

    def upload(item: tuple[str, bytes]) -> int:
        filename, content = item
        version = filename.split("-")[1]
        body, headers = upload_form(filename, content, "many", version)
        return post(daemon, project, body, headers)[0]

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(upload, files.items()))
    assert codes == [201] * 2000
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert listed_sha256s(daemon, project, "many") == expected


def test_racing_uploads_of_one_filename(daemon: Daemon) -> None:
    """16 racing uploads of the same filename all land; the page lists it once, the newest."""
    project = daemon.cli("project", "create", "acme/race").stdout.strip()
    filename = wheel_filename("race", "1.0")
    contents = [wheel_bytes("race", "1.0", padding=n + 1) for n in range(16)]

    def upload(content: bytes) -> int:
        body, headers = upload_form(filename, content, "race", "1.0")
        return post(daemon, project, body, headers)[0]

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(upload, contents)) == [201] * 16
    files = daemon.get_json(f"/api/v4/projects/{project}/packages/1/package_files", daemon.token)
    assert sorted(f["file_sha256"] for f in files) == sorted(
        hashlib.sha256(c).hexdigest() for c in contents)
    newest = max(files, key=lambda f: f["id"])["file_sha256"]
    assert listed_sha256s(daemon, project, "race") == {filename: newest}


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def test_big_upload_is_streamed_not_held(daemon: Daemon) -> None:
    """A 45 MB upload raises the daemon's peak memory by far less than the file's size."""
    project = daemon.cli("project", "create", "acme/big").stdout.strip()
    content = wheel_bytes("big", "1.0", padding=45 * 1024 * 1024)
    body, headers = upload_form(wheel_filename("big", "1.0"), content, "big", "1.0")
    assert daemon.process is not None
    pid = daemon.process.pid
    daemon.get("/-/health")
    reset_peak(pid)
    before = peak_rss_kib(pid)
    assert post(daemon, project, body, headers)[0] == 201
    grown_mib = (peak_rss_kib(pid) - before) / 1024
    print(f"peak memory grew by {grown_mib:.1f} MiB")
    assert grown_mib < 20, f"peak memory grew by {grown_mib:.1f} MiB for a 45 MiB upload"
    sha = hashlib.sha256(content).hexdigest()
    code, downloaded = daemon.get(
        f"/api/v4/projects/{project}/packages/pypi/files/{sha}/{wheel_filename('big', '1.0')}",
        daemon.token)
    assert code == 200 and hashlib.sha256(downloaded).hexdigest() == sha
