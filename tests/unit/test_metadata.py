"""Core metadata extraction from wheels and sdists, and the archive limits."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pypid.dists import metadata
from tests.dists import sdist_bytes, wheel_bytes


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_wheel_metadata(tmp_path: Path) -> None:
    """A wheel's METADATA is returned byte for byte, with name, version and Requires-Python."""
    path = write(tmp_path, "w.whl", wheel_bytes("Foo.Bar", "1.2", requires_python=">=3.9"))
    core = metadata.extract(path, "foo_bar-1.2-py3-none-any.whl", 0)
    assert core is not None
    assert core.name == "Foo.Bar" and core.version == "1.2" and core.requires_python == ">=3.9"
    assert core.raw.startswith(b"Metadata-Version: 2.1")


def test_sdist_metadata(tmp_path: Path) -> None:
    """A .tar.gz sdist's top-level PKG-INFO is read."""
    data = sdist_bytes("foo", "2.0", requires_python=">=3.10")
    core = metadata.extract(write(tmp_path, "s.tar.gz", data), "foo-2.0.tar.gz", len(data))
    assert core is not None and core.version == "2.0" and core.requires_python == ">=3.10"


def test_zip_sdist_metadata(tmp_path: Path) -> None:
    """A .zip sdist's top-level PKG-INFO is read; one without it has no metadata."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("foo-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n")
    core = metadata.extract(write(tmp_path, "s.zip", buffer.getvalue()), "foo-1.0.zip", 0)
    assert core is not None and core.name == "foo"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("foo-1.0/setup.py", "")
    assert metadata.extract(write(tmp_path, "n.zip", buffer.getvalue()), "foo-1.0.zip", 0) is None


def test_wheel_without_metadata_is_refused(tmp_path: Path) -> None:
    """A wheel with no .dist-info/METADATA is not a wheel."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("foo.py", "")
    with pytest.raises(metadata.MetadataError, match="no .dist-info/METADATA"):
        metadata.extract(write(tmp_path, "w.whl", buffer.getvalue()), "foo-1.0-py3-none-any.whl", 0)


def test_broken_archives_are_refused(tmp_path: Path) -> None:
    """Bytes that are not a zip or gzip are refused, not crashed on."""
    for name in ("foo-1.0-py3-none-any.whl", "foo-1.0.zip", "foo-1.0.tar.gz"):
        with pytest.raises(metadata.MetadataError, match="not a valid"):
            metadata.extract(write(tmp_path, name, b"garbage" * 100), name, 700)
    truncated = wheel_bytes("foo", "1.0")[:200]
    with pytest.raises(metadata.MetadataError):
        metadata.extract(write(tmp_path, "t.whl", truncated), "foo-1.0-py3-none-any.whl", 200)


def test_oversized_metadata_is_refused(tmp_path: Path) -> None:
    """A METADATA over 1 MB is refused."""
    big = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n" + "x" * (1024 * 1024 + 1)
    data = wheel_bytes("foo", "1.0", metadata=big)
    with pytest.raises(metadata.MetadataError, match="larger than"):
        metadata.extract(write(tmp_path, "w.whl", data), "foo-1.0-py3-none-any.whl", len(data))


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    """A wheel that inflates far beyond its size is refused without being inflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("foo-1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n")
        archive.writestr("bomb.bin", b"\0" * (80 * 1024 * 1024))
    data = buffer.getvalue()
    with pytest.raises(metadata.MetadataError, match="implausible"):
        metadata.extract(write(tmp_path, "w.whl", data), "foo-1.0-py3-none-any.whl", len(data))


def test_tar_with_linked_pkg_info_is_refused(tmp_path: Path) -> None:
    """A PKG-INFO that is a symlink (say to /etc/passwd) is refused."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("foo-1.0/PKG-INFO")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    data = buffer.getvalue()
    with pytest.raises(metadata.MetadataError, match="regular file"):
        metadata.extract(write(tmp_path, "s.tar.gz", data), "foo-1.0.tar.gz", len(data))


def test_gzip_bomb_stops_early(tmp_path: Path) -> None:
    """A .tar.gz whose members inflate without bound is refused at the inflate limit."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = b"\0" * (70 * 1024 * 1024)
        info = tarfile.TarInfo("foo-1.0/zeros.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
        info = tarfile.TarInfo("foo-1.0/zeros2.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()
    with pytest.raises(metadata.MetadataError, match="implausible"):
        metadata.extract(write(tmp_path, "s.tar.gz", data), "foo-1.0.tar.gz", len(data))


def test_metadata_must_match_the_filename() -> None:
    """Metadata naming another package or version is refused."""
    from packaging.version import Version

    core = metadata.CoreMetadata(b"", "foo", "1.0", None)
    metadata.check_matches(core, "Foo", Version("1.0.0"))
    with pytest.raises(metadata.MetadataError, match="names package"):
        metadata.check_matches(core, "bar", Version("1.0"))
    with pytest.raises(metadata.MetadataError, match="names version"):
        metadata.check_matches(core, "foo", Version("2.0"))
