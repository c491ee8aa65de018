"""GitLab's packages API for PyPI packages: list, show, files, delete, yank."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.web.conftest import World
from tests.web.helpers import parse_links


def api(world: World, suffix: str = "") -> str:
    return f"/api/v4/projects/{world.private_id}/packages{suffix}"


@pytest.fixture
def packages(world: World) -> World:
    dev = world.tokens["dev"]
    for index in range(5):
        assert world.client.upload_wheel(world.private_id, f"pkg{index}", "1.0", dev).code == 201
    assert world.client.upload_wheel(world.private_id, "pkg0", "2.0", dev).code == 201
    return world


def test_list_with_pagination(packages: World) -> None:
    """Packages are listed with GitLab's pagination headers."""
    reply = packages.client.get(api(packages, "?per_page=2&page=2"), auth=packages.tokens["rita"])
    assert reply.code == 200
    assert [p["name"] for p in reply.json()] == ["pkg2", "pkg3"]
    assert reply.header("X-Total") == "6" and reply.header("X-Total-Pages") == "3"
    assert reply.header("X-Page") == "2" and reply.header("X-Next-Page") == "3"
    assert reply.header("X-Prev-Page") == "1"
    assert 'rel="next"' in (reply.header("Link") or "")
    first = reply.json()[0]
    assert first["package_type"] == "pypi" and first["version"] == "1.0"


def test_filters(packages: World) -> None:
    """package_name filters by name; another package_type finds nothing; bad pages are 400."""
    client, rita = packages.client, packages.tokens["rita"]
    named = client.get(api(packages, "?package_name=pkg0"), auth=rita).json()
    assert [(p["name"], p["version"]) for p in named] == [("pkg0", "1.0"), ("pkg0", "2.0")]
    assert client.get(api(packages, "?package_type=npm"), auth=rita).json() == []
    assert client.get(api(packages, "?page=0"), auth=rita).code == 400
    assert client.get(api(packages, "?per_page=x"), auth=rita).code == 400


def test_show_package_and_files(packages: World) -> None:
    """A package and its files, with their digests."""
    client, rita = packages.client, packages.tokens["rita"]
    package = client.get(api(packages, "/1"), auth=rita).json()
    assert package["name"] == "pkg0"
    files = client.get(api(packages, "/1/package_files"), auth=rita).json()
    content = wheel_bytes("pkg0", "1.0")
    assert files[0]["file_name"] == wheel_filename("pkg0", "1.0")
    assert files[0]["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert files[0]["size"] == len(content)
    assert client.get(api(packages, "/999"), auth=rita).code == 404


def test_delete_needs_maintainer(packages: World) -> None:
    """Developers may not delete (403); those who cannot read see nothing (404)."""
    client = packages.client
    assert client.request("DELETE", api(packages, "/1"), auth=packages.tokens["dev"]).code == 403
    assert client.request("DELETE", api(packages, "/1"),
                          auth=packages.tokens["outsider"]).code == 404
    assert client.request("DELETE", api(packages, "/1"),
                          auth=packages.tokens["deploy-write"]).code == 404


def test_delete_file_and_package(packages: World) -> None:
    """Deleted files leave the next page at once, and their blobs are removed."""
    client, mia = packages.client, packages.tokens["mia"]
    blobs = packages.client.harness.blobs
    before = set(blobs.keys())
    registry = client.harness.registry
    assert registry.db.execute("SELECT COUNT(*) FROM core_metadata").fetchone()[0] == 6
    file_id = client.get(api(packages, "/1/package_files"), auth=mia).json()[0]["id"]
    reply = client.request("DELETE", api(packages, f"/1/package_files/{file_id}"), auth=mia)
    assert reply.code == 204
    page = f"/api/v4/projects/{packages.private_id}/packages/pypi/simple/pkg0/"
    assert [t for t, _ in parse_links(client.get(page, auth=mia))] == [
        wheel_filename("pkg0", "2.0")]
    removed = before - set(blobs.keys())
    assert removed == {hashlib.sha256(wheel_bytes("pkg0", "1.0")).hexdigest()}
    registry = client.harness.registry
    assert registry.db.execute("SELECT COUNT(*) FROM core_metadata").fetchone()[0] == 5
    assert client.get(api(packages, "/1"), auth=mia).code == 404  # its last file went
    package_id = client.get(api(packages, "?package_name=pkg0"), auth=mia).json()[0]["id"]
    assert client.request("DELETE", api(packages, f"/{package_id}"), auth=mia).code == 204
    assert client.get(page, auth=mia).code == 404
    assert client.request("DELETE", api(packages, f"/{package_id}"), auth=mia).code == 404


def test_shared_blob_survives_deletion(world: World) -> None:
    """A blob two files share stays until the last one goes."""
    client, dev, mia = world.client, world.tokens["dev"], world.tokens["mia"]
    content = wheel_bytes("pkg", "1.0")
    for _ in range(2):
        client.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg", "1.0", dev)
    files = client.get(api(world, "/1/package_files"), auth=mia).json()
    assert len(files) == 2
    client.request("DELETE", api(world, f"/1/package_files/{files[0]['id']}"), auth=mia)
    assert client.harness.blobs.verify(hashlib.sha256(content).hexdigest())
    client.request("DELETE", api(world, f"/1/package_files/{files[1]['id']}"), auth=mia)
    assert not client.harness.blobs.verify(hashlib.sha256(content).hexdigest())


def test_yank_and_unyank(packages: World) -> None:
    """Maintainers yank a release with a reason; the index marks it (PEP 592); unyank clears."""
    client, mia = packages.client, packages.tokens["mia"]
    page = f"/api/v4/projects/{packages.private_id}/packages/pypi/simple/pkg0/"
    body = json.dumps({"reason": "broken <build>"}).encode()
    assert client.request("POST", api(packages, "/1/yank"), auth=packages.tokens["dev"],
                          data=body).code == 403
    reply = client.request("POST", api(packages, "/1/yank"), auth=mia, data=body)
    assert reply.code == 200 and reply.json()[0]["yanked"] is True
    links = dict(parse_links(client.get(page, auth=mia)))
    assert links[wheel_filename("pkg0", "1.0")]["data-yanked"] == "broken <build>"
    assert "data-yanked" not in links[wheel_filename("pkg0", "2.0")]
    document = client.get(page, auth=mia,
                          headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert document["files"][0]["yanked"] == "broken <build>"
    client.request("POST", api(packages, "/1/unyank"), auth=mia)
    links = dict(parse_links(client.get(page, auth=mia)))
    assert "data-yanked" not in links[wheel_filename("pkg0", "1.0")]
    assert client.request("POST", api(packages, "/1/yank"), auth=mia,
                          data=b"[1]").code == 400


def test_duplicates_setting_over_http(world: World) -> None:
    """Maintainers read and change the duplicates setting; it applies to the next upload."""
    client, mia = world.client, world.tokens["mia"]
    url = api(world, "/settings")
    assert client.get(url, auth=world.tokens["rita"]).json() == {"pypi_duplicates_allowed": True}
    body = json.dumps({"pypi_duplicates_allowed": False}).encode()
    assert client.request("PUT", url, auth=world.tokens["dev"], data=body).code == 403
    reply = client.request("PUT", url, auth=mia, data=body)
    assert reply.code == 200 and reply.json() == {"pypi_duplicates_allowed": False}
    assert client.upload_wheel(world.private_id, "pkg", "1.0", mia).code == 201
    again = client.upload(world.private_id, wheel_filename("pkg", "1.0"),
                          wheel_bytes("pkg", "1.0", padding=1), "pkg", "1.0", mia)
    assert (again.code, again.phrase) == (400, b"File already exists")
    assert client.request("PUT", url, auth=mia, data=b'{"pypi_duplicates_allowed": 1}').code == 400
