"""Token secrets, digests, scopes and expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pypid.domain import tokens


def test_secrets_look_like_gitlabs() -> None:
    """Personal tokens start with glpat-, deploy tokens with gldt-, then 20+ url-safe chars."""
    for prefix in (tokens.PERSONAL_PREFIX, tokens.DEPLOY_PREFIX):
        secret = tokens.new_secret(prefix)
        body = secret.removeprefix(prefix)
        assert secret.startswith(prefix)
        assert len(body) >= 20
        assert all(char.isalnum() or char in "-_" for char in body)


def test_secrets_are_unique() -> None:
    """Two secrets are never the same."""
    assert len({tokens.new_secret("glpat-") for _ in range(1000)}) == 1000


def test_digest_verifies_only_the_right_secret() -> None:
    """The stored digest matches its secret and nothing else, and is not the secret."""
    secret = tokens.new_secret("glpat-")
    stored = tokens.digest(secret)
    assert secret not in stored
    assert tokens.digests_match(stored, secret)
    assert not tokens.digests_match(stored, secret + "x")
    assert not tokens.digests_match(stored, secret[:-1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("api", ("api",)), ("read_api, write_package_registry", ("read_api", "write_package_registry")),
     ("api,api", ("api",))],
)
def test_scopes_parse(text: str, expected: tuple[str, ...]) -> None:
    """Comma-separated scope lists are parsed, deduplicated and kept in order."""
    assert tokens.parse_scopes(text) == expected


@pytest.mark.parametrize("text", ["", ",", "admin", "api,sudo"])
def test_bad_scopes_are_refused(text: str) -> None:
    """Unknown or missing scopes are refused with the list of known ones."""
    with pytest.raises(tokens.TokenError):
        tokens.parse_scopes(text)


def test_expiry_must_be_in_the_future() -> None:
    """An expiry date that is today or past, or not a date, is refused."""
    today = date(2026, 11, 25)
    assert tokens.parse_expiry("2026-11-26", today) == date(2026, 11, 26)
    for text in ("2026-11-25", "2020-01-01", "tomorrow", "2026-13-01"):
        with pytest.raises(tokens.TokenError):
            tokens.parse_expiry(text, today)


def test_token_stops_working_at_midnight_utc_of_its_expiry_date() -> None:
    """GitLab's rule: expires_at D means invalid from D 00:00 UTC."""
    assert not tokens.is_expired("2026-11-26", datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC))
    assert tokens.is_expired("2026-11-26", datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC))
    assert not tokens.is_expired(None, datetime(2999, 1, 1, tzinfo=UTC))
