"""IAuthenticator's contract, run against the registry's authenticator and the fake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from pypid.authenticator import RegistryAuthenticator
from pypid.caches import Caches
from pypid.domain.access import Principal
from pypid.interfaces import IAuthenticator
from pypid.store.db import open_registry
from pypid.testing import MemoryAuthenticator, SyncDatabase
from tests.web.helpers import result_of

# (authenticator, personal token secret for user "ann", deploy token (username, secret),
#  revoke(secret))
Setup = tuple[IAuthenticator, str, tuple[str, str], Callable[[str], None]]


def registry_setup(tmp_path: Path) -> Setup:
    registry = open_registry(tmp_path)
    registry.bootstrap()
    registry.create_user("ann")
    project = registry.create_project("a/b")
    token_id, secret = registry.create_token("ann", "read_api")
    deploy = registry.create_deploy_token(project, "read_package_registry")
    caches = Caches()

    def revoke(revoked: str) -> None:
        registry.revoke_token(token_id)
        caches.clear()  # what the change watcher does when the CLI revokes

    return RegistryAuthenticator(SyncDatabase(registry).run, caches), secret, deploy, revoke


def memory_setup(tmp_path: Path) -> Setup:
    fake = MemoryAuthenticator()
    fake.add("ann-secret", Principal("ann", frozenset({"read_api"}), user_id=2))
    fake.add("deploy-secret", Principal("gitlab+deploy-token-1",
                                        frozenset({"read_package_registry"}),
                                        deploy_project_id=1))
    return fake, "ann-secret", ("gitlab+deploy-token-1", "deploy-secret"), fake.revoke


@pytest.fixture(params=[registry_setup, memory_setup], ids=["registry", "memory"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    return request.param(tmp_path)  # type: ignore[no-any-return]


def test_provides_the_interface(setup: Setup) -> None:
    """Both implementations provide IAuthenticator as declared."""
    assert verifyObject(IAuthenticator, setup[0])


def test_personal_tokens_count_with_any_user_name(setup: Setup) -> None:
    auth, secret, _, _ = setup
    for username in (None, "__token__", "someone"):
        principal = result_of(auth.authenticate(username, secret))
        assert principal is not None and principal.name == "ann"
        assert principal.scopes == frozenset({"read_api"})


def test_deploy_tokens_count_only_with_their_own_user_name(setup: Setup) -> None:
    auth, _, (username, secret), _ = setup
    principal = result_of(auth.authenticate(username, secret))
    assert principal is not None and principal.is_deploy_token
    assert result_of(auth.authenticate("__token__", secret)) is None
    assert result_of(auth.authenticate(None, secret)) is None


def test_unknown_secrets_are_nobody(setup: Setup) -> None:
    auth = setup[0]
    assert result_of(auth.authenticate("__token__", "glpat-unknown")) is None


def test_cached_agrees_with_authenticate_once_asked(setup: Setup) -> None:
    """After authenticate, memory alone gives the same answer (the fast lane's rule)."""
    auth, secret, (deploy_name, deploy_secret), _ = setup
    for username, token in (("__token__", secret), (deploy_name, deploy_secret),
                            ("__token__", deploy_secret), ("__token__", "glpat-unknown")):
        answer = result_of(auth.authenticate(username, token))
        assert auth.cached(username, token) == (True, answer)


def test_a_revoked_token_is_nobody(setup: Setup) -> None:
    auth, secret, _, revoke = setup
    assert result_of(auth.authenticate("__token__", secret)) is not None
    revoke(secret)
    assert result_of(auth.authenticate("__token__", secret)) is None
    assert auth.cached("__token__", secret) in ((False, None), (True, None))
