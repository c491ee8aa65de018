"""The defects found from outside (issue 10), each reproduced as it was reported."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher

from pypid.dists.metadata import parse_raw, servable
from pypid.web.site import PypidSite
from tests.dists import (
    metadata_text,
    sdist_bytes,
    sdist_filename,
    upload_form,
    wheel_bytes,
    wheel_filename,
)
from tests.web.conftest import World
from tests.web.helpers import Client, absolute, parse_links

JSON = "application/vnd.pypi.simple.v1+json"


def simple(project: int, rest: str = "") -> str:
    return f"/api/v4/projects/{project}/packages/pypi/simple/{rest}"


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """Every critical or error event logged while the test runs (tracebacks of 500s)."""
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") in (LogLevel.critical, LogLevel.error) or event.get(
                "log_failure") is not None:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


# -- 1. identical bytes under two file names ---------------------------------------------


def test_two_files_with_the_same_bytes_both_download(world: World) -> None:
    """Wheels for two tags with identical bytes are two files: each listed one downloads,
    with its metadata, in both lanes."""
    client, dev = world.client, world.tokens["dev"]
    content = wheel_bytes("twin", "1.0")
    names = ["twin-1.0-py2-none-any.whl", "twin-1.0-py3-none-any.whl"]
    for filename in names:
        assert client.upload(world.private_id, filename, content, "twin", "1.0", dev).code == 201
    page_url = simple(world.private_id, "twin/")
    links = parse_links(client.get(page_url, auth=dev))
    assert [text for text, _ in links] == names
    for _ in range(2):  # the first fills the caches (Klein), the second is answered from them
        for text, attributes in links:
            href = absolute(page_url, str(attributes["href"])).split("#")[0]
            answer = client.get(href, auth=dev)
            assert answer.code == 200 and answer.body == content
            assert text in (answer.header("Content-Disposition") or "")
            assert client.get(href + ".metadata", auth=dev).code == 200


# -- 2. core metadata advertised only where PEP 658/643 back it ---------------------------


def pkg_info(version: str, *extra: str) -> str:
    return "\n".join([f"Metadata-Version: {version}", "Name: old", "Version: 1.0",
                      *extra]) + "\n\n"


@pytest.mark.parametrize(
    ("metadata", "advertised"),
    [(pkg_info("1.0"), False), (pkg_info("2.1", "Requires-Dist: flask"), False),
     (pkg_info("2.2", "Requires-Dist: flask"), True),
     (pkg_info("2.2", "Dynamic: Requires-Dist"), False),
     (pkg_info("2.2", "Dynamic: requires-python"), False),
     (pkg_info("2.4", "Dynamic: Summary"), True)],
)
def test_sdist_metadata_only_where_pep_643_backs_it(
    world: World, metadata: str, advertised: bool
) -> None:
    """An sdist advertises .metadata only from Metadata-Version 2.2 with its dependencies
    and Requires-Python static; otherwise there is neither the attribute nor the file."""
    client, dev = world.client, world.tokens["dev"]
    content = sdist_bytes("old", "1.0", metadata=metadata)
    assert client.upload(world.private_id, sdist_filename("old", "1.0"), content, "old",
                         "1.0", dev).code == 201
    page_url = simple(world.private_id, "old/")
    (_, attributes), = parse_links(client.get(page_url, auth=dev))
    assert ("data-core-metadata" in attributes) is advertised
    assert ("data-dist-info-metadata" in attributes) is advertised
    (entry,) = client.get(page_url, auth=dev, headers={"Accept": JSON}).json()["files"]
    assert ("core-metadata" in entry) is advertised
    href = absolute(page_url, str(attributes["href"])).split("#")[0]
    assert client.get(href + ".metadata", auth=dev).code == (200 if advertised else 404)


def test_wheels_always_advertise_their_metadata() -> None:
    """A wheel's METADATA is what installing it gives, whatever its version says."""
    assert servable(parse_raw(pkg_info("1.0").encode()), "old-1.0-py3-none-any.whl")
    assert not servable(parse_raw(pkg_info("1.0").encode()), "old-1.0.tar.gz")


# -- 3. no 5xx for bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [("/-//health", 404), ("/api/v4/projects//1/packages", 404),
     ("/api/v4/projects/%2Facme%2Fprivate/packages", 404),
     ("/api/v4/projects/1/packages/pypi/simple//", 404),
     ("/api/v4/projects/1/packages/pypi/simple/pkg%0a/", 404),
     ("/api/v4/projects/1/packages/pypi/simple/%E2%84%AA/", 404),
     ("/api/v4/projects/1/packages/pypi/simple/%ff/", 400),
     ("/%ff", 400), ("/api/v4/projects/%ff/packages", 400)],
)
def test_odd_paths_get_a_json_4xx_and_log_nothing(
    world: World, failures: list[dict[str, Any]], path: str, code: int
) -> None:
    """Double slashes, names with a newline or non-ASCII letters, non-UTF-8 URLs: a 4xx
    with GitLab's JSON body, and no traceback in the log."""
    answer = world.client.get(path, auth=world.tokens["root"])
    assert answer.code == code
    assert answer.json()["message"].startswith(str(code))
    assert failures == []


def test_a_range_past_the_int_limit_is_answered(world: World, failures: list[Any]) -> None:
    """A Range header with thousands of digits is ignored (whole file), not a 500."""
    client, dev = world.client, world.tokens["dev"]
    content = wheel_bytes("ranged", "1.0")
    client.upload(world.private_id, wheel_filename("ranged", "1.0"), content, "ranged", "1.0",
                  dev)
    url = (f"/api/v4/projects/{world.private_id}/packages/pypi/files/"
           f"{hashlib.sha256(content).hexdigest()}/{wheel_filename('ranged', '1.0')}")
    for header in ("bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=1-" + "9" * 5000):
        answer = client.get(url, auth=dev, headers={"Range": header})
        assert answer.code in (200, 206, 416)
    assert failures == []


def zip_with_metadata(member: zipfile.ZipInfo, data: bytes, corrupt: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
        archive.writestr("bad-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    raw = bytearray(buffer.getvalue())
    if corrupt:  # damage the deflated METADATA stream, keep the zip's directory intact
        start = raw.index(b"bad-1.0.dist-info/METADATA") + len("bad-1.0.dist-info/METADATA")
        raw[start:start + 8] = b"\xff" * 8
    return bytes(raw)


def broken_wheels() -> dict[str, bytes]:
    """Wheels whose zip directory is fine but whose METADATA member cannot be read."""
    metadata = metadata_text("bad", "1.0").encode() * 20
    deflated = zipfile.ZipInfo("bad-1.0.dist-info/METADATA")
    deflated.compress_type = zipfile.ZIP_DEFLATED
    plain = zip_with_metadata(zipfile.ZipInfo("bad-1.0.dist-info/METADATA"), metadata)
    encrypted = bytearray(plain)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        encrypted[encrypted.index(signature) + flag_offset] |= 1  # "encrypted" bit
    return {"corrupt": zip_with_metadata(deflated, metadata, corrupt=True),
            "unknown-method": _set_method(plain, 99),  # 99: AES, which zipfile cannot read
            "encrypted": bytes(encrypted)}


def _set_method(raw: bytes, method: int) -> bytes:
    data = bytearray(raw)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (at := data.find(signature, start)) != -1:
            data[at + offset:at + offset + 2] = method.to_bytes(2, "little")
            start = at + 4
    return bytes(data)


@pytest.mark.parametrize("kind", ["corrupt", "unknown-method", "encrypted"])
def test_unreadable_wheel_metadata_is_a_400(
    world: World, failures: list[Any], kind: str
) -> None:
    """A wheel whose METADATA is corrupt, compressed by an unknown method or encrypted is
    refused with a reason; nothing is stored."""
    client, dev = world.client, world.tokens["dev"]
    answer = client.upload(world.private_id, "bad-1.0-py3-none-any.whl", broken_wheels()[kind],
                           "bad", "1.0", dev)
    assert answer.code == 400, answer.body
    assert b"METADATA" in answer.phrase
    assert client.harness.registry.package_page_files(world.private_id, "bad") == []
    assert failures == []


@pytest.mark.parametrize(
    ("field", "value"), [("name", "pkg\n"), ("name", "pkg "), ("version", "1.0\n"),
                         ("version", " 1.0"), ("name", "p\u212ag")],
)
def test_names_and_versions_with_whitespace_are_refused(
    world: World, field: str, value: str
) -> None:
    """A trailing newline or space in the form's name or version is refused, not stored."""
    client, dev = world.client, world.tokens["dev"]
    form = {"name": "pkg", "version": "1.0", field: value}
    answer = client.upload(world.private_id, wheel_filename("pkg", "1.0"),
                           wheel_bytes("pkg", "1.0"), form["name"], form["version"], dev)
    assert answer.code == 400
    assert client.harness.registry.package_page_files(world.private_id, "pkg") == []


def test_multipart_limits_are_a_400(world: World, failures: list[Any]) -> None:
    """A file name of 10,000 characters and a form of 500 extra fields are refused (400)
    with a reason, in the streamed and the spooled parser alike."""
    client, dev = world.client, world.tokens["dev"]
    content = wheel_bytes("pkg", "1.0")
    long_name = client.upload(world.private_id, "p" * 10_000 + ".whl", content, "pkg", "1.0",
                              dev)
    assert long_name.code == 400
    fields = {f"extra{i}": "x" for i in range(500)}
    many = client.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg", "1.0",
                         dev, extra=fields)
    assert many.code == 400 and b"too many parts" in many.phrase
    spooled = Client(client.harness, streamed=False)
    assert spooled.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg", "1.0",
                          dev, extra=fields).code == 400
    assert failures == []


# -- 4, 5: conditional requests, PEP 691's latest ----------------------------------------


@pytest.mark.parametrize("spelling", ["*", 'W/{etag}', '"x",{etag}', '"x", {etag}',
                                      "{etag}, \"y\""])
def test_if_none_match_follows_rfc_9110(world: World, spelling: str) -> None:
    """`*`, weak validators and lists with or without spaces all give 304, for pages
    and files."""
    client, dev = world.client, world.tokens["dev"]
    content = wheel_bytes("cond", "1.0")
    client.upload(world.private_id, wheel_filename("cond", "1.0"), content, "cond", "1.0", dev)
    file_url = (f"/api/v4/projects/{world.private_id}/packages/pypi/files/"
                f"{hashlib.sha256(content).hexdigest()}/{wheel_filename('cond', '1.0')}")
    for url in (simple(world.private_id, "cond/"), file_url):
        etag = client.get(url, auth=dev).header("ETag")
        assert etag is not None
        for _ in range(2):  # both lanes
            answer = client.get(url, auth=dev,
                                headers={"If-None-Match": spelling.format(etag=etag)})
            assert answer.code == 304
        assert client.get(url, auth=dev, headers={"If-None-Match": '"other"'}).code == 200


def test_latest_json_is_v1(world: World) -> None:
    """PEP 691's application/vnd.pypi.simple.latest+json is answered as v1+json."""
    client, dev = world.client, world.tokens["dev"]
    client.upload_wheel(world.private_id, "late", "1.0", dev)
    for url in (simple(world.private_id), simple(world.private_id, "late/")):
        answer = client.get(url, auth=dev,
                            headers={"Accept": "application/vnd.pypi.simple.latest+json"})
        assert answer.code == 200
        assert answer.header("Content-Type") == JSON
        assert answer.json()["meta"]["api-version"]


# -- 6. what decides a write is read in the write's transaction ---------------------------


def test_a_settings_change_behind_the_caches_decides_the_next_upload(world: World) -> None:
    """The duplicates policy, the uploader's token and role are read in the upload's own
    transaction: a change the daemon's caches have not seen yet still decides."""
    client, dev = world.client, world.tokens["dev"]
    registry = client.harness.registry
    registry.set_duplicates(world.private_id, "deny")
    assert client.upload_wheel(world.private_id, "dup", "1.0", dev).code == 201
    assert client.upload_wheel(world.private_id, "dup", "1.0", dev).code == 400
    # Changes made as the CLI makes them: the caches are not told (until the watcher runs).
    registry.set_duplicates(world.private_id, "allow")
    assert client.upload_wheel(world.private_id, "dup", "1.0", dev).code == 201
    registry.add_member(world.private_id, "dev", "reporter")
    lowered = client.upload_wheel(world.private_id, "dup", "2.0", dev)
    assert lowered.code == 403 and b"developer role" in lowered.phrase
    registry.add_member(world.private_id, "dev", "developer")
    token_id = registry.list_tokens("dev")[0]["id"]
    registry.revoke_token(token_id)
    assert client.upload_wheel(world.private_id, "dup", "3.0", dev).code == 401
    versions = {row["version"] for row in registry.package_page_files(world.private_id, "dup")}
    assert versions == {"1.0"}


# -- 7. the reason of a 401 or 403 on upload ---------------------------------------------


def test_upload_refusals_say_why(world: World) -> None:
    """401 and 403 on uploads carry a reason in the status line, which twine prints."""
    client = world.client
    anonymous = client.upload_wheel(world.private_id, "why", "1.0", None)
    assert anonymous.code == 401 and b"token" in anonymous.phrase
    reporter = client.upload_wheel(world.private_id, "why", "1.0", world.tokens["rita"])
    assert reporter.code == 403 and b"developer role" in reporter.phrase
    read_only = client.upload_wheel(world.private_id, "why", "1.0", world.tokens["dev-read"])
    assert read_only.code == 403 and b"scopes" in read_only.phrase
    # Anonymous on a missing project: the very same answer as on an existing private one.
    missing = client.upload_wheel(99999, "why", "1.0", None)
    assert (missing.code, missing.phrase, missing.body) == (
        anonymous.code, anonymous.phrase, anonymous.body)


# -- 8. slow clients ---------------------------------------------------------------------


def slow_site(tmp_path: Path, client: Client, timeout: float) -> tuple[PypidSite, Clock]:
    clock = Clock()
    site = PypidSite(client.harness.app.resource(), spool_dir=client.harness.blobs.temp_dir,
                     max_body_size=1000, reactor=clock, timeout=timeout)
    return site, clock


def connect(site: PypidSite) -> tuple[Any, StringTransport]:
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_headers_sent_a_line_at_a_time_are_cut_after_the_timeout(
    tmp_path: Path, world: World
) -> None:
    """A client sending a header line every few seconds is disconnected once its
    headers have taken longer than the request timeout (the idle timeout never fires)."""
    site, clock = slow_site(tmp_path, world.client, timeout=30)
    protocol, transport = connect(site)
    protocol.dataReceived(b"GET /-/health HTTP/1.1\r\n")
    for _ in range(5):  # 25 s: within the timeout
        clock.advance(5)
        protocol.dataReceived(b"X-Slow: 1\r\n")
        assert not transport.disconnecting
    clock.advance(10)
    protocol.dataReceived(b"X-Slow: 1\r\n")
    assert transport.disconnecting and transport.value() == b""


def test_a_byte_at_a_time_is_cut_too(tmp_path: Path, world: World) -> None:
    """The deadline runs from the request's first byte, lines complete or not."""
    site, clock = slow_site(tmp_path, world.client, timeout=30)
    protocol, transport = connect(site)
    for byte in b"GET /-/health HTTP/1.1\r\nHost":
        protocol.dataReceived(bytes([byte]))
        clock.advance(2)
        if transport.disconnecting:
            break
    assert transport.disconnecting


def test_prompt_requests_on_one_connection_are_not_cut(tmp_path: Path, world: World) -> None:
    """Each request's headers get their own deadline: a long-lived keep-alive connection
    of prompt requests is served."""
    site, clock = slow_site(tmp_path, world.client, timeout=30)
    protocol, transport = connect(site)
    for _ in range(5):
        protocol.dataReceived(b"GET /-/health HTTP/1.1\r\nHost: x\r\n\r\n")
        clock.advance(20)
    assert not transport.disconnecting
    assert transport.value().count(b"HTTP/1.1 200 OK") == 5


def test_expect_continue_with_an_oversized_length_gets_413(tmp_path: Path, world: World) -> None:
    """`Expect: 100-continue` with a Content-Length over the limit is answered 413 at once
    (never 100 Continue, which would make curl send the body), and the connection closes."""
    site, _ = slow_site(tmp_path, world.client, timeout=30)
    protocol, transport = connect(site)
    auth = b64encode(b"__token__:" + world.tokens["dev"][1].encode())
    protocol.dataReceived(
        b"POST /api/v4/projects/1/packages/pypi HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Basic " + auth + b"\r\nContent-Type: multipart/form-data; boundary=b"
        b"\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 413 File too large: 5000 bytes, limit 1000\r\n")
    assert b"100 Continue" not in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"].startswith("413")
    assert transport.disconnecting


def test_expect_continue_within_the_limit_still_gets_100(tmp_path: Path, world: World) -> None:
    """A body within the limit gets its 100 Continue as before."""
    site, _ = slow_site(tmp_path, world.client, timeout=30)
    protocol, transport = connect(site)
    _, form = upload_form(wheel_filename("pkg", "1.0"), b"x", "pkg", "1.0")
    protocol.dataReceived(
        b"POST /api/v4/projects/1/packages/pypi HTTP/1.1\r\nHost: x\r\nContent-Type: "
        + form["Content-Type"].encode() + b"\r\nContent-Length: 500\r\n"
        b"Expect: 100-continue\r\n\r\n")
    assert transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_wrong_token_is_refused_on_public_projects_too(world: World) -> None:
    """pypid's documented departure from GitLab: an invalid token is 401 on a public
    project's pages and files too, so that a stale keyring token is found at once."""
    client = world.client
    client.upload_wheel(world.public_id, "pub", "1.0", world.tokens["dev"])
    url = simple(world.public_id, "pub/")
    assert client.get(url).code == 200
    for _ in range(2):  # also once the page is cached
        refused = client.get(url, auth=("__token__", "glpat-stale"))
        assert refused.code == 401 and b"invalid" in refused.phrase
