"""Core metadata from wheels (`*.dist-info/METADATA`) and sdists (`PKG-INFO`), bounded.

Runs in a worker thread. Archives are untrusted: the metadata file must be a regular member
no larger than MAX_METADATA_BYTES, and reading stops when an archive inflates beyond
MAX_INFLATE_RATIO times its size, so a zip or gzip bomb costs nothing.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

MAX_METADATA_BYTES = 1024 * 1024
MAX_INFLATE_RATIO = 200
MIN_INFLATE_ALLOWANCE = 64 * 1024 * 1024
MAX_TAR_MEMBERS = 100_000


class MetadataError(ValueError):
    """The archive or its metadata is unacceptable; the message says why."""


# PEP 643: from Metadata-Version 2.2 on, an sdist's PKG-INFO names the fields that a build
# may change (Dynamic); the rest are what installing it produces. These are the fields an
# installer takes from PEP 658 metadata instead of building.
INSTALL_FIELDS = frozenset({"requires-dist", "requires-python"})


@dataclass(frozen=True)
class CoreMetadata:
    raw: bytes
    name: str | None
    version: str | None
    requires_python: str | None
    metadata_version: str | None = None
    dynamic: frozenset[str] = frozenset()


def parse_raw(raw: bytes) -> CoreMetadata:
    parsed, _unparsed = parse_email(raw)
    return CoreMetadata(
        raw=raw,
        name=parsed.get("name"),
        version=parsed.get("version"),
        requires_python=parsed.get("requires_python"),
        metadata_version=parsed.get("metadata_version"),
        dynamic=frozenset(field.lower() for field in parsed.get("dynamic") or ()),
    )


def servable(metadata: CoreMetadata, filename: str) -> bool:
    """May this metadata be served as the file's PEP 658 `.metadata`?

    PEP 658 asks that it be exactly what installing the file produces. A wheel's METADATA
    is that. An sdist's PKG-INFO is only from Metadata-Version 2.2 (PEP 643) and only if
    the dependencies and Requires-Python are not Dynamic: before that, setuptools wrote
    PKG-INFO without dependencies (they were in requires.txt), and pip, trusting the
    advertisement, would install such a package without its dependencies.
    """
    if filename.endswith(".whl"):
        return True
    try:
        version = Version(metadata.metadata_version or "0")
    except InvalidVersion:
        return False
    return version >= Version("2.2") and not metadata.dynamic & INSTALL_FIELDS


def _inflate_limit(archive_size: int) -> int:
    return max(MIN_INFLATE_ALLOWANCE, archive_size * MAX_INFLATE_RATIO)


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_METADATA_BYTES:
        raise MetadataError(f"{info.filename} is larger than {MAX_METADATA_BYTES} bytes")
    try:
        with archive.open(info) as member:
            data = member.read(MAX_METADATA_BYTES + 1)
    except (zlib.error, zipfile.BadZipFile, EOFError) as error:
        raise MetadataError(f"{info.filename} is corrupt: {error}") from None
    except NotImplementedError:
        raise MetadataError(f"{info.filename} uses an unsupported compression method") from None
    except RuntimeError:  # zipfile's word for an encrypted member
        raise MetadataError(f"{info.filename} is encrypted") from None
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(f"{info.filename} is larger than {MAX_METADATA_BYTES} bytes")
    return data


def wheel_metadata(path: str) -> CoreMetadata:
    """A wheel must have exactly one top-level *.dist-info/METADATA."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            size = sum(info.compress_size for info in infos)
            if total > _inflate_limit(size):
                raise MetadataError("the wheel inflates to an implausible size")
            found = [
                info for info in infos
                if info.filename.count("/") == 1
                and info.filename.endswith("/METADATA")
                and info.filename.split("/", 1)[0].endswith(".dist-info")
            ]
            if len(found) != 1:
                raise MetadataError(
                    "the wheel has no .dist-info/METADATA" if not found
                    else "the wheel has more than one .dist-info/METADATA"
                )
            return parse_raw(_read_zip_member(archive, found[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise MetadataError(f"the wheel is not a valid zip archive: {error}") from None


def sdist_zip_metadata(path: str) -> CoreMetadata | None:
    try:
        with zipfile.ZipFile(path) as archive:
            found = [
                info for info in archive.infolist()
                if info.filename.count("/") == 1 and info.filename.endswith("/PKG-INFO")
            ]
            if not found:
                return None
            return parse_raw(_read_zip_member(archive, found[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise MetadataError(f"the sdist is not a valid zip archive: {error}") from None


def sdist_tar_metadata(path: str, archive_size: int) -> CoreMetadata | None:
    """The top directory's PKG-INFO of a .tar.gz, read without unpacking anything else."""
    limit = _inflate_limit(archive_size)
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for count, member in enumerate(archive):
                if count > MAX_TAR_MEMBERS or archive.offset > limit:
                    raise MetadataError("the sdist inflates to an implausible size")
                parts = member.name.split("/")
                if len(parts) != 2 or parts[1] != "PKG-INFO":
                    continue
                if not member.isfile():
                    raise MetadataError("the sdist's PKG-INFO is not a regular file")
                if member.size > MAX_METADATA_BYTES:
                    raise MetadataError(f"PKG-INFO is larger than {MAX_METADATA_BYTES} bytes")
                stream = archive.extractfile(member)
                assert stream is not None
                return parse_raw(stream.read(MAX_METADATA_BYTES))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as error:
        if isinstance(error, MetadataError):
            raise
        raise MetadataError(f"the sdist is not a valid .tar.gz archive: {error}") from None
    return None


def extract(path: str, filename: str, size: int) -> CoreMetadata | None:
    if filename.endswith(".whl"):
        return wheel_metadata(path)
    if filename.endswith(".zip"):
        return sdist_zip_metadata(path)
    return sdist_tar_metadata(path, size)


def check_matches(metadata: CoreMetadata, name: str, version: Version) -> None:
    """The metadata must describe the same distribution the filename names."""
    if metadata.name is None or canonicalize_name(metadata.name) != canonicalize_name(name):
        raise MetadataError(
            f"the file's metadata names package {metadata.name!r}, not {name!r}"
        )
    try:
        if metadata.version is None or Version(metadata.version) != version:
            raise MetadataError(
                f"the file's metadata names version {metadata.version!r}, not {version}"
            )
    except InvalidVersion:
        raise MetadataError(f"the file's metadata has an invalid version "
                            f"{metadata.version!r}") from None
