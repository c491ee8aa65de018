"""Downloads: bytes, headers, ranges, ETags, and what is not found."""

from __future__ import annotations

import hashlib

import pytest

from tests.dists import sdist_bytes, sdist_filename, wheel_bytes, wheel_filename
from tests.web.conftest import World


@pytest.fixture
def wheel(world: World) -> tuple[bytes, str]:
    content = wheel_bytes("pkg", "1.0", padding=600_000)
    reply = world.client.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg",
                                "1.0", world.tokens["dev"])
    assert reply.code == 201
    sha = hashlib.sha256(content).hexdigest()
    return content, f"/api/v4/projects/{world.private_id}/packages/pypi/files/{sha}/" \
                    f"{wheel_filename('pkg', '1.0')}"


def test_download_whole_file(world: World, wheel: tuple[bytes, str]) -> None:
    """The file comes back byte for byte, typed octet-stream, with its sha256 as ETag."""
    content, url = wheel
    reply = world.client.get(url, auth=world.tokens["rita"])
    assert reply.code == 200 and reply.body == content
    assert reply.header("Content-Type") == "application/octet-stream"
    assert reply.header("ETag") == f'"{hashlib.sha256(content).hexdigest()}"'
    assert reply.header("Accept-Ranges") == "bytes"


def test_sdist_is_not_labelled_gzip(world: World) -> None:
    """A .tar.gz goes out as-is, without Content-Encoding: gzip (STYLE.md pitfall 11)."""
    data = sdist_bytes("pkg", "1.0")
    world.client.upload(world.private_id, sdist_filename("pkg", "1.0"), data, "pkg", "1.0",
                        world.tokens["dev"])
    url = (f"/api/v4/projects/{world.private_id}/packages/pypi/files/"
           f"{hashlib.sha256(data).hexdigest()}/{sdist_filename('pkg', '1.0')}")
    reply = world.client.get(url, auth=world.tokens["dev"])
    assert reply.body == data
    assert (reply.header("Content-Encoding") or "") == ""
    assert reply.header("Content-Type") == "application/octet-stream"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None),
     ("bytes=10-10000000", 10, None)],
)
def test_ranges(world: World, wheel: tuple[bytes, str], header: str, start: int,
                end: int | None) -> None:
    """Single byte ranges get 206 with Content-Range and the right slice."""
    content, url = wheel
    reply = world.client.get(url, auth=world.tokens["dev"], headers={"Range": header})
    expected = content[start:] if end is None else content[start:end + 1]
    assert reply.code == 206 and reply.body == expected
    assert reply.header("Content-Range", ).endswith(f"/{len(content)}")  # type: ignore[union-attr]


def test_unsatisfiable_range_is_416(world: World, wheel: tuple[bytes, str]) -> None:
    """A range past the end is 416 with the size."""
    content, url = wheel
    reply = world.client.get(url, auth=world.tokens["dev"],
                             headers={"Range": f"bytes={len(content)}-"})
    assert reply.code == 416 and reply.header("Content-Range") == f"bytes */{len(content)}"


def test_etag_304(world: World, wheel: tuple[bytes, str]) -> None:
    """If-None-Match with the file's ETag is 304 without a body."""
    content, url = wheel
    etag = f'"{hashlib.sha256(content).hexdigest()}"'
    reply = world.client.get(url, auth=world.tokens["dev"], headers={"If-None-Match": etag})
    assert reply.code == 304 and reply.body == b""


def test_head(world: World, wheel: tuple[bytes, str]) -> None:
    """HEAD answers the headers only."""
    _, url = wheel
    reply = world.client.request("HEAD", url, auth=world.tokens["dev"])
    assert reply.code == 200 and reply.body == b""


@pytest.mark.parametrize(
    "mangle",
    [lambda u: u.replace("pkg-1.0", "other-1.0"), lambda u: u.rsplit("/", 1)[0] + "/x.whl",
     lambda u: u.replace("/files/", "/files/" + "0" * 64 + "/"),
     lambda u: u.replace("/files/", "/files/..%2F..%2F"),
     lambda u: u.rsplit("/", 2)[0] + "/" + "0" * 64 + "/pkg-1.0-py3-none-any.whl",
     lambda u: u.rsplit("/", 2)[0] + "/nothex/pkg-1.0-py3-none-any.whl",
     lambda u: u + ".metadata.metadata"],
)
def test_wrong_file_urls_are_404(world: World, wheel: tuple[bytes, str], mangle: object) -> None:
    """A sha256 and filename that do not belong together find nothing."""
    _, url = wheel
    reply = world.client.get(mangle(url), auth=world.tokens["dev"])  # type: ignore[operator]
    assert reply.code == 404


def test_files_follow_project_access(world: World, wheel: tuple[bytes, str]) -> None:
    """Files of a private project are hidden like its pages."""
    _, url = wheel
    assert world.client.get(url).code == 401
    assert world.client.get(url, auth=world.tokens["outsider"]).code == 404
    other = url.replace(f"/projects/{world.private_id}/", f"/projects/{world.public_id}/")
    assert world.client.get(other, auth=world.tokens["dev"]).code == 404
