"""The simple index: HTML and JSON, negotiation, redirects, ETags and visibility."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pypid.web.negotiation import accepts_gzip, media_type
from tests.dists import wheel_bytes
from tests.web.conftest import World
from tests.web.helpers import new_client, parse_links

JSON = "application/vnd.pypi.simple.v1+json"


def simple(project: int | str, name: str = "") -> str:
    return f"/api/v4/projects/{project}/packages/pypi/simple/" + (f"{name}/" if name else "")


@pytest.fixture
def loaded(world: World) -> World:
    dev = world.tokens["dev"]
    for version in ("1.0", "1.10", "1.9"):
        assert world.client.upload_wheel(world.private_id, "Foo.Bar", version, dev,
                                         requires_python=">=3.8").code == 201
    assert world.client.upload_wheel(world.private_id, "baz", "0.1", dev).code == 201
    return world


def test_root_index_html_and_json(loaded: World) -> None:
    """The root lists every package of the project, in HTML and PEP 691 JSON."""
    client, dev = loaded.client, loaded.tokens["dev"]
    html = client.get(simple(loaded.private_id), auth=dev)
    assert html.code == 200 and html.header("Content-Type") == "text/html; charset=utf-8"
    assert [(text, attrs["href"]) for text, attrs in parse_links(html)] == [
        ("baz", "baz/"), ("Foo.Bar", "foo-bar/")]
    document = client.get(simple(loaded.private_id), auth=dev, headers={"Accept": JSON})
    assert document.header("Content-Type") == JSON
    assert document.json() == {"meta": {"api-version": "1.1"},
                               "projects": [{"name": "baz"}, {"name": "Foo.Bar"}]}
    assert html.header("Vary") == document.header("Vary") == "Accept, Accept-Encoding"


def test_package_page_html(loaded: World) -> None:
    """Each file links by sha256 with its fragment, Requires-Python and metadata hash."""
    client, dev = loaded.client, loaded.tokens["dev"]
    page = client.get(simple(loaded.private_id, "foo-bar"), auth=dev)
    links = parse_links(page)
    assert [text for text, _ in links] == [
        "foo_bar-1.0-py3-none-any.whl", "foo_bar-1.10-py3-none-any.whl",
        "foo_bar-1.9-py3-none-any.whl"]
    sha = hashlib.sha256(wheel_bytes("Foo.Bar", "1.0", requires_python=">=3.8")).hexdigest()
    attrs = links[0][1]
    assert attrs["href"] == f"../../files/{sha}/foo_bar-1.0-py3-none-any.whl#sha256={sha}"
    assert attrs["data-requires-python"] == ">=3.8"
    assert attrs["data-core-metadata"] == attrs["data-dist-info-metadata"]
    assert attrs["data-core-metadata"] is not None
    assert attrs["data-core-metadata"].startswith("sha256=")
    assert "data-yanked" not in attrs


def test_package_page_json(loaded: World) -> None:
    """PEP 691/700 JSON: files with hashes, sizes, upload times, metadata; sorted versions."""
    client, dev = loaded.client, loaded.tokens["dev"]
    document = client.get(simple(loaded.private_id, "foo-bar"), auth=dev,
                          headers={"Accept": JSON}).json()
    assert document["name"] == "foo-bar"
    assert document["versions"] == ["1.0", "1.9", "1.10"]
    first = document["files"][0]
    assert first["hashes"]["sha256"] in first["url"]
    assert first["requires-python"] == ">=3.8"
    assert first["size"] > 0 and first["upload-time"].endswith("Z")
    assert first["core-metadata"] == first["dist-info-metadata"]
    assert first["yanked"] is False


def test_metadata_link_serves_the_metadata(loaded: World) -> None:
    """The .metadata file is the METADATA whose sha256 the page announces."""
    client, dev = loaded.client, loaded.tokens["dev"]
    document = client.get(simple(loaded.private_id, "foo-bar"), auth=dev,
                          headers={"Accept": JSON}).json()
    first = document["files"][0]
    url = f"/api/v4/projects/{loaded.private_id}/packages/pypi/" + first["url"][len("../../"):]
    reply = client.get(url + ".metadata", auth=dev)
    assert reply.code == 200
    assert hashlib.sha256(reply.body).hexdigest() == first["core-metadata"]["sha256"]
    assert reply.body.startswith(b"Metadata-Version:")


@pytest.mark.parametrize(
    ("path", "location"),
    [("Foo.Bar/", "../foo-bar/"), ("FOO_bar/", "../foo-bar/"), ("foo-bar", "foo-bar/"),
     ("Foo.Bar", "foo-bar/"), ("Foo.Bar/?x=1", "../foo-bar/?x=1")],
)
def test_non_normalized_names_redirect(loaded: World, path: str, location: str) -> None:
    """PEP 503: a non-normalized name (or a missing slash) gets a 301 to the normalized URL."""
    reply = loaded.client.get(simple(loaded.private_id) + path, auth=loaded.tokens["dev"])
    assert reply.code == 301
    assert reply.header("Location") == location


def test_root_without_slash_redirects(loaded: World) -> None:
    """.../simple redirects to .../simple/."""
    reply = loaded.client.get(simple(loaded.private_id)[:-1], auth=loaded.tokens["dev"])
    assert reply.code == 301 and reply.header("Location") == "simple/"


def test_unknown_package_is_404(loaded: World) -> None:
    """A package with no files is not found."""
    reply = loaded.client.get(simple(loaded.private_id, "nothing-here"), auth=loaded.tokens["dev"])
    assert reply.code == 404


def test_etag_revalidation(loaded: World) -> None:
    """Pages carry an ETag; If-None-Match gives 304 until the page changes."""
    client, dev = loaded.client, loaded.tokens["dev"]
    first = client.get(simple(loaded.private_id, "baz"), auth=dev)
    etag = first.header("ETag")
    assert etag is not None
    again = client.get(simple(loaded.private_id, "baz"), auth=dev, headers={"If-None-Match": etag})
    assert again.code == 304 and again.body == b""
    as_json = client.get(simple(loaded.private_id, "baz"), auth=dev, headers={"Accept": JSON})
    assert as_json.header("ETag") != etag
    client.upload_wheel(loaded.private_id, "baz", "0.2", dev)
    changed = client.get(simple(loaded.private_id, "baz"), auth=dev,
                         headers={"If-None-Match": etag})
    assert changed.code == 200 and len(parse_links(changed)) == 2


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [(None, "text/html"), ("*/*", "text/html"), (JSON, JSON),
     (f"text/html;q=0.5, {JSON}", JSON), (f"text/html, {JSON};q=0.2", "text/html"),
     ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
     (f"{JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01", JSON),
     ("image/png", None), (f"{JSON};q=0", None)],
)
def test_negotiation(accept: str | None, chosen: str | None) -> None:
    """Content negotiation honours q-values, defaults to HTML, and refuses the unservable."""
    assert media_type(accept.encode() if accept else None) == chosen


def test_unacceptable_accept_is_406(loaded: World) -> None:
    """A client that accepts none of the index formats is told so."""
    reply = loaded.client.get(simple(loaded.private_id), auth=loaded.tokens["dev"],
                              headers={"Accept": "image/png"})
    assert reply.code == 406


@pytest.mark.parametrize(
    ("project", "who", "code"),
    [("private", "anonymous", 401), ("private", "outsider", 404), ("private", "rita", 200),
     ("private", "deploy-read", 200), ("private", "deploy-write", 404),
     ("private", "deploy-other", 404), ("private", "root", 200),
     ("internal", "anonymous", 401), ("internal", "outsider", 200),
     ("internal", "deploy-read", 404),
     ("public", "anonymous", 200), ("public", "outsider", 200), ("public", "bogus", 401)],
)
def test_read_access(world: World, project: str, who: str, code: int) -> None:
    """Reading follows visibility: public to all, internal to users, private to members."""
    project_id = {"private": world.private_id, "internal": world.internal_id,
                  "public": world.public_id}[project]
    auth = {"anonymous": None, "bogus": ("__token__", "glpat-bogus")}.get(who)
    if who not in ("anonymous", "bogus"):
        auth = world.tokens[who]
    assert world.client.get(simple(project_id), auth=auth).code == code


def test_project_by_path(world: World) -> None:
    """The URL-encoded path works wherever the numeric id does."""
    reply = world.client.get(simple("acme%2Fprivate"), auth=world.tokens["rita"])
    assert reply.code == 200


def test_public_url_makes_absolute_links(tmp_path: Path) -> None:
    """With --public-url, file links are absolute and carry the proxy's path prefix."""
    client = new_client(tmp_path, public_url="https://example.org/pypi")
    registry = client.harness.registry
    registry.create_project("a/b", "public")
    auth = ("__token__", registry.create_token("root", "api")[1])
    client.upload_wheel(1, "pkg", "1.0", auth)
    links = parse_links(client.get(simple(1, "pkg")))
    href = links[0][1]["href"]
    assert href is not None
    assert href.startswith("https://example.org/pypi/api/v4/projects/1/packages/pypi/files/")


@pytest.mark.parametrize("header", [
    "Basic !!!notbase64", "Basic " + "x" * 5000, "Digest abc", "Basic",
    "Basic bm9jb2xvbg==",  # "nocolon"
])
def test_malformed_authorization_is_401(world: World, header: str) -> None:
    """Broken Authorization headers are refused with 401, never a 500."""
    reply = world.client.get(simple(world.public_id), headers={"Authorization": header})
    assert reply.code == 401


def test_private_token_header(world: World) -> None:
    """The Private-Token header authenticates like Basic."""
    secret = world.tokens["rita"][1]
    reply = world.client.get(simple(world.private_id), headers={"Private-Token": secret})
    assert reply.code == 200


def test_metadata_kept_as_a_blob_before_schema_3_is_served(loaded: World) -> None:
    """Files recorded when metadata still lived in the blob store keep their .metadata."""
    client, dev = loaded.client, loaded.tokens["dev"]
    registry, blobs = client.harness.registry, client.harness.blobs
    first = client.get(simple(loaded.private_id, "baz"), auth=dev,
                       headers={"Accept": JSON}).json()["files"][0]
    sha = first["core-metadata"]["sha256"]
    content = registry.core_metadata(sha)
    assert content is not None
    with registry.write():
        registry.db.execute("DELETE FROM core_metadata WHERE sha256 = ?", (sha,))
    blobs.put_bytes(content)
    client.harness.caches.clear()
    url = f"/api/v4/projects/{loaded.private_id}/packages/pypi/" + first["url"][len("../../"):]
    reply = client.get(url + ".metadata", auth=dev)
    assert reply.code == 200 and reply.body == content


@pytest.mark.parametrize(
    ("header", "allowed"),
    [(None, False), ("gzip", True), ("gzip, deflate", True), ("br;q=1.0, gzip;q=0.8", True),
     ("gzip;q=0", False), ("*", True), ("*;q=0", False), ("identity", False),
     ("*, gzip;q=0", False), ("x-gzip", True), ("GZIP;Q=0.5", True)],
)
def test_accept_encoding(header: str | None, allowed: bool) -> None:
    assert accepts_gzip(header.encode() if header else None) is allowed


@pytest.mark.parametrize("accept", [None, JSON])
def test_pages_are_gzipped_for_clients_that_ask(world: World, accept: str | None) -> None:
    """pip and uv send Accept-Encoding: gzip; a page of 1 kB or more comes compressed, with
    an ETag of its own that revalidates. (treq always asks for gzip and inflates what it
    gets; tests/e2e/test_downloads.py reads both variants' bytes off a socket.)"""
    client, dev = world.client, world.tokens["dev"]
    for n in range(12):
        assert client.upload_wheel(world.private_id, "big", f"1.{n}", dev).code == 201
    url = simple(world.private_id, "big")
    asked = {"Accept": accept} if accept else {}
    packed = client.get(url, auth=dev, headers={**asked, "Accept-Encoding": "gzip"})
    assert packed.code == 200 and len(packed.body) > 1024
    assert packed.header("Vary") == "Accept, Accept-Encoding"
    identity_etag = hashlib.sha256(packed.body).hexdigest()[:32]
    etag = packed.header("ETag")
    assert etag == f'"{identity_etag}-gzip"'
    same = client.get(url, auth=dev, headers={**asked, "Accept-Encoding": "gzip",
                                              "If-None-Match": etag})
    assert same.code == 304
    client.upload_wheel(world.private_id, "big", "2.0", dev)  # the next read sees it
    changed = client.get(url, auth=dev, headers={**asked, "Accept-Encoding": "gzip",
                                                 "If-None-Match": etag})
    assert changed.code == 200 and b"big-2.0-py3-none-any.whl" in changed.body
