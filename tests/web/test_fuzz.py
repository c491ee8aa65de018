"""Fuzzing the upload path: whatever arrives, the answer is < 500 and only accepted files stay.

Case counts: PYPID_FUZZ_SCALE multiplies them (1 in CI: 10,000 cases in all; 10 for the
documented soak: 100,000).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dists import BOUNDARY, upload_form, wheel_bytes
from tests.web.helpers import Client, new_client

SCALE = int(os.environ.get("PYPID_FUZZ_SCALE", "1"))
def fuzz(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[Client, tuple[str, str]]:
    client = new_client(tmp_path_factory.mktemp("fuzz"))
    registry = client.harness.registry
    registry.create_project("fuzz/fuzz", "private")
    return client, ("__token__", registry.create_token("root", "api")[1])


def check_store(client: Client, accepted: dict[str, bytes]) -> None:
    """The store holds exactly the accepted files, and no temp leftovers."""
    blobs = client.harness.blobs
    assert set(blobs.keys()) == set(accepted)
    assert list(blobs.temp_dir.iterdir()) == []


ACCEPTED: dict[str, bytes] = {}

names = st.one_of(st.sampled_from(["pkg", "Pkg.Name", "a-b_c", "", "../x", "x" * 300]),
                  st.text(max_size=40))
versions = st.one_of(st.sampled_from(["1.0", "1!2.0.post1", "", "1.0\x00", "v1", "9" * 400]),
                     st.text(max_size=20))
filenames = st.one_of(
    st.sampled_from(["pkg-1.0-py3-none-any.whl", "pkg-1.0.tar.gz", "pkg-1.0.zip",
                     "../pkg-1.0.tar.gz", "/etc/passwd", "pkg-1.0.tar.gz\x00.whl", "CON",
                     "pkg-1.0-py3-none-any.whl/..", "\uff50\uff4b\uff47-1.0.tar.gz", "pkg\\..\\1.0.zip"]),
    st.text(max_size=300),
)
contents = st.one_of(
    st.binary(max_size=2000),
    st.sampled_from([wheel_bytes("pkg", "1.0"), b"PK\x03\x04" + b"\0" * 100, b"\x1f\x8b" * 50]),
)
extra_fields = st.dictionaries(
    st.sampled_from(["md5_digest", "sha256_digest", "blake2_256_digest", ":action",
                     "requires_python", "summary", "metadata_version", "filetype"]),
    st.text(max_size=100), max_size=4,
)


@fuzz(6000)
@given(filename=filenames, name=names, version=versions, content=contents,
       extra=extra_fields)
def test_fuzzed_forms(fuzz_client: tuple[Client, tuple[str, str]], filename: str, name: str,
                      version: str, content: bytes, extra: dict[str, str]) -> None:
    """Forms with any filename, name, version, digests and content: never a 5xx."""
    client, auth = fuzz_client
    try:
        body, headers = upload_form(filename, content, name, version, extra)
    except UnicodeEncodeError:
        return  # not sendable as a header value
    reply = client.request("POST", "/api/v4/projects/1/packages/pypi", auth=auth,
                           headers=headers, data=body)
    assert reply.code < 500, reply
    if reply.code == 201:
        ACCEPTED[hashlib.sha256(content).hexdigest()] = content
    check_store(client, ACCEPTED)


@fuzz(2000)
@given(body=st.binary(max_size=3000), cut=st.integers(0, 3000),
       content_type=st.sampled_from([f"multipart/form-data; boundary={BOUNDARY}",
                                     "multipart/form-data; boundary=", "multipart/form-data",
                                     "text/plain", "multipart/form-data; boundary=\"x\""]))
def test_fuzzed_framing(fuzz_client: tuple[Client, tuple[str, str]], body: bytes, cut: int,
                        content_type: str) -> None:
    """Broken multipart framing (random bytes, truncated real forms): never a 5xx."""
    client, auth = fuzz_client
    real, _ = upload_form("pkg-1.0.tar.gz", body, "pkg", "1.0")
    for data in (body, real[:cut], real[cut:]):
        reply = client.request("POST", "/api/v4/projects/1/packages/pypi", auth=auth,
                               headers={"Content-Type": content_type}, data=data)
        assert reply.code < 500
    check_store(client, ACCEPTED)


def _tar(members: list[tuple[str, bytes, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                info.linkname = data.decode("latin-1")
                archive.addfile(info)
    return buffer.getvalue()


def _zip(members: list[tuple[str, bytes, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, _, data in members:
            if name not in archive.namelist():  # zipfile warns on duplicates
                archive.writestr(name, data)
    return buffer.getvalue()


member_names = st.sampled_from([
    "pkg-1.0/PKG-INFO", "/etc/passwd", "../../PKG-INFO", "pkg-1.0/../PKG-INFO",
    "pkg-1.0.dist-info/METADATA", "other.dist-info/METADATA", "pkg-1.0/sub/PKG-INFO",
    "pkg.py", "pkg-1.0/", "PKG-INFO"])
metadata_texts = st.one_of(
    st.sampled_from([b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
                     b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
                     b"Name: pkg\nVersion: 1.0\nRequires-Python: >=3.8\n",
                     b"\xff\xfe garbage", b""]),
    st.binary(max_size=300),
)
members = st.lists(st.tuples(member_names, st.sampled_from(
    [tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]), metadata_texts), max_size=4)


@fuzz(2000)
@given(items=members, kind=st.sampled_from(["whl", "tar.gz", "zip"]))
def test_fuzzed_archives(fuzz_client: tuple[Client, tuple[str, str]],
                         items: list[tuple[str, bytes, bytes]], kind: str) -> None:
    """Archives with links, absolute or escaping paths, odd metadata: never a 5xx."""
    client, auth = fuzz_client
    content = _tar(items) if kind == "tar.gz" else _zip(items)
    filename = "pkg-1.0-py3-none-any.whl" if kind == "whl" else f"pkg-1.0.{kind}"
    reply = client.upload(1, filename, content, "pkg", "1.0", auth)
    assert reply.code < 500
    if reply.code == 201:
        ACCEPTED[hashlib.sha256(content).hexdigest()] = content
    check_store(client, ACCEPTED)


@pytest.mark.parametrize("path", [
    "/api/v4/projects/%ff%fe/packages/pypi/simple/",
    "/api/v4/projects/-1/packages/pypi/simple/",
    "/api/v4/projects/99999999999999999999999999/packages/pypi/simple/",
    "/api/v4/projects/1%2F..%2F2/packages/pypi/simple/",
    "/api/v4/projects/1/packages/pypi/files/..%2F..%2Fetc/passwd",
    "/api/v4/projects/1/packages/pypi/files/" + "a" * 64 + "/%00",
    "/api/v4/projects/1/packages/pypi/simple/%2e%2e/",
    "/api/v4/projects/1/packages/pypi/simple/" + "a" * 5000 + "/",
    "/api/v4/projects/1/packages/-1",
    "/api/v4/projects/1/packages/99999999999999999999999",
    "/api/v4/projects/1/packages?page=99999999999999999999&per_page=-5",
])
def test_malformed_urls_are_4xx(fuzz_client: tuple[Client, tuple[str, str]], path: str) -> None:
    """Odd ids, encodings and path tricks are answered with a 4xx, never a 5xx."""
    client, auth = fuzz_client
    for credentials in (auth, None):
        reply = client.get(path, auth=credentials)
        assert 400 <= reply.code < 500, (path, reply)


def test_huge_header_is_refused(tmp_path: Path) -> None:
    """An oversized header line is refused by the HTTP layer (a 4xx or a closed connection),
    never processed."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    client = new_client(tmp_path)
    protocol = client.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(b"GET /-/health HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 4") or (answer == b"" and transport.disconnecting)
