"""Several daemons on one data dir: each reads the others' writes at once (the change
signal), uploads through both all land, one starting does not break the other's uploads,
and nginx spreads clients over them."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.dists import upload_form, wheel_bytes, wheel_filename, write_wheel
from tests.e2e.daemon import Daemon
from tests.e2e.test_clients import imported_value, pip_install, twine
from tests.e2e.test_nginx import running_nginx

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    first = Daemon(tmp_path / "data").start()
    try:
        second = Daemon(tmp_path / "data").start()
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def call(daemon: Daemon, method: str, path: str, token: str | None = None,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    address = urlsplit(daemon.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Private-Token"] = token
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def upload(daemon: Daemon, project: str, name: str, version: str) -> str:
    """Upload one wheel; its sha256."""
    content = wheel_bytes(name, version)
    body, headers = upload_form(wheel_filename(name, version), content, name, version)
    code, answer = call(daemon, "POST", f"/api/v4/projects/{project}/packages/pypi",
                        daemon.token, body, headers)
    assert code == 201, answer
    return hashlib.sha256(content).hexdigest()


def listed(daemon: Daemon, path: str) -> dict[str, str]:
    code, body = call(daemon, "GET", path, daemon.token, headers=JSON)
    assert code == 200, (code, body)
    return {entry["filename"]: entry["hashes"]["sha256"] for entry in json.loads(body)["files"]}


def test_a_write_on_one_is_read_on_the_other_at_once(pair: tuple[Daemon, Daemon]) -> None:
    """Upload on A, then at once read on B: its project page, its group's page, the root
    index and the file itself, 40 times over, with B's caches warm before each upload.
    Under the 0.5 s data_version poll alone, B served its cached page (without the new
    file) for up to half a second."""
    first, second = pair
    project = first.cli("project", "create", "acme/shared").stdout.strip()
    simple = f"/api/v4/projects/{project}/packages/pypi/simple"
    group = "/api/v4/groups/acme/-/packages/pypi/simple"
    assert call(second, "GET", f"{simple}/shared/", second.token)[0] == 404
    expected: dict[str, str] = {}
    for number in range(40):
        for daemon in (first, second):  # both caches warm: the next read is a cached one
            code, _ = call(daemon, "GET", f"{simple}/shared/", daemon.token, headers=JSON)
            assert code == (200 if expected else 404)
        version = f"1.{number}"
        sha256 = upload(first, project, "shared", version)
        expected[wheel_filename("shared", version)] = sha256
        assert listed(second, f"{simple}/shared/") == expected
        assert listed(second, f"{group}/shared/") == expected
        code, root = call(second, "GET", f"{simple}/", second.token, headers=JSON)
        assert code == 200 and [p["name"] for p in json.loads(root)["projects"]] == ["shared"]
        code, content = call(second, "GET", f"/api/v4/projects/{project}/packages/pypi/files/"
                             f"{sha256}/{wheel_filename('shared', version)}", second.token)
        assert code == 200 and hashlib.sha256(content).hexdigest() == sha256


def make_token(daemon: Daemon) -> tuple[int, str]:
    code, body = call(daemon, "POST", "/api/v4/users/1/personal_access_tokens", daemon.token,
                      json.dumps({"name": "ci", "scopes": ["api"]}).encode(),
                      {"Content-Type": "application/json"})
    assert code == 201, body
    made = json.loads(body)
    return int(made["id"]), str(made["token"])


def test_a_token_revoked_through_either_is_refused_by_both(
        pair: tuple[Daemon, Daemon]) -> None:
    """Each token is used on both daemons first (so both hold it in memory, the fast lane
    too), revoked through one, and refused by the other on its very next request; and a
    token revoked with the CLI is refused by both at once."""
    first, second = pair
    project = first.cli("project", "create", "acme/tokens").stdout.strip()
    page = f"/api/v4/projects/{project}/packages/pypi/simple/"
    for number in range(10):
        revoking, other = (first, second) if number % 2 == 0 else (second, first)
        token_id, token = make_token(revoking)
        for daemon in (first, second):
            assert call(daemon, "GET", "/api/v4/user", token)[0] == 200
            assert call(daemon, "GET", page, token)[0] == 200
        code, body = call(revoking, "DELETE", f"/api/v4/personal_access_tokens/{token_id}",
                          revoking.token)
        assert code == 204, body
        assert call(other, "GET", page, token)[0] == 401
        assert call(other, "GET", "/api/v4/user", token)[0] == 401
        assert call(revoking, "GET", page, token)[0] == 401
    token_id, token = make_token(first)
    for daemon in (first, second):
        assert call(daemon, "GET", page, token)[0] == 200
    first.cli("token", "revoke", str(token_id))
    for daemon in (first, second):
        assert call(daemon, "GET", page, token)[0] == 401


def test_uploads_through_both_all_land(pair: tuple[Daemon, Daemon]) -> None:
    """400 uploads, half to each daemon, 8 at a time on each: SQLite takes one writer at a
    time and the busy ones wait; every upload is 201 and both daemons list all of them."""
    first, second = pair
    project = first.cli("project", "create", "acme/both").stdout.strip()

    def send(number: int) -> str:
        return upload((first, second)[number % 2], project, "both", f"2.{number}")

    with ThreadPoolExecutor(16) as pool:
        hashes = list(pool.map(send, range(400)))
    expected = {wheel_filename("both", f"2.{n}"): sha for n, sha in enumerate(hashes)}
    for daemon in (first, second):
        assert listed(daemon, f"/api/v4/projects/{project}/packages/pypi/simple/both/") \
            == expected


def test_a_daemon_starting_leaves_the_other_one_uploads_alone(tmp_path: Path) -> None:
    """A starts receiving an upload; B starts on the same data dir (sweeping leftover temp
    files) before the rest of the body arrives; the upload still lands whole."""
    first = Daemon(tmp_path / "data").start()
    second: Daemon | None = None
    try:
        project = first.cli("project", "create", "acme/slow").stdout.strip()
        content = wheel_bytes("slow", "1.0", padding=2_000_000)
        body, headers = upload_form(wheel_filename("slow", "1.0"), content, "slow", "1.0")
        address = urlsplit(first.url)
        with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
            head = (f"POST /api/v4/projects/{project}/packages/pypi HTTP/1.1\r\n"
                    f"Host: {address.netloc}\r\nPrivate-Token: {first.token}\r\n"
                    f"Content-Type: {headers['Content-Type']}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            sock.sendall(head + body[:len(body) // 2])
            temp = tmp_path / "data" / "tmp"
            until_temp_file(first, temp)
            second = Daemon(tmp_path / "data").start()
            sock.sendall(body[len(body) // 2:])
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        sha256 = hashlib.sha256(content).hexdigest()
        assert listed(second, f"/api/v4/projects/{project}/packages/pypi/simple/slow/") == {
            wheel_filename("slow", "1.0"): sha256}
        code, got = call(second, "GET", f"/api/v4/projects/{project}/packages/pypi/files/"
                         f"{sha256}/{wheel_filename('slow', '1.0')}", second.token)
        assert code == 200 and got == content
    finally:
        if second is not None:
            second.stop()
        first.stop()


def until_temp_file(daemon: Daemon, temp: Path) -> None:
    """Wait until the daemon has begun writing the upload to a temp file (/-/metrics shows
    the upload in progress once its form is being parsed; the file is there by then)."""
    for _ in range(2000):
        names = [path for path in temp.iterdir() if path.name.endswith(".part")]
        if names and names[0].stat().st_size > 0:
            return
        call(daemon, "GET", "/-/health")  # a round trip to the daemon, not a sleep
    raise AssertionError("the upload never reached a temp file")


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pip_installs_through_nginx_in_front_of_two_daemons(
        pair: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    """conf/nginx.conf's upstream block with both daemons: twine uploads and pip installs
    through nginx, whichever daemon each request reaches."""
    first, second = pair
    project = first.cli("project", "create", "acme/spread").stdout.strip()
    with running_nginx(tmp_path / "nginx", [first.url, second.url],
                       tmp_path / "data" / "blobs" / "sha256") as url:
        for version in ("1.0", "1.1"):
            (tmp_path / version).mkdir()
            wheel = write_wheel(tmp_path / version, "spread", version)
            twine("upload", "--repository-url",
                  f"{url}/api/v4/projects/{project}/packages/pypi",
                  "-u", "__token__", "-p", first.token, str(wheel))
        host = url.removeprefix("http://")
        index = (f"http://__token__:{first.token}@{host}/api/v4/projects/{project}"
                 "/packages/pypi/simple/")
        site = pip_install(tmp_path, index, "spread")
        assert imported_value(site, "spread") == "1.1"
    served = [requests_answered(daemon) for daemon in (first, second)]
    assert all(count > 0 for count in served), served


def requests_answered(daemon: Daemon) -> float:
    code, body = call(daemon, "GET", "/-/metrics")
    assert code == 200
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("pypid_requests_total{") and 'endpoint="metrics"' not in line:
            total += float(line.split()[-1])
    return total


def test_two_daemons_started_together_on_a_new_data_dir(tmp_path: Path) -> None:
    """Both create the data dir at once: the schema is made once, root once (the one
    whose insert lost leaves the token to the other), and both serve."""
    daemons = [Daemon(tmp_path / "data"), Daemon(tmp_path / "data")]
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda daemon: daemon.start(), daemons))
    try:
        token = started[0].token
        for daemon in started:
            code, body = call(daemon, "GET", "/api/v4/users", token)
            assert code == 200, body
            assert [user["username"] for user in json.loads(body)] == ["root"]
    finally:
        for daemon in started:
            daemon.stop()


def test_failed_sign_ins_through_both_make_one_ban(tmp_path: Path) -> None:
    """Bad tokens sent to each daemon in turn add up to one --auth-failure-limit, and the
    ban holds at both (GitLab counts in Redis for all its workers): a client cannot get
    the limit once per daemon."""
    options = ["--auth-failure-limit", "4", "--auth-allow", "192.0.2.0/24"]
    first = Daemon(tmp_path / "data", args=options).start()
    second = Daemon(tmp_path / "data", args=options).start()
    try:
        page = "/api/v4/projects/1/packages/pypi/simple/"
        first.cli("project", "create", "acme/guarded")
        for daemon in (first, second, first, second):
            assert call(daemon, "GET", page, "glpat-wrong")[0] == 401
        for daemon in (first, second):
            code, _ = call(daemon, "GET", page, first.token)  # even a good token
            assert code == 429
    finally:
        second.stop()
        first.stop()
