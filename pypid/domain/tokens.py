"""Token secrets: GitLab-shaped, random, stored only as a SHA-256 digest.

The secrets carry 192 random bits, so a fast digest is safe against guessing (no
password stretching needed, as GitLab does); lookups go by digest and the digest is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, date, datetime

PERSONAL_PREFIX = "glpat-"
DEPLOY_PREFIX = "gldt-"

SCOPES = ("api", "read_api", "read_package_registry", "write_package_registry")


class TokenError(ValueError):
    """A token request is invalid (bad scope, past expiry, ...)."""


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def digests_match(expected: str, secret: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), digest(secret).encode("ascii"))


def parse_scopes(text: str) -> tuple[str, ...]:
    """'api,read_api' -> ('api', 'read_api'); unknown or no scopes are refused."""
    scopes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not scopes:
        raise TokenError("at least one scope is required (" + ", ".join(SCOPES) + ")")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}; known scopes: " + ", ".join(SCOPES))
    return scopes


def parse_expiry(text: str, today: date) -> date:
    """An expiry date YYYY-MM-DD that lies in the future (GitLab: expires at 00:00 UTC)."""
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise TokenError(f"expiry date {text!r} is not YYYY-MM-DD") from None
    if when <= today:
        raise TokenError(f"expiry date {when.isoformat()} is not in the future")
    return when


def is_expired(expires_at: str | None, now: datetime) -> bool:
    """A token with expiry date D stops working at D 00:00 UTC."""
    if expires_at is None:
        return False
    return now.astimezone(UTC).date() >= date.fromisoformat(expires_at)
