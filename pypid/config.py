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


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _listen(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{key}: expected an endpoint string or a list of them, got {value!r}")
    return tuple(_text(key, item) for item in items)


def _public_url(key: str, value: Any) -> str:
    text = _text(key, value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key}: expected an http(s) URL such as https://example.org/pypi")
    if parts.query or parts.fragment:
        raise ConfigError(f"{key}: must not contain a query or fragment")
    return text


_SETTINGS: dict[str, tuple[str, Any]] = {
    "data-dir": ("data_dir", _text),
    "listen": ("listen", _listen),
    "max-upload-size": ("max_upload_size", _positive_int),
    "public-url": ("public_url", _public_url),
    "upload-workers": ("upload_workers", _positive_int),
    "upload-queue": ("upload_queue", _positive_int),
    "shutdown-grace": ("shutdown_grace", _positive_float),
    "access-log": ("access_log", _boolean),
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
    return apply_settings(config, command_line, "command line")
