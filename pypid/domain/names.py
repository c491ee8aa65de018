"""Names and filenames: what a valid project path, user name and upload filename are.

Package names, versions and distribution filenames are judged by `packaging`, the same
rules pip and warehouse use, never by regexes of our own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

# GitLab paths: letters, digits, '_', '-', '.'; not starting with '-' or '.', no '..'.
# Always fullmatch (`$` would accept a trailing newline) and ASCII (IGNORECASE alone lets
# the KELVIN SIGN pass as a K).
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII)
_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII)
_PEP508_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE | re.ASCII)
# PEP 440 allows no characters beyond these; packaging also strips surrounding spaces,
# which pypid refuses instead of storing "1.0\n".
_VERSION_CHARS = re.compile(r"[A-Za-z0-9.!+_-]{1,100}", re.ASCII)
MAX_FILENAME = 255


class BadName(ValueError):
    """A name, path or filename is not acceptable; the message says why."""


MAX_DEPTH = 20  # GitLab's limit of nested groups


def validate_group_path(path: str) -> list[str]:
    """'acme/platform' -> ['acme', 'platform']: one to MAX_DEPTH GitLab path parts."""
    parts = path.split("/")
    if not 1 <= len(parts) <= MAX_DEPTH:
        raise BadName(f"group path {path!r} must have 1 to {MAX_DEPTH} parts")
    for part in parts:
        if not _PATH_PART.fullmatch(part) or ".." in part or part.endswith((".git", ".atom")):
            raise BadName(
                f"path {path!r}: each part must start with a letter, digit or '_' "
                "and contain only letters, digits, '_', '-' and '.'"
            )
    return parts


def validate_project_path(path: str) -> tuple[str, str]:
    """'acme/platform/tools' -> ('acme/platform', 'tools'): a group path and a name."""
    if "/" not in path:
        raise BadName(f"project path {path!r} must be NAMESPACE/NAME")
    namespace, _, name = path.rpartition("/")
    try:
        validate_group_path(path)
    except BadName:
        raise BadName(
            f"project path {path!r}: each part must start with a letter, digit or '_' "
            "and contain only letters, digits, '_', '-' and '.'"
        ) from None
    return namespace, name


def validate_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name) or ".." in name:
        raise BadName(
            f"user name {name!r} must start with a letter, digit or '_' and contain only "
            "letters, digits, '_', '-' and '.'"
        )
    return name


def normalize_package_name(name: str) -> NormalizedName:
    """PEP 503 normalization of a valid distribution name; refuses invalid ones."""
    if not _PEP508_NAME.fullmatch(name):
        raise BadName(f"{name!r} is not a valid package name")
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise BadName(f"{name!r} is not a valid package name") from None


def is_normalized(name: str) -> bool:
    return canonicalize_name(name) == name


@dataclass(frozen=True)
class DistributionFile:
    """A distribution filename, parsed: what it is a file of."""

    filename: str
    name: NormalizedName
    version: Version
    kind: str  # "bdist_wheel" or "sdist"


def _refuse_path_parts(filename: str) -> None:
    if not filename:
        raise BadName("the upload has no filename")
    if "/" in filename or "\\" in filename or ".." in filename:
        raise BadName(f"invalid filename {filename!r}: it must not contain a path")
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        raise BadName("invalid filename: it contains control characters")
    if len(filename) > MAX_FILENAME:
        raise BadName(f"invalid filename: longer than {MAX_FILENAME} characters")


def parse_distribution_filename(filename: str) -> DistributionFile:
    """Parse a wheel or sdist (.tar.gz, .zip) filename with packaging's rules."""
    _refuse_path_parts(filename)
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistributionFile(filename, name, version, "bdist_wheel")
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return DistributionFile(filename, name, version, "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion, InvalidName) as error:
        raise BadName(f"invalid distribution filename {filename!r}: {error}") from None
    raise BadName(
        f"invalid distribution filename {filename!r}: expected a wheel (.whl) or an sdist "
        "(.tar.gz or .zip)"
    )


def parse_version(text: str) -> Version:
    if not _VERSION_CHARS.fullmatch(text):
        raise BadName(f"{text!r} is not a valid version (PEP 440)")
    try:
        return Version(text)
    except InvalidVersion:
        raise BadName(f"{text!r} is not a valid version (PEP 440)") from None


def check_upload_filename(filename: str, form_name: str, form_version: str) -> DistributionFile:
    """The filename must be a distribution of exactly the form's name and version."""
    dist = parse_distribution_filename(filename)
    name = normalize_package_name(form_name)
    version = parse_version(form_version)
    if dist.name != name:
        raise BadName(
            f"filename {filename!r} is not a file of package {form_name!r} (it names {dist.name!r})"
        )
    if dist.version != version:
        raise BadName(
            f"filename {filename!r} is not a file of version {form_version} "
            f"(it names {dist.version})"
        )
    return dist


def version_key(version: Version) -> str:
    """The form under which equal versions ('1.0', '1.0.0') are one package version."""
    return canonicalize_version(version, strip_trailing_zero=True)
