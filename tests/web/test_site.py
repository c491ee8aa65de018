"""pypid's Site: bodies spooled into the data dir, capped at the upload limit."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from pypid.web.site import IN_MEMORY_BODY, PypidSite, SpooledBody
from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.web.helpers import Client, new_client


def raw_request(client: Client, request: bytes) -> bytes:
    """Feed raw bytes to a connection of the client's Site; return what it answered."""
    protocol = client.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(request)
    return transport.value()


def setup(tmp_path: Path, limit: int) -> tuple[Client, str]:
    client = new_client(tmp_path, max_upload_size=limit)
    client.harness.registry.create_project("a/b")
    secret = client.harness.registry.create_token("root", "api")[1]
    return client, secret


def chunked(body: bytes, size: int = 1000) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start:start + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def headers(secret: str, content_type: str, extra: str) -> bytes:
    from base64 import b64encode

    auth = b64encode(f"__token__:{secret}".encode()).decode()
    return (f"POST /api/v4/projects/1/packages/pypi HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: {content_type}\r\n{extra}\r\n"
            ).encode()


def test_chunked_upload_is_accepted(tmp_path: Path) -> None:
    """A chunked body within the limit is a normal upload."""
    client, secret = setup(tmp_path, 100_000)
    body, form = upload_form(wheel_filename("pkg", "1.0"), wheel_bytes("pkg", "1.0"), "pkg", "1.0")
    answer = raw_request(client, headers(secret, form["Content-Type"],
                                         "Transfer-Encoding: chunked\r\n") + chunked(body))
    assert answer.startswith(b"HTTP/1.1 201 Created")


def test_chunked_upload_over_the_limit_is_413(tmp_path: Path) -> None:
    """A chunked body is counted as it streams and refused once past the limit."""
    client, secret = setup(tmp_path, 5_000)
    content = os.urandom(20_000)
    body, form = upload_form(wheel_filename("pkg", "1.0"), content, "pkg", "1.0")
    answer = raw_request(client, headers(secret, form["Content-Type"],
                                         "Transfer-Encoding: chunked\r\n") + chunked(body))
    assert answer.startswith(b"HTTP/1.1 413 File too large: ")
    assert b"limit 5000" in answer.split(b"\r\n")[0]
    assert client.harness.blobs.keys() == []
    assert list(client.harness.blobs.temp_dir.iterdir()) == []


def test_content_length_over_the_limit_is_not_stored(tmp_path: Path) -> None:
    """With Content-Length over the limit, the body is discarded as it arrives, then 413."""
    client, secret = setup(tmp_path, 5_000)
    body = b"x" * 20_000
    answer = raw_request(client, headers(secret, "multipart/form-data; boundary=b",
                                         f"Content-Length: {len(body)}\r\n") + body)
    assert answer.startswith(b"HTTP/1.1 413 File too large: 20000 bytes, limit 5000")


def test_spool_goes_to_the_data_dir(tmp_path: Path) -> None:
    """Small bodies stay in memory; larger ones go to an unlinked file in the spool dir."""
    spool = SpooledBody(tmp_path)
    spool.write(b"a" * 10)
    assert not spool._on_disk
    spool.write(b"b" * IN_MEMORY_BODY)
    assert spool._on_disk
    assert spool._stream.name is not None and not isinstance(spool._stream.name, str)
    spool.seek(0)
    assert spool.read() == b"a" * 10 + b"b" * IN_MEMORY_BODY
    spool.close()


def test_site_does_not_parse_forms(tmp_path: Path) -> None:
    """twisted.web's own multipart parsing is off (STYLE.md pitfall 2)."""
    client, _ = setup(tmp_path, 1000)
    assert isinstance(client.site, PypidSite)
    assert client.site._parsePOSTFormSubmission is False


def test_body_below_the_rate_floor_is_cut(tmp_path: Path) -> None:
    """A body that trickles in below the floor is cut once the grace period has passed."""
    client, secret = setup(tmp_path, 1_000_000)
    client.site.min_body_rate = 1024
    clock = client.site.reactor
    protocol = client.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(headers(secret, "multipart/form-data; boundary=b",
                                  "Content-Length: 100000\r\n"))
    for _ in range(5):
        clock.advance(1)  # type: ignore[attr-defined]
        protocol.dataReceived(b"x" * 2000)  # 2 kB/s: fine
    assert not transport.disconnecting
    for _ in range(20):
        clock.advance(1)  # type: ignore[attr-defined]
        protocol.dataReceived(b"x")  # now a trickle
        if transport.disconnecting:
            break
    assert transport.disconnecting
    assert client.harness.blobs.keys() == []
