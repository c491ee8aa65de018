"""The lean lane (pypid.web.lean): a plain GET answered from memory without twisted.web's
Request, byte for byte as twisted.web answers it; everything else left to Twisted."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from pypid.web import lean, pypi
from pypid.web.site import PypidRequest
from tests.dists import wheel_bytes, wheel_filename
from tests.web.conftest import World
from tests.web.helpers import Client

CONTENT = wheel_bytes("pkg", "1.0", padding=300_000)
JSON = "application/vnd.pypi.simple.v1+json"


class Connection:
    """One client connection to the Site, fed raw bytes."""

    def __init__(self, client: Client) -> None:
        self.protocol = client.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> bytes:
        self.transport.clear()
        self.protocol.dataReceived(data)
        return bytes(self.transport.value())


def head_and_body(answer: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *headers = head.split(b"\r\n")
    return status, sorted(h for h in headers if not h.lower().startswith(b"date:")), body


def request(path: str, auth: tuple[str, str] | None, extra: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: pypid.test"]
    if auth is not None:
        lines.append("Authorization: Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode())
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class Processed:
    """Counts the requests twisted.web processed (a lean answer makes none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = PypidRequest.process

        def counting(request: PypidRequest) -> None:
            self.count += 1
            original(request)

        monkeypatch.setattr(PypidRequest, "process", counting)


@pytest.fixture
def uploaded(world: World) -> World:
    reply = world.client.upload(world.private_id, wheel_filename("pkg", "1.0"), CONTENT,
                                "pkg", "1.0", world.tokens["dev"])
    assert reply.code == 201
    return world


def urls(world: World) -> dict[str, str]:
    base = f"/api/v4/projects/{world.private_id}/packages/pypi"
    file = f"{base}/files/{hashlib.sha256(CONTENT).hexdigest()}/{wheel_filename('pkg', '1.0')}"
    return {"root": f"{base}/simple/", "page": f"{base}/simple/pkg/", "file": file,
            "metadata": file + ".metadata"}


@pytest.mark.parametrize(("which", "extra"), [
    ("root", ""), ("page", ""), ("page", f"Accept: {JSON}\r\n"),
    ("page", "Accept-Encoding: gzip\r\n"), ("file", ""), ("file", "Range: bytes=10-99\r\n"),
    ("file", "Range: bytes=999999999-\r\n"), ("metadata", ""),
    ("file", "Connection: keep-alive\r\n"), ("page", "User-Agent: pip/26.3 \u00e9\r\n"),
])
def test_lean_answers_are_twisted_answers(uploaded: World, which: str, extra: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Once memory holds the answer, the lean lane gives the bytes twisted.web gives (a
    cookie, which no registry endpoint reads, sends the same request the Twisted way)."""
    world = uploaded
    url = urls(world)[which]
    auth = world.tokens["rita"]
    assert world.client.get(url, auth=auth).code == 200  # fills the caches
    processed = Processed(monkeypatch)
    connection = Connection(world.client)
    raw = request(url, auth, extra).replace(b"\xc3\xa9", b"\xe9")
    by_twisted = connection.send(raw.replace(b"\r\n\r\n", b"\r\nCookie: a=b\r\n\r\n"))
    assert processed.count == 1
    by_lean = connection.send(raw)
    assert processed.count == 1, "the lean lane did not answer"
    assert head_and_body(by_lean) == head_and_body(by_twisted)
    assert by_lean.startswith((b"HTTP/1.1 200 ", b"HTTP/1.1 206 ", b"HTTP/1.1 416 "))


def test_not_modified_is_lean_and_without_body(uploaded: World,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    world = uploaded
    url = urls(world)["file"]
    auth = world.tokens["rita"]
    etag = world.client.get(url, auth=auth).header("etag")
    processed = Processed(monkeypatch)
    connection = Connection(world.client)
    raw = request(url, auth, f"If-None-Match: {etag}\r\n")
    by_twisted = connection.send(raw.replace(b"\r\n\r\n", b"\r\nCookie: a=b\r\n\r\n"))
    by_lean = connection.send(raw)
    assert processed.count == 1
    assert head_and_body(by_lean) == head_and_body(by_twisted)
    assert by_lean.startswith(b"HTTP/1.1 304 ") and by_lean.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("who", ["outsider", None, "bad"])
def test_refusals_are_twisted_answers(uploaded: World, who: str | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the gate's peek does not allow goes to Twisted and Klein, unchanged."""
    world = uploaded
    url = urls(world)["file"]
    assert world.client.get(url, auth=world.tokens["rita"]).code == 200
    auth = ("__token__", "glpat-nope") if who == "bad" else (
        world.tokens[who] if who else None)
    processed = Processed(monkeypatch)
    answer = Connection(world.client).send(request(url, auth))
    assert processed.count == 1
    assert answer.startswith((b"HTTP/1.1 404 ", b"HTTP/1.1 401 "))


def test_a_miss_is_answered_by_twisted_and_counted_once(uploaded: World,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    world = uploaded
    stats = world.client.harness.app.metrics.stats  # type: ignore[union-attr]
    url = urls(world)["page"]
    processed = Processed(monkeypatch)
    answer = Connection(world.client).send(request(url, world.tokens["rita"]))
    assert answer.startswith(b"HTTP/1.1 200 ") and processed.count == 1
    assert stats.answers.get(("simple_package", "klein")) == 1
    assert stats.answers.get(("simple_package", "memory")) is None
    Connection(world.client).send(request(url, world.tokens["rita"]))
    assert processed.count == 1
    assert stats.answers.get(("simple_package", "memory")) == 1
    assert stats.requests[("simple_package", "2xx")] == 2


def test_a_failing_answer_falls_back_before_writing(uploaded: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer that raises before writing leaves nothing behind: Twisted runs the
    request again and answers its failure; the connection goes on."""
    world = uploaded
    url = urls(world)["file"]
    auth = world.tokens["rita"]
    assert world.client.get(url, auth=auth).code == 200
    calls = []

    def broken(*args: Any) -> None:
        calls.append(args)
        raise RuntimeError("boom")

    connection = Connection(world.client)
    with monkeypatch.context() as patch:
        patch.setattr(pypi, "file_in_memory", broken)
        answer = connection.send(request(url, auth))
    assert len(calls) == 2  # lean, then Twisted's fast lane
    assert answer.startswith(b"HTTP/1.1 500 ") and answer.count(b"HTTP/1.1") == 1
    assert connection.send(request(url, auth)).startswith(b"HTTP/1.1 200 ")


def test_pipelined_and_mixed_requests_on_one_connection(uploaded: World) -> None:
    world = uploaded
    auth = world.tokens["rita"]
    for url in urls(world).values():
        assert world.client.get(url, auth=auth).code == 200
    connection = Connection(world.client)
    two = connection.send(request(urls(world)["page"], auth) + request(urls(world)["root"], auth))
    assert two.count(b"HTTP/1.1 200 OK") == 2
    # A head that arrives in pieces is Twisted's; then lean again on the same connection.
    raw = request(urls(world)["file"], auth)
    assert connection.send(raw[:20]) == b""
    assert connection.send(raw[20:]).startswith(b"HTTP/1.1 200 ")
    assert connection.send(raw).startswith(b"HTTP/1.1 200 ")
    assert not connection.transport.disconnecting


def test_connection_close_is_twisted_and_closes(uploaded: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    world = uploaded
    url = urls(world)["page"]
    assert world.client.get(url, auth=world.tokens["rita"]).code == 200
    processed = Processed(monkeypatch)
    connection = Connection(world.client)
    answer = connection.send(request(url, world.tokens["rita"], "Connection: close\r\n"))
    assert processed.count == 1
    assert b"\r\nConnection: close\r\n" in answer
    assert connection.transport.disconnecting


PLAIN = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize("raw", [
    b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\n",  # not all in yet
    PLAIN + PLAIN,  # pipelined
    PLAIN + b"x",
    b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute form
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",  # raw UTF-8 in the target
    b"GET /x  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    b"GET /x HTTP/1.1\r\nno colon\r\n\r\n",
    b"GET /x HTTP/1.1\r\n: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\nb\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\x00\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
    b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    b"GET /x HTTP/1.1\r\ncookie: a=b\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n",
    b"GET /x HTTP/1.1\r\nX: " + b"y" * 17000 + b"\r\n\r\n",
])
def test_only_the_plainest_requests_are_lean(raw: bytes) -> None:
    assert lean.parse(None, raw) is None  # type: ignore[arg-type]


def test_what_the_parse_keeps() -> None:
    parsed = lean.parse(None, (  # type: ignore[arg-type]
        b"GET /a/b%2Fc?x=1&y HTTP/1.1\r\nHost: h\r\nAccept:  text/html \t\r\nX-A: 1\r\n"
        b"x-a: 2\r\nX-Empty:\r\nX-Bytes: \xe9\xff\r\n\r\n"))
    assert parsed is not None
    assert (parsed.uri, parsed.path) == (b"/a/b%2Fc?x=1&y", b"/a/b%2Fc")
    assert parsed.getHeader(b"accept") == b"text/html"
    assert parsed.requestHeaders.getRawHeaders(b"X-A") == [b"1", b"2"]
    assert parsed.getHeader(b"x-a") == b"2"
    assert parsed.getHeader(b"x-empty") == b""
    assert parsed.getHeader(b"x-bytes") == b"\xe9\xff"
    assert parsed.getHeader(b"missing") is None
    assert parsed.getCookie(b"pypid_session") is None


def test_answer_headers_cannot_be_split() -> None:
    """CR and LF in a value become spaces, as twisted.web's Headers make them."""
    parsed = lean.parse(None, PLAIN)  # type: ignore[arg-type]
    assert parsed is not None
    parsed.setHeader(b"X-A", b"one\r\nSet-Cookie: evil")
    parsed.setHeader(b"X-B", "caf\u00e9\nx")  # type: ignore[arg-type]
    parsed.setHeader(b"Content-Length", b"0")
    head = parsed.head_bytes()
    assert b"X-A: one Set-Cookie: evil\r\n" in head
    assert "X-B: caf\u00e9 x\r\n".encode() in head
    assert re.fullmatch(rb"HTTP/1\.1 200 OK\r\n(?:[^\r\n]+\r\n)+\r\n", head)


def test_any_character_in_path_or_header_is_answered_below_500(uploaded: World) -> None:
    """Every code point, raw and percent-encoded, in a package name and in a header value:
    one answer each, never a 5xx, whichever lane takes it."""
    world = uploaded
    auth = world.tokens["rita"]
    base = f"/api/v4/projects/{world.private_id}/packages/pypi/simple/"
    assert world.client.get(base + "pkg/", auth=auth).code == 200
    connection = Connection(world.client)
    points = [*range(0, 0x300), 0x2028, 0x212A, 0xD800, 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF]
    for point in points:
        text = chr(point).encode("utf-8", "surrogatepass")
        quoted = "".join(f"%{byte:02X}" for byte in text)
        for raw in (
            request(base + f"pkg{quoted}/", auth),
            request(base + "pkg/", auth).replace(b"Host: pypid.test", b"Accept: " + text),
            request(base + "pkg/", auth).replace(b"pypid.test", b"a" + text),
            request(base, auth).replace(b"/simple/ ", b"/simple/" + text + b" "),
        ):
            if connection.transport.disconnecting:
                connection = Connection(world.client)
            answer = connection.send(raw)
            status = answer.split(b"\r\n", 1)[0]
            assert re.fullmatch(rb"HTTP/1\.1 [1-4]\d\d .*", status), (point, raw, status)
            assert answer.count(b"\r\n\r\n") >= 1


def test_credentials_kept_on_a_connection_follow_its_header(uploaded: World) -> None:
    """The last parse of the Authorization header is kept on the connection: another
    header on the same connection is parsed anew, and a token revoked between two requests
    is refused on the next one (the principal is looked up every time)."""
    world = uploaded
    url = urls(world)["file"]
    registry = world.client.harness.registry
    registry.create_user("eve")
    registry.add_member(world.private_id, "eve", "reporter")
    token_id, secret = registry.create_token("eve", "read_api")
    connection = Connection(world.client)
    for auth, status in ((("__token__", secret), b"200"), (world.tokens["outsider"], b"404"),
                         (("__token__", secret), b"200"), (("x", "y:z"), b"401"),
                         (("__token__", secret), b"200")):
        answer = connection.send(request(url, auth))
        assert answer.startswith(b"HTTP/1.1 " + status), (auth, answer[:40])
    registry.revoke_token(token_id)
    world.client.harness.app.services.caches.clear()  # as the revoking process publishes
    assert connection.send(request(url, ("__token__", secret))).startswith(b"HTTP/1.1 401")


def test_web_pages_are_never_lean(uploaded: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A web page (a session endpoint, with its own headers and sign-in) is twisted.web's
    every time, even for an anonymous visitor without cookies whose page is cached: the
    fast lane declines it to the lean lane outright."""
    world = uploaded
    page = "/acme/public/-/packages"
    assert world.client.get(page).code == 200
    connection = Connection(world.client)
    parsed = lean.parse(connection.protocol, request(page, None))  # type: ignore[arg-type]
    assert parsed is not None
    assert world.client.harness.app.resource().lean_answer(parsed) is None  # type: ignore[attr-defined]
    processed = Processed(monkeypatch)
    for count in (1, 2):
        assert connection.send(request(page, None)).startswith(b"HTTP/1.1 200 ")
        assert processed.count == count
