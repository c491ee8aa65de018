"""Answers written straight to a real socket: downloads (sendfile) and big pages.

The in-memory HTTP tests cannot reach these paths (they need a TCP socket), so these
read raw HTTP/1.1 off a socket: keep-alive and pipelined answers, a reader too slow for
the server's writes, ranges, HEAD and HTTP/1.0.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest

from pypid.web.pypi import DIRECT_MIN
from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.e2e.daemon import Daemon
from tests.e2e.test_uploads import post


class Files:
    def __init__(self, daemon: Daemon, padding: int = 6 * 1024 * 1024,
                 project_path: str = "acme/dl") -> None:
        project = daemon.cli("project", "create", project_path).stdout.strip()
        self.big = wheel_bytes("dl", "1.0", padding=padding)
        self.small = wheel_bytes("dl", "1.1")
        self.paths = {}
        for version, content in (("1.0", self.big), ("1.1", self.small)):
            filename = wheel_filename("dl", version)
            body, headers = upload_form(filename, content, "dl", version)
            assert post(daemon, project, body, headers)[0] == 201
            sha = hashlib.sha256(content).hexdigest()
            self.paths[version] = f"/api/v4/projects/{project}/packages/pypi/files/{sha}/{filename}"
        credentials = base64.b64encode(f"__token__:{daemon.token}".encode()).decode()
        self.auth = f"Authorization: Basic {credentials}\r\n"
        address = urlsplit(daemon.url)
        self.address = (address.hostname or "127.0.0.1", address.port or 80)

    def request(self, path: str, method: str = "GET", extra: str = "",
                version: str = "HTTP/1.1") -> bytes:
        return (f"{method} {path} {version}\r\nHost: x\r\n{self.auth}{extra}\r\n").encode()


@pytest.fixture
def files(daemon: Daemon) -> Files:
    return Files(daemon)


def read_answer(stream: BinaryIO, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    status = stream.readline()
    assert status.startswith(b"HTTP/1.1 "), status
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = stream.read(length)
    assert len(body) == length, "the answer was cut short"
    return int(status.split()[1]), headers, body


def narrow_socket(files: Files, timeout: float = 60) -> socket.socket:
    """A client connection with a tiny receive buffer: the server's socket fills quickly."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(timeout)
    client.connect(files.address)
    return client


def read_head(stream: BinaryIO) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += stream.read(1)
    return head


def read_body_digest(stream: BinaryIO, size: int, piece: int, pace: float = 0.0) -> str:
    """The sha256 of size bytes read piece by piece (pace: seconds between reads)."""
    digest, received = hashlib.sha256(), 0
    while received < size:
        chunk = stream.read(min(piece, size - received))
        assert chunk, "the connection closed mid-file"
        digest.update(chunk)
        received += len(chunk)
        if pace:
            time.sleep(pace)  # the pace of a slow link
    return digest.hexdigest()


def test_keep_alive_and_pipelined_downloads(files: Files) -> None:
    """Five answers sent back to back on one connection arrive whole and in order."""
    with socket.create_connection(files.address, timeout=60) as client:
        client.sendall(b"".join([
            files.request(files.paths["1.0"]),
            files.request(files.paths["1.1"]),
            files.request(files.paths["1.0"], extra="Range: bytes=100-199\r\n"),
            files.request(files.paths["1.0"], method="HEAD"),
            files.request(files.paths["1.0"]),
        ]))
        stream = client.makefile("rb")
        code, headers, body = read_answer(stream)
        assert (code, body) == (200, files.big)
        assert headers["etag"] == f'"{hashlib.sha256(files.big).hexdigest()}"'
        assert read_answer(stream)[::2] == (200, files.small)
        code, headers, body = read_answer(stream)
        assert (code, body, headers["content-range"]) == (
            206, files.big[100:200], f"bytes 100-199/{len(files.big)}")
        code, headers, _ = read_answer(stream, head_only=True)
        assert (code, int(headers["content-length"])) == (200, len(files.big))
        assert read_answer(stream)[::2] == (200, files.big)


def test_a_request_sent_during_a_download_waits_its_turn(files: Files) -> None:
    """The next request arrives while a download from memory (the lean lane, sendfile) is
    still being written: it is kept, and answered whole once the download is done."""
    with socket.create_connection(files.address, timeout=60) as warm:
        warm.sendall(files.request(files.paths["1.0"]) + files.request(files.paths["1.1"]))
        stream = warm.makefile("rb")
        assert read_answer(stream)[0] == read_answer(stream)[0] == 200  # now in memory
    with narrow_socket(files) as client:
        client.sendall(files.request(files.paths["1.0"]))
        stream = client.makefile("rb", buffering=0)
        assert stream.readline().startswith(b"HTTP/1.1 200 ")  # the download has begun
        client.sendall(files.request(files.paths["1.1"]) + files.request(files.paths["1.0"],
                                                                          method="HEAD"))
        read_head(stream)
        assert read_body_digest(stream, len(files.big), 65536) == hashlib.sha256(
            files.big).hexdigest()
        rest = client.makefile("rb")
        assert read_answer(rest)[::2] == (200, files.small)
        code, headers, _ = read_answer(rest, head_only=True)
        assert (code, int(headers["content-length"])) == (200, len(files.big))


def test_idle_keep_alive_connections_still_time_out(tmp_path: Path) -> None:
    """After answers from memory, an idle connection is closed at the request timeout, and
    a request whose head never ends is still cut."""
    daemon = Daemon(tmp_path / "data", args=["--request-timeout", "2"]).start()
    try:
        files = Files(daemon)
        for incomplete in (False, True):
            with socket.create_connection(files.address, timeout=30) as client:
                stream = client.makefile("rb")
                for _ in range(3):
                    client.sendall(files.request(files.paths["1.1"]))
                    assert read_answer(stream)[0] == 200
                if incomplete:
                    client.sendall(files.request(files.paths["1.1"])[:30])
                rest = stream.read()  # returns once the server closes the connection
                assert rest == b"" or rest.startswith(b"HTTP/1.1 408")
        # A reader slow but steady, whose download lasts past the request timeout: the
        # idle timeout is off while an answer is written, so the file arrives whole.
        files = Files(daemon, padding=12 * 1024 * 1024, project_path="acme/big")
        for _ in range(2):  # the first fills the caches, the second is from memory
            with narrow_socket(files, timeout=30) as client:
                client.sendall(files.request(files.paths["1.0"]))
                stream = client.makefile("rb", buffering=0)
                started = time.monotonic()
                read_head(stream)
                assert read_body_digest(stream, len(files.big), 4096, pace=0.002) == \
                    hashlib.sha256(files.big).hexdigest()  # at most 2 MB/s
                assert time.monotonic() - started > 2
    finally:
        daemon.stop()


def test_reader_slower_than_the_server(files: Files) -> None:
    """A client with a tiny receive buffer, read in small pieces: the server's socket fills
    again and again (sendfile would block), and the file still arrives whole, followed by a
    good second answer on the same connection."""
    with narrow_socket(files) as client:
        client.sendall(files.request(files.paths["1.0"]) + files.request(files.paths["1.1"]))
        stream = client.makefile("rb", buffering=0)
        assert read_head(stream).startswith(b"HTTP/1.1 200 ")
        assert read_body_digest(stream, len(files.big), 4096) == hashlib.sha256(
            files.big).hexdigest()
        assert read_answer(client.makefile("rb"))[::2] == (200, files.small)


def test_http_1_0_download_then_close(files: Files) -> None:
    with socket.create_connection(files.address, timeout=60) as client:
        client.sendall(files.request(files.paths["1.0"], version="HTTP/1.0"))
        chunks = []
        while chunk := client.recv(1 << 20):
            chunks.append(chunk)  # the server closes the connection after the body
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") or head.startswith(b"HTTP/1.1 200 ")
    assert body == files.big


def test_a_client_that_stops_reading_is_cut_off(tmp_path: Path) -> None:
    """Twisted's idle timeout is off while an answer is written; pypid cuts a download
    whose client has read nothing for the request timeout, closing the blob with it."""
    daemon = Daemon(tmp_path / "data", args=["--request-timeout", "2"]).start()
    try:
        files = Files(daemon, padding=16 * 1024 * 1024)
        with narrow_socket(files) as client:
            client.sendall(files.request(files.paths["1.0"]))
            daemon.wait_for_line(re.compile("cutting a download whose client stopped reading"))
            received = 0
            try:
                while chunk := client.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
        assert received < len(files.big)
        assert daemon.get("/-/health")[0] == 200  # and the daemon serves on
    finally:
        daemon.stop()


def test_big_pages_sent_straight_to_the_socket_match_klein(daemon: Daemon) -> None:
    """A page over DIRECT_MIN (300 files) is answered first by the Klein route (cold cache),
    then by the fast lane straight to the socket: same bytes, and the connection goes on."""
    project = daemon.cli("project", "create", "acme/many").stdout.strip()

    def upload(n: int) -> int:
        version = f"1.{n}"
        body, headers = upload_form(wheel_filename("many", version),
                                    wheel_bytes("many", version), "many", version)
        return post(daemon, project, body, headers)[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(upload, range(300))) == {201}
    files = Files(daemon)
    page = f"/api/v4/projects/{project}/packages/pypi/simple/many/"
    with socket.create_connection(files.address, timeout=60) as client:
        stream = client.makefile("rb")
        answers = []
        for _ in range(3):  # one at a time: pipelined, the answers queue in the transport
            client.sendall(files.request(page))
            answers.append(read_answer(stream))
        client.sendall(files.request(files.paths["1.1"]))
        assert read_answer(stream)[::2] == (200, files.small)
    assert len(answers[0][2]) > DIRECT_MIN
    for code, headers, body in answers:
        headers.pop("date")
        assert (code, headers, body) == (200, answers[0][1], answers[0][2])
    assert "content-encoding" not in answers[0][1]  # nobody asked for gzip
    with socket.create_connection(files.address, timeout=60) as client:
        stream = client.makefile("rb")
        client.sendall(files.request(page, extra="Accept-Encoding: gzip, deflate\r\n"))
        code, headers, body = read_answer(stream)
        assert (code, headers["content-encoding"]) == (200, "gzip")
        assert gzip.decompress(body) == answers[0][2] and len(body) < len(answers[0][2]) / 4
        assert headers["etag"] == answers[0][1]["etag"][:-1] + '-gzip"'
        client.sendall(files.request(page, extra="Accept-Encoding: gzip;q=0\r\n"))
        code, headers, body = read_answer(stream)
        assert "content-encoding" not in headers and body == answers[0][2]
