"""Uploads through the real Klein app: success, every refusal, and nothing left behind."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pypid.blobs.filesystem import LAYOUT_MARK
from tests.dists import sdist_bytes, sdist_filename, wheel_bytes, wheel_filename
from tests.web.conftest import World
from tests.web.helpers import new_client, parse_links


def stored_files(world: World) -> list[Path]:
    data_dir = world.client.harness.registry.db.conn.execute("PRAGMA database_list").fetchone()[2]
    root = Path(data_dir).parent
    return sorted(p for p in (root / "blobs").rglob("*")
                  if p.is_file() and p.name != LAYOUT_MARK) + sorted(
        p for p in (root / "tmp").iterdir())


def test_developer_uploads_wheel_and_sdist(world: World) -> None:
    """A developer's upload is answered 201 and listed by the next index read."""
    client, dev = world.client, world.tokens["dev"]
    reply = client.upload_wheel(world.private_id, "Hello.World", "1.0", dev)
    assert (reply.code, reply.phrase) == (201, b"Created")
    data = sdist_bytes("Hello.World", "1.0")
    reply = client.upload("acme%2Fprivate", sdist_filename("Hello.World", "1.0"), data,
                          "Hello.World", "1.0", dev)
    assert reply.code == 201
    page = client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/simple/hello-world/",
                      auth=dev)
    names = [text for text, _ in parse_links(page)]
    assert names == ["hello_world-1.0-py3-none-any.whl", "hello_world-1.0.tar.gz"]
    sdist = parse_links(page)[1][1]
    assert sdist["href"] is not None
    assert sdist["href"].endswith("#sha256=" + hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    ("who", "code"),
    [("anonymous", 401), ("outsider", 404), ("rita", 403), ("dev-read", 403),
     ("dev-write", 201), ("mia", 201), ("root", 201), ("deploy-write", 201),
     ("deploy-read", 403), ("deploy-other", 404), ("bogus", 401)],
)
def test_upload_permissions(world: World, who: str, code: int) -> None:
    """401 without (valid) credentials, 404 without read, 403 with read only, else 201."""
    auth = {"anonymous": None, "bogus": ("__token__", "glpat-nope")}.get(who, None)
    if who not in ("anonymous", "bogus"):
        auth = world.tokens[who]
    reply = world.client.upload_wheel(world.private_id, "pkg", "1.0", auth)
    assert reply.code == code
    if code == 401:
        assert reply.header("WWW-Authenticate") == 'Basic realm="pypid"'
    if code != 201:
        assert stored_files(world) == []


def test_hidden_project_looks_missing(world: World) -> None:
    """An outsider gets exactly the answer a missing project gives."""
    outsider = world.tokens["outsider"]
    hidden = world.client.upload_wheel(world.private_id, "pkg", "1.0", outsider)
    missing = world.client.upload_wheel(999, "pkg", "1.0", outsider)
    assert (hidden.code, hidden.phrase, hidden.body) == (missing.code, missing.phrase, missing.body)
    assert hidden.body == b'{"message": "404 Project Not Found"}'


def test_anonymous_gets_401_whether_or_not_the_project_exists(world: World) -> None:
    """Anonymous requests to non-public projects cannot probe which exist."""
    exists = world.client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/simple/")
    missing = world.client.get("/api/v4/projects/4242/packages/pypi/simple/")
    assert (exists.code, exists.body) == (missing.code, missing.body)
    assert exists.code == 401


@pytest.mark.parametrize(
    ("filename", "name", "version", "extra", "reason"),
    [
        ("other-1.0-py3-none-any.whl", "pkg", "1.0", {}, b"is not a file of package"),
        ("pkg-2.0-py3-none-any.whl", "pkg", "1.0", {}, b"is not a file of version"),
        ("../pkg-1.0-py3-none-any.whl", "pkg", "1.0", {}, b"must not contain a path"),
        ("dir/pkg-1.0-py3-none-any.whl", "pkg", "1.0", {}, b"must not contain a path"),
        ("pkg-1.0.exe", "pkg", "1.0", {}, b"invalid distribution filename"),
        ("pkg-1.0-py3-none-any.whl", "pkg", "1.0", {"sha256_digest": "0" * 64},
         b"sha256_digest sent does not match"),
        ("pkg-1.0-py3-none-any.whl", "pkg", "1.0", {"md5_digest": "0" * 32},
         b"md5_digest sent does not match"),
        ("pkg-1.0-py3-none-any.whl", "pkg", "1.0", {"blake2_256_digest": "f" * 64},
         b"blake2_256_digest sent does not match"),
        ("pkg-1.0-py3-none-any.whl", "pkg", "not a version", {}, b"not a valid version"),
        ("pkg-1.0-py3-none-any.whl", "", "1.0", {}, b"needs 'name' and 'version'"),
        ("pkg-1.0-py3-none-any.whl", "pkg", "1.0", {":action": "submit"},
         b"unsupported :action"),
    ],
)
def test_bad_uploads_are_400_and_leave_nothing(
    world: World, filename: str, name: str, version: str, extra: dict[str, str], reason: bytes
) -> None:
    """Every refusal is a 400 whose reason phrase says why, and nothing is stored."""
    content = wheel_bytes("pkg", "1.0")
    reply = world.client.upload(world.private_id, filename, content, name, version,
                                world.tokens["dev"], extra)
    assert reply.code == 400
    assert reason in reply.phrase
    assert reason.decode() in reply.json()["message"]
    assert stored_files(world) == []


def test_metadata_must_match(world: World) -> None:
    """A wheel whose METADATA names another package is refused."""
    content = wheel_bytes("pkg", "1.0", metadata="Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    reply = world.client.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg",
                                "1.0", world.tokens["dev"])
    assert reply.code == 400 and b"names package 'evil'" in reply.phrase
    assert stored_files(world) == []


def test_broken_wheel_is_refused(world: World) -> None:
    """Bytes that are not a zip are refused as a wheel."""
    reply = world.client.upload(world.private_id, "pkg-1.0-py3-none-any.whl", b"garbage" * 10,
                                "pkg", "1.0", world.tokens["dev"])
    assert reply.code == 400 and b"not a valid zip" in reply.phrase


def test_not_multipart_is_refused(world: World) -> None:
    """A body that is not the upload form is a 400 with a reason."""
    reply = world.client.request(
        "POST", f"/api/v4/projects/{world.private_id}/packages/pypi", auth=world.tokens["dev"],
        headers={"Content-Type": "application/json"}, data=b"{}")
    assert reply.code == 400 and b"multipart/form-data" in reply.phrase
    reply = world.client.request(
        "POST", f"/api/v4/projects/{world.private_id}/packages/pypi/", auth=world.tokens["dev"],
        headers={"Content-Type": "multipart/form-data; boundary=x"}, data=b"--x--\r\n")
    assert reply.code == 400 and b"no 'content' file" in reply.phrase


def test_too_large_is_413(tmp_path: Path) -> None:
    """An upload over the limit is 413 with size and limit in the reason, nothing stored."""
    client = new_client(tmp_path, max_upload_size=1000)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    reply = client.upload_wheel(1, "pkg", "1.0", auth, padding=5000)
    assert reply.code == 413
    assert reply.phrase.startswith(b"File too large: ") and reply.phrase.endswith(b"limit 1000")
    assert registry.list_packages(1, None, 1, 20)[1] == 0


def test_duplicates_allowed_serve_the_newest(world: World) -> None:
    """Re-uploading a filename stores a new file; the page lists it once, linking the newest."""
    client, dev = world.client, world.tokens["dev"]
    filename = wheel_filename("pkg", "1.0")
    first, second = wheel_bytes("pkg", "1.0"), wheel_bytes("pkg", "1.0", padding=10)
    assert client.upload(world.private_id, filename, first, "pkg", "1.0", dev).code == 201
    assert client.upload(world.private_id, filename, second, "pkg", "1.0", dev).code == 201
    page = client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/simple/pkg/", auth=dev)
    links = parse_links(page)
    assert len(links) == 1
    assert links[0][1]["href"] is not None
    assert hashlib.sha256(second).hexdigest() in links[0][1]["href"]
    old = client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/files/"
                     f"{hashlib.sha256(first).hexdigest()}/{filename}", auth=dev)
    assert old.code == 200 and old.body == first


def test_duplicates_denied(world: World) -> None:
    """With duplicates denied, a re-upload is 400 'File already exists' (twine --skip-existing)."""
    client, dev = world.client, world.tokens["dev"]
    client.harness.registry.set_duplicates(world.private_id, "deny")
    client.harness.caches.clear()  # what the change watcher does for a CLI change
    assert client.upload_wheel(world.private_id, "pkg", "1.0", dev).code == 201
    blobs_before = stored_files(world)
    reply = client.upload(world.private_id, wheel_filename("pkg", "1.0"),
                          wheel_bytes("pkg", "1.0", padding=3), "pkg", "1.0", dev)
    assert (reply.code, reply.phrase) == (400, b"File already exists")
    assert stored_files(world) == blobs_before


def test_requires_python_from_metadata_or_form(world: World) -> None:
    """Requires-Python comes from the form field, else from the file's metadata."""
    client, dev = world.client, world.tokens["dev"]
    client.upload_wheel(world.private_id, "pkg", "1.0", dev, requires_python=">=3.9,<4")
    page = client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/simple/pkg/", auth=dev)
    assert parse_links(page)[0][1]["data-requires-python"] == ">=3.9,<4"
    assert b"&gt;=3.9,&lt;4" in page.body


def test_full_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    """When uploads back up past the queue, new ones get 503 + Retry-After, not memory."""
    from tests.dists import upload_form
    from tests.unit.test_queue_and_drain import HeldRunner

    held = HeldRunner()
    client = new_client(tmp_path, queue_workers=1, queue_waiting=0, run_worker=held)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    body, headers = upload_form(wheel_filename("pkg", "1.0"), wheel_bytes("pkg", "1.0"),
                                "pkg", "1.0")
    outcomes: list[Any] = []
    first = client.treq.post("http://pypid.test/api/v4/projects/1/packages/pypi", data=body,
                             headers=headers, auth=auth)
    first.addCallback(lambda response: outcomes.append(response) or response)
    assert outcomes == [] and len(held.jobs) == 1
    reply = client.upload_wheel(1, "pkg", "2.0", auth)
    assert reply.code == 503 and reply.header("Retry-After") == "5"
    assert b"retry" in reply.phrase
    held.finish_one()
    client.treq.flush()  # move the finished response through the in-memory connection
    assert outcomes[0].code == 201
    again = client.treq.post("http://pypid.test/api/v4/projects/1/packages/pypi", data=body,
                             headers=headers, auth=auth)
    again.addCallback(outcomes.append)
    assert len(outcomes) == 1 and len(held.jobs) == 1  # a free slot again: queued, not refused
