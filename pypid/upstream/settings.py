"""An index's upstream settings: each value validated once, and inherited field by field.

A project's value wins over its group's, a group's over its parent's, any over the daemon's
(`--upstream` and friends). A value left unset (None) inherits; `upstream = "off"` is a
value, so a project can turn off what its group turned on.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

OFF = "off"
DEFAULT_TTL = 300  # seconds an upstream page is served before it is revalidated
# Names, or glob patterns of names (PEP 503 normalized at comparison): letters, digits,
# . _ - and the glob characters * ? [ ] !.
_PATTERN = re.compile(r"[A-Za-z0-9._*?\[\]!-]{1,100}", re.ASCII)
MAX_PATTERNS = 1000
MAX_MIN_AGE_DAYS = 3650.0
MAX_TTL = 31 * 86400


class SettingError(ValueError):
    """A bad upstream setting; the message names it."""


def check_url(value: str, key: str = "--upstream") -> str:
    """An upstream URL: http(s), a host, no query or fragment; its trailing slash dropped."""
    text = value.strip()
    if text == OFF:
        return OFF
    if any(ord(char) <= 32 or ord(char) == 127 for char in text):
        raise SettingError(f"{key}: the URL must not contain spaces or control characters")
    if not text.isascii():
        raise SettingError(f"{key}: the URL must be ASCII (percent-encode other characters)")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingError(f"{key}: {value!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(f"{key}: expected off or an http(s) URL of a simple index, such "
                           f"as https://pypi.org/simple, got {value!r}")
    if parts.query or parts.fragment:
        raise SettingError(f"{key}: the URL must not have a query or fragment")
    return text.rstrip("/")


def public_url(url: str) -> str:
    """The URL without credentials: what pages, headers and logs may show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_patterns(values: Iterable[str], key: str = "--upstream-allow") -> tuple[str, ...]:
    patterns = []
    for value in values:
        if not _PATTERN.fullmatch(value):
            raise SettingError(f"{key}: {value!r} is not a package name or glob pattern "
                               "(letters, digits, . _ - and * ? [ ] !)")
        patterns.append(_normalize_pattern(value))
    if len(patterns) > MAX_PATTERNS:
        raise SettingError(f"{key}: at most {MAX_PATTERNS} patterns")
    return tuple(dict.fromkeys(patterns))


def _normalize_pattern(pattern: str) -> str:
    # As PEP 503 normalizes names, so that "Foo_Bar*" matches the name foo-bar-baz.
    return re.sub(r"[-_.]+", "-", pattern).lower()


_DAYS = re.compile(r"[0-9]{1,4}(\.[0-9]{1,6})?", re.ASCII)


def check_min_age(value: Any, key: str = "--upstream-min-age") -> float:
    text = str(value).strip() if isinstance(value, str | int | float) and not isinstance(
        value, bool) else ""
    if not _DAYS.fullmatch(text):
        raise SettingError(f"{key}: expected a number of days such as 3 or 0.5, got {value!r}")
    days = float(text)
    if not 0 <= days <= MAX_MIN_AGE_DAYS:  # also refuses nan
        raise SettingError(f"{key}: expected 0 to {MAX_MIN_AGE_DAYS:.0f} days, got {value!r}")
    return days


def check_ttl(value: Any, key: str = "--upstream-ttl") -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdecimal() or not text.isascii():
        raise SettingError(f"{key}: expected a whole number of seconds, got {value!r}")
    seconds = int(text)
    if seconds > MAX_TTL:
        raise SettingError(f"{key}: at most {MAX_TTL} seconds (31 days), got {value!r}")
    return seconds


@dataclass(frozen=True)
class UpstreamSettings:
    """What one index (a project's or a group's) takes from upstream; url None: nothing."""

    url: str | None
    allow: tuple[str, ...] = ()  # empty: every name not local
    min_age_days: float = 0.0
    ttl: int = DEFAULT_TTL

    def allows(self, name: str) -> bool:
        """May this (normalized) name come from upstream at all?"""
        if self.url is None:
            return False
        return not self.allow or any(fnmatch.fnmatchcase(name, pattern)
                                     for pattern in self.allow)

    def page_url(self, name: str) -> str:
        assert self.url is not None
        return f"{self.url}/{name}/"


@dataclass(frozen=True)
class Layer:
    """One level's own settings, each None when that level does not set it."""

    upstream: str | None = None
    allow: tuple[str, ...] | None = None
    min_age_days: float | None = None
    ttl: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Layer:
        """A project's or group's row (schema 6 columns); allow is stored as JSON."""
        import json

        allow = row.get("upstream_allow")
        return cls(row.get("upstream"), tuple(json.loads(allow)) if allow else None,
                   row.get("upstream_min_age"), row.get("upstream_ttl"))


def resolve(layers: Iterable[Layer]) -> UpstreamSettings:
    """The settings in force, from layers nearest first (project, group, ..., daemon)."""
    found: dict[str, Any] = {}
    for layer in layers:
        for field in ("upstream", "allow", "min_age_days", "ttl"):
            value = getattr(layer, field)
            if value is not None and field not in found:
                found[field] = value
    url = found.get("upstream")
    return UpstreamSettings(
        None if url in (None, OFF) else url,
        found.get("allow", ()),
        found.get("min_age_days", 0.0),
        found.get("ttl", DEFAULT_TTL),
    )
