"""One frozen Config from defaults < TOML file < command line, with validation.

Every error names the setting it is about, so a bad start is a single clear line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATA_DIR = "./pypid-data"
DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"
DEFAULT_MAX_UPLOAD_SIZE = 52_428_800


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names it."""


@dataclass(frozen=True)
class Config:
    data_dir: str = DEFAULT_DATA_DIR
    listen: tuple[str, ...] = field(default=(DEFAULT_LISTEN,))
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE
    public_url: str | None = None
    # Uploads being processed (parsed, hashed, stored) at once, and waiting beyond that,
    # before new ones get 503 with Retry-After instead of queueing without bound.
    upload_workers: int = 4
    upload_queue: int = 64
    # How long a stopping daemon waits for requests in flight.
    shutdown_grace: float = 10.0
    # One log event per request (off by default: the reverse proxy usually logs access,
    # and formatting a line per request costs a fifth of a cached page's time).
    access_log: bool = False
    # Idle connections (no request, or a request that stalls) are closed after this long.
    request_timeout: float = 60.0
    # A request body arriving slower than this (bytes/s, after 10 s) is cut; 0 turns it off.
    min_upload_rate: float = 1024.0
    # Failed sign-ins per client address before a ban (429), as GitLab's defaults:
    # 30 failures within 60 s ban the address for an hour; loopback is never banned.
    auth_failure_limit: int = 30
    auth_failure_window: float = 60.0
    auth_ban_time: float = 3600.0
    auth_allowlist: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # GET /-/metrics answers clients from these networks only (others get 404).
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Counting requests for /-/metrics; off only to measure what counting costs.
    metrics: bool = True
    # "json": one JSON object a line (twisted.logger's JSON observer), for log shippers.
    log_format: str = "text"
    # Downloads answered with X-Accel-Redirect to PREFIX<ab>/<sha256>, for nginx to send
    # the bytes from the blob directory (conf/nginx.conf); None: pypid sends them.
    accel_redirect: str | None = None
    # The instance's upstream (pypid.upstream), under every project's and group's own
    # settings: a simple index URL or None (off), names allowed, cooldown, page TTL.
    upstream: str | None = None
    upstream_allow: tuple[str, ...] | None = None
    upstream_min_age: float | None = None
    upstream_ttl: int | None = None
    # Seconds an upstream may take to answer a page or file, before 504.
    upstream_timeout: float = 30.0
    # Larger upstream files are left out of pages (and refused if an upstream sends more).
    upstream_max_file_size: int = 5 * 1024**3
    # Cached upstream files not requested for this many days are dropped; 0: kept.
    upstream_retention_days: float = 90.0
    # Where blobs live: "file" (the data dir) or "s3" (a bucket; the data dir keeps a
    # local copy of what it put or read). Credentials come from boto3's usual chain.
    blob_store: str = "file"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_addressing_style: str = "auto"
    s3_verify_tls: bool = True
    # Downloads: "serve" (pypid sends the bytes, from the local copy) or, with s3,
    # "redirect" (a 302 to a presigned URL valid for download_expiry seconds) or "proxy"
    # (pypid streams ranges of the object, keeping no local copy).
    download: str = "serve"
    download_expiry: int = 300


# TOML key -> (Config attribute, parser). The TOML spelling matches the command line.
def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be greater than 0, got {number}")
    return number


def _positive_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be greater than 0, got {number}")
    return number


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _non_negative_float(key: str, value: Any) -> float:
    if value in (0, "0"):
        return 0.0
    return _positive_float(key, value)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _listen(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{key}: expected an endpoint string or a list of them, got {value!r}")
    return tuple(_text(key, item) for item in items)


def _networks(key: str, value: Any) -> tuple[str, ...]:
    import ipaddress

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{key}: expected a list of addresses or networks, got {value!r}")
    for item in items:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not an address or network") from None
    return tuple(str(item) for item in items)


def _public_url(key: str, value: Any) -> str:
    text = _text(key, value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key}: expected an http(s) URL such as https://example.org/pypi")
    if parts.query or parts.fragment:
        raise ConfigError(f"{key}: must not contain a query or fragment")
    return text


def _accel_prefix(key: str, value: Any) -> str:
    text = _text(key, value)
    if not (text.startswith("/") and text.endswith("/")) or any(
            char in text for char in "?#% \t\r\n\\") or "//" in text or ".." in text:
        raise ConfigError(f"{key}: expected a location path such as /_pypid_blobs/ "
                          f"(starting and ending with /), got {value!r}")
    return text


def _log_format(key: str, value: Any) -> str:
    if value not in ("text", "json"):
        raise ConfigError(f"{key}: expected text or json, got {value!r}")
    return str(value)


def _choice(*choices: str) -> Any:
    def parse(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{key}: expected {' or '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def _s3_prefix(key: str, value: Any) -> str:
    if not isinstance(value, str) or any(ord(char) < 32 for char in value) or \
            value.startswith("/") or ".." in value or len(value) > 200:
        raise ConfigError(f"{key}: expected a key prefix such as pypid/ (no leading /)")
    return value if not value or value.endswith("/") else value + "/"


def _bucket(key: str, value: Any) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                                                      value):
        raise ConfigError(f"{key}: {value!r} is not an S3 bucket name")
    return value


def _endpoint(key: str, value: Any) -> str:
    text = _text(key, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username \
            or parts.password:
        raise ConfigError(f"{key}: expected an http(s) URL without credentials, such as "
                          "https://s3.example.org")
    return text.rstrip("/")


def _upstream_setting(check: Any) -> Any:
    def parse(key: str, value: Any) -> Any:
        from pypid.upstream.settings import SettingError

        try:
            return check(value, key)
        except SettingError as error:
            raise ConfigError(str(error)) from None

    return parse


def _upstream_url(value: Any, key: str) -> str | None:
    from pypid.upstream.settings import OFF, check_url

    url = check_url(_text(key, value), key)
    return None if url == OFF else url


def _upstream_allow(value: Any, key: str) -> tuple[str, ...]:
    from pypid.upstream.settings import check_patterns

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{key}: expected a list of names or patterns, got {value!r}")
    return check_patterns([str(item) for item in items], key)


def _upstream_number(check_name: str) -> Any:
    def check(value: Any, key: str) -> Any:
        from pypid.upstream import settings

        return getattr(settings, check_name)(value, key)

    return check


_SETTINGS: dict[str, tuple[str, Any]] = {
    "data-dir": ("data_dir", _text),
    "listen": ("listen", _listen),
    "max-upload-size": ("max_upload_size", _positive_int),
    "public-url": ("public_url", _public_url),
    "upload-workers": ("upload_workers", _positive_int),
    "upload-queue": ("upload_queue", _positive_int),
    "shutdown-grace": ("shutdown_grace", _positive_float),
    "access-log": ("access_log", _boolean),
    "request-timeout": ("request_timeout", _positive_float),
    "min-upload-rate": ("min_upload_rate", _non_negative_float),
    "auth-failure-limit": ("auth_failure_limit", _positive_int),
    "auth-failure-window": ("auth_failure_window", _positive_float),
    "auth-ban-time": ("auth_ban_time", _positive_float),
    "auth-allowlist": ("auth_allowlist", _networks),
    "metrics-allow": ("metrics_allow", _networks),
    "metrics": ("metrics", _boolean),
    "log-format": ("log_format", _log_format),
    "accel-redirect": ("accel_redirect", _accel_prefix),
    "upstream": ("upstream", _upstream_setting(_upstream_url)),
    "upstream-allow": ("upstream_allow", _upstream_setting(_upstream_allow)),
    "upstream-min-age": ("upstream_min_age", _upstream_setting(_upstream_number("check_min_age"))),
    "upstream-ttl": ("upstream_ttl", _upstream_setting(_upstream_number("check_ttl"))),
    "upstream-timeout": ("upstream_timeout", _positive_float),
    "upstream-max-file-size": ("upstream_max_file_size", _positive_int),
    "upstream-retention-days": ("upstream_retention_days", _non_negative_float),
    "blob-store": ("blob_store", _choice("file", "s3")),
    "s3-endpoint-url": ("s3_endpoint_url", _endpoint),
    "s3-bucket": ("s3_bucket", _bucket),
    "s3-prefix": ("s3_prefix", _s3_prefix),
    "s3-region": ("s3_region", _text),
    "s3-addressing-style": ("s3_addressing_style", _choice("auto", "path", "virtual")),
    "s3-verify-tls": ("s3_verify_tls", _boolean),
    "download": ("download", _choice("serve", "redirect", "proxy")),
    "download-expiry": ("download_expiry", _positive_int),
}

SETTING_NAMES = tuple(_SETTINGS)


def apply_settings(config: Config, settings: Mapping[str, Any], origin: str) -> Config:
    """Return config with settings (TOML spelling) applied; errors name origin and key."""
    changes: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in _SETTINGS:
            known = ", ".join(SETTING_NAMES)
            raise ConfigError(f"{origin}: unknown setting {key!r} (known: {known})")
        attribute, parse = _SETTINGS[key]
        try:
            changes[attribute] = parse(key, value)
        except ConfigError as error:
            raise ConfigError(f"{origin}: {error}") from None
    return replace(config, **changes)


def read_toml(path: str) -> dict[str, Any]:
    """The settings of a TOML file: top-level keys or a [pypid] table."""
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    table = document.get("pypid", document) if set(document) <= {"pypid"} else document
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [pypid] must be a table")
    return table


def load_config(config_file: str | None, command_line: Mapping[str, Any]) -> Config:
    """Defaults, then the TOML file, then the options given on the command line."""
    config = Config()
    if config_file is not None:
        config = apply_settings(config, read_toml(config_file), config_file)
    return _consistent(apply_settings(config, command_line, "command line"))


def _consistent(config: Config) -> Config:
    """Settings that only make sense together."""
    if config.blob_store == "s3" and not config.s3_bucket:
        raise ConfigError("s3-bucket: required with --blob-store s3")
    if config.download in ("redirect", "proxy") and config.blob_store != "s3":
        raise ConfigError(f"download: {config.download} needs --blob-store s3")
    if config.accel_redirect and config.blob_store != "file":
        raise ConfigError("accel-redirect: only with --blob-store file")
    return config
