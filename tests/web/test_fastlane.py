"""The fast lane answers cached reads exactly as the Klein routes do, without the database."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from klein.resource import KleinResource

from tests.dists import wheel_bytes, wheel_filename
from tests.web.conftest import World
from tests.web.helpers import Reply

JSON = "application/vnd.pypi.simple.v1+json"


def comparable(reply: Reply) -> tuple[int, bytes, dict[str, list[str]]]:
    headers = {k: v for k, v in reply.headers.items() if k != "date"}
    return reply.code, reply.body, headers


@pytest.fixture
def counted(world: World) -> tuple[World, list[Any]]:
    content = wheel_bytes("pkg", "1.0", padding=300_000)
    world.client.upload(world.private_id, wheel_filename("pkg", "1.0"), content, "pkg", "1.0",
                        world.tokens["dev"])
    calls: list[Any] = []
    app = world.client.harness.app
    original = app.services.run_db

    def counting(function: Any, *args: Any) -> Any:
        calls.append(function)
        return original(function, *args)

    app.services.run_db = counting
    app.gate._run_db = counting
    return world, calls


def klein_must_not_run(*args: Any) -> Any:
    raise AssertionError("the fast lane should have answered")


def file_url(world: World) -> str:
    sha = hashlib.sha256(wheel_bytes("pkg", "1.0", padding=300_000)).hexdigest()
    return (f"/api/v4/projects/{world.private_id}/packages/pypi/files/{sha}/"
            f"{wheel_filename('pkg', '1.0')}")


@pytest.mark.parametrize(
    ("path", "headers"),
    [("simple/", {}), ("simple/pkg/", {}), ("simple/pkg/", {"Accept": JSON}),
     ("file", {}), ("file", {"Range": "bytes=5-100"}), ("file.metadata", {})],
)
def test_second_answer_is_the_same_and_skips_the_database(
    counted: tuple[World, list[Any]], path: str, headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cached (fast) answer equals the first (Klein) one, without Klein or the database."""
    world, calls = counted
    if path.startswith("file"):
        url = file_url(world) + path.removeprefix("file")
    else:
        url = f"/api/v4/projects/{world.private_id}/packages/pypi/{path}"
    for who in ("rita", "deploy-read"):
        auth = world.tokens[who]
        first = world.client.get(url, auth=auth, headers=headers)
        assert first.code in (200, 206)
        calls.clear()
        with monkeypatch.context() as patch:
            patch.setattr(KleinResource, "render", klein_must_not_run)
            second = world.client.get(url, auth=auth, headers=headers)
        assert comparable(second) == comparable(first)
        assert calls == []


def test_refusals_never_take_the_fast_lane(counted: tuple[World, list[Any]]) -> None:
    """Principals the rules refuse get the Klein answers, cached or not."""
    world, _ = counted
    url = f"/api/v4/projects/{world.private_id}/packages/pypi/simple/pkg/"
    world.client.get(url, auth=world.tokens["rita"])  # warm the page cache
    for _ in range(2):
        assert world.client.get(url, auth=world.tokens["outsider"]).code == 404
        assert world.client.get(url).code == 401
        assert world.client.get(url, auth=world.tokens["deploy-write"]).code == 404
        assert world.client.get(url, auth=("__token__", "glpat-wrong")).code == 401


def test_revoked_principal_leaves_the_fast_lane(counted: tuple[World, list[Any]]) -> None:
    """Dropping the caches (what a CLI change does) sends the next request to the database."""
    world, calls = counted
    url = f"/api/v4/projects/{world.private_id}/packages/pypi/simple/pkg/"
    world.client.get(url, auth=world.tokens["rita"])
    world.client.harness.caches.clear()
    calls.clear()
    assert world.client.get(url, auth=world.tokens["rita"]).code == 200
    assert calls != []


def test_uploads_by_a_known_writer_skip_klein_and_answer_alike(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the writer is known, uploads take the fast lane, with the same answers (201s,
    refusals and all) as through the Klein route."""
    client, dev = world.client, world.tokens["dev"]
    client.harness.registry.set_duplicates(world.private_id, "deny")
    first = client.upload_wheel(world.private_id, "fast", "1.0", dev)  # Klein: fills caches
    duplicate = client.upload_wheel(world.private_id, "fast", "1.0", dev)
    wrong = client.upload(world.private_id, "other-1.0.tar.gz", b"x", "fast", "1.0", dev)
    with monkeypatch.context() as patch:
        patch.setattr(KleinResource, "render", klein_must_not_run)
        second = client.upload_wheel(world.private_id, "fast", "2.0", dev)
        duplicate_fast = client.upload_wheel(world.private_id, "fast", "2.0", dev)
        wrong_fast = client.upload(world.private_id, "other-1.0.tar.gz", b"x", "fast", "1.0",
                                   dev)
    assert comparable(second) == comparable(first)
    assert comparable(duplicate_fast) == comparable(duplicate)
    assert duplicate_fast.phrase == b"File already exists"
    assert comparable(wrong_fast) == comparable(wrong)
    names = [row["filename"] for row in
             client.harness.registry.package_page_files(world.private_id, "fast")]
    assert names == [wheel_filename("fast", "1.0"), wheel_filename("fast", "2.0")]
    # A reporter is known too, but may not write: that refusal stays with Klein.
    client.get(f"/api/v4/projects/{world.private_id}/packages/pypi/simple/",
               auth=world.tokens["rita"])
    assert client.upload_wheel(world.private_id, "fast", "3.0", world.tokens["rita"]).code == 403
