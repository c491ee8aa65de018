"""Projects a principal may not read look exactly like projects that do not exist."""

from __future__ import annotations

import hashlib

import pytest

from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.web.conftest import World

CONTENT = wheel_bytes("pkg", "1.0")
SHA = hashlib.sha256(CONTENT).hexdigest()
FILE = wheel_filename("pkg", "1.0")
ENDPOINTS = [
    ("GET", "packages/pypi/simple/"),
    ("GET", "packages/pypi/simple/pkg/"),
    ("GET", "packages/pypi/simple/PKG/"),
    ("GET", f"packages/pypi/files/{SHA}/{FILE}"),
    ("GET", f"packages/pypi/files/{SHA}/{FILE}.metadata"),
    ("GET", "packages"),
    ("GET", "packages/1"),
    ("GET", "packages/1/package_files"),
    ("GET", "packages/settings"),
    ("POST", "packages/pypi"),
    ("DELETE", "packages/1"),
    ("DELETE", "packages/1/package_files/1"),
    ("POST", "packages/1/yank"),
    ("PUT", "packages/settings"),
]
# Who may not read what: (project, principal).
BLIND = [("private", "anonymous"), ("private", "outsider"), ("private", "deploy-other"),
         ("private", "deploy-write"), ("internal", "anonymous"), ("internal", "deploy-read")]


@pytest.fixture
def hidden(world: World) -> World:
    assert world.client.upload(world.private_id, FILE, CONTENT, "pkg", "1.0",
                               world.tokens["dev"]).code == 201
    assert world.client.upload(world.internal_id, FILE, CONTENT, "pkg", "1.0",
                               world.tokens["dev"]).code == 201
    return world


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(("project", "who"), BLIND)
def test_hidden_equals_missing(hidden: World, method: str, path: str, project: str,
                               who: str) -> None:
    """Same status, same body, for a hidden project as for one that does not exist."""
    if who == "deploy-write" and method == "POST" and path == "packages/pypi":
        pytest.skip("a write-only deploy token may upload to its project without reading it")
    auth = None if who == "anonymous" else hidden.tokens[who]
    project_id = hidden.private_id if project == "private" else hidden.internal_id
    data = None
    headers = {}
    if method == "POST" and path == "packages/pypi":
        data, headers = upload_form(FILE, CONTENT, "pkg", "1.0")
    answers = []
    for target in (project_id, 4242, "acme%2Fnothing"):
        reply = hidden.client.request(method, f"/api/v4/projects/{target}/{path}", auth=auth,
                                      headers=headers, data=data)
        answers.append((reply.code, reply.phrase, reply.body))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] in (401, 404)
    if who == "anonymous":
        assert answers[0][0] == 401
