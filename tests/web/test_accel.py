"""--accel-redirect: pypid authorizes and sets the headers, nginx sends the blob."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.dists import wheel_bytes, wheel_filename
from tests.web.helpers import new_client

PREFIX = "/_pypid_blobs/"


def test_downloads_are_handed_to_nginx_after_authorization(tmp_path: Path) -> None:
    """Both lanes answer a file with X-Accel-Redirect to the blob's place and no body;
    refusals and .metadata stay pypid's; If-None-Match still gives 304."""
    client = new_client(tmp_path, accel_redirect=PREFIX)
    registry = client.harness.registry
    project = registry.create_project("acme/tools")
    token = ("__token__", registry.create_token("root", "api")[1])
    content = wheel_bytes("pkg", "1.0")
    assert client.upload(project, wheel_filename("pkg", "1.0"), content, "pkg", "1.0",
                         token).code == 201
    sha = hashlib.sha256(content).hexdigest()
    url = f"/api/v4/projects/{project}/packages/pypi/files/{sha}/{wheel_filename('pkg', '1.0')}"
    answers = [client.get(url, auth=token) for _ in range(2)]  # Klein, then the fast lane
    for answer in answers:
        assert answer.code == 200 and answer.body == b""
        assert answer.header("X-Accel-Redirect") == f"{PREFIX}{sha[:2]}/{sha}"
        assert answer.header("Content-Type") == "application/octet-stream"
        assert wheel_filename("pkg", "1.0") in (answer.header("Content-Disposition") or "")
    blob = client.harness.blobs.path(sha)  # type: ignore[attr-defined]
    assert blob.read_bytes() == content
    assert str(blob).endswith(f"blobs/sha256/{sha[:2]}/{sha}")  # what nginx's alias serves
    refused = client.get(url)
    assert refused.code == 401 and refused.header("X-Accel-Redirect") is None
    metadata = client.get(url + ".metadata", auth=token)
    assert metadata.code == 200 and b"Name: pkg" in metadata.body
    assert metadata.header("X-Accel-Redirect") is None
    etag = answers[0].header("ETag")
    assert etag is not None
    cached = client.get(url, auth=token, headers={"If-None-Match": etag})
    assert cached.code == 304 and cached.header("X-Accel-Redirect") is None
