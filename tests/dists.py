"""Build small real distributions and legacy upload forms for the tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
import zipfile
from pathlib import Path


def metadata_text(name: str, version: str, requires_python: str | None = None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             "Summary: a test package"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return "\n".join(lines) + "\n\n"


def module_name(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def wheel_bytes(
    name: str, version: str, requires_python: str | None = None, padding: int = 0,
    metadata: str | None = None,
) -> bytes:
    """A pure-Python wheel with one module `<name>` holding VALUE = version."""
    dist = f"{module_name(name)}-{version}"
    buffer = io.BytesIO()
    with _FixedTimeZip(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{module_name(name)}.py", f"VALUE = {version!r}\n")
        if padding:
            # Incompressible but deterministic, so the file really is about this large.
            noise = random.Random(padding).randbytes(padding)
            archive.writestr(f"{module_name(name)}_data.bin", noise, zipfile.ZIP_STORED)
        archive.writestr(f"{dist}.dist-info/METADATA",
                         metadata if metadata is not None
                         else metadata_text(name, version, requires_python))
        archive.writestr(f"{dist}.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n")
        archive.writestr(f"{dist}.dist-info/RECORD", "")
    return buffer.getvalue()


class _FixedTimeZip(zipfile.ZipFile):
    """Same arguments, same bytes: members get a fixed timestamp instead of now."""

    def writestr(self, name: str | zipfile.ZipInfo, data: str | bytes,  # type: ignore[override]
                 compress_type: int | None = None) -> None:
        info = zipfile.ZipInfo(str(name), date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = compress_type if compress_type is not None else self.compression
        super().writestr(info, data)


def wheel_filename(name: str, version: str) -> str:
    return f"{module_name(name)}-{version}-py3-none-any.whl"


def sdist_bytes(name: str, version: str, requires_python: str | None = None,
                metadata: str | None = None, extra: dict[str, str] | None = None) -> bytes:
    """An sdist with PKG-INFO (metadata_text's, or metadata) and a module; extra: more
    files (path below the top directory -> text)."""
    top = f"{module_name(name)}-{version}"
    buffer = io.BytesIO()
    members = [
        (f"{top}/PKG-INFO", metadata if metadata is not None
         else metadata_text(name, version, requires_python)),
        (f"{top}/{module_name(name)}.py", f"VALUE = {version!r}\n"),
    ] + [(f"{top}/{path}", text) for path, text in (extra or {}).items()]
    # mtime=0 in the gzip header: the same arguments give the same bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as archive:
        for path, text in members:
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sdist_filename(name: str, version: str) -> str:
    return f"{module_name(name)}-{version}.tar.gz"


def write_wheel(directory: Path, name: str, version: str, **options: object) -> Path:
    path = directory / wheel_filename(name, version)
    path.write_bytes(wheel_bytes(name, version, **options))  # type: ignore[arg-type]
    return path


BOUNDARY = "pypid-test-boundary-7d3f"


def upload_form(
    filename: str, content: bytes, name: str, version: str,
    extra: dict[str, str] | None = None, digests: bool = True,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the legacy upload form, as twine sends it."""
    fields: list[tuple[str, str]] = [
        (":action", "file_upload"), ("protocol_version", "1"), ("name", name),
        ("version", version), ("filetype", "bdist_wheel" if filename.endswith(".whl")
                               else "sdist"), ("metadata_version", "2.1"),
    ]
    if digests:
        fields += [("md5_digest", hashlib.md5(content).hexdigest()),  # noqa: S324
                   ("sha256_digest", hashlib.sha256(content).hexdigest()),
                   ("blake2_256_digest", hashlib.blake2b(content, digest_size=32).hexdigest())]
    for key, value in (extra or {}).items():
        fields = [field for field in fields if field[0] != key] + [(key, value)]
    body = io.BytesIO()
    for key, value in fields:
        body.write(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n"
                   f"{value}\r\n".encode())
    body.write(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; "
               f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
               .encode())
    body.write(content)
    body.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    return body.getvalue(), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
