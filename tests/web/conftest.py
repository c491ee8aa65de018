"""A registry with users in every role, for the HTTP tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.web.helpers import Client, new_client


@dataclass
class World:
    client: Client
    tokens: dict[str, tuple[str, str]]
    private_id: int
    internal_id: int
    public_id: int


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def make_world(tmp_path: Path) -> World:
    client = new_client(tmp_path)
    registry = client.harness.registry
    private_id = registry.create_project("acme/private", "private")
    internal_id = registry.create_project("acme/internal", "internal")
    public_id = registry.create_project("acme/public", "public")
    tokens: dict[str, tuple[str, str]] = {}
    for name, role in (("rita", "reporter"), ("dev", "developer"), ("mia", "maintainer"),
                       ("outsider", None)):
        registry.create_user(name)
        if role:
            for project_id in (private_id, internal_id, public_id):
                registry.add_member(project_id, name, role)
        tokens[name] = ("__token__", registry.create_token(name, "api")[1])
    tokens["root"] = ("__token__", registry.create_token("root", "api")[1])
    tokens["dev-read"] = ("__token__", registry.create_token("dev", "read_api")[1])
    tokens["dev-write"] = ("__token__", registry.create_token("dev", "write_package_registry")[1])
    tokens["deploy-read"] = registry.create_deploy_token(private_id, "read_package_registry")
    tokens["deploy-write"] = registry.create_deploy_token(private_id, "write_package_registry")
    tokens["deploy-other"] = registry.create_deploy_token(public_id, "api")
    return World(client, tokens, private_id, internal_id, public_id)
