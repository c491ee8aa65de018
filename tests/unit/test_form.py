"""The streaming upload-form parser."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from pypid.dists.form import FormError, boundary_of, parse_upload_form
from pypid.testing import MemoryBlobs
from tests.dists import BOUNDARY, upload_form

CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def store(tmp_path: Path) -> MemoryBlobs:
    return MemoryBlobs(tmp_path / "tmp")


def test_fields_and_file_with_digests(store: MemoryBlobs) -> None:
    """Text fields are kept; the file goes to a temp file with md5/sha256/blake2 computed."""
    content = os.urandom(300_000)
    body, _ = upload_form("foo-1.0.tar.gz", content, "foo", "1.0", {"summary": "héllo"})
    form = parse_upload_form(io.BytesIO(body), CONTENT_TYPE, store.new_temp)
    assert form.first("name") == "foo" and form.first("summary") == "héllo"
    assert form.file is not None
    assert form.file.filename == "foo-1.0.tar.gz" and form.file.size == len(content)
    assert form.file.sha256 == hashlib.sha256(content).hexdigest()
    assert form.file.md5 == hashlib.md5(content).hexdigest()  # noqa: S324
    assert form.file.blake2_256 == hashlib.blake2b(content, digest_size=32).hexdigest()
    assert Path(form.file.temp_path).read_bytes() == content


def test_truncated_body_leaves_nothing(store: MemoryBlobs) -> None:
    """A body cut off inside the file part is refused and its temp file removed."""
    body, _ = upload_form("foo-1.0.tar.gz", b"x" * 100_000, "foo", "1.0")
    with pytest.raises(FormError, match="ended early|malformed"):
        parse_upload_form(io.BytesIO(body[:-5000]), CONTENT_TYPE, store.new_temp)
    assert list(store.temp_dir.iterdir()) == []


def test_two_files_are_refused(store: MemoryBlobs) -> None:
    """Exactly one content file per upload."""
    body, _ = upload_form("foo-1.0.tar.gz", b"abc", "foo", "1.0")
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; "
            f"filename=\"foo-1.0.zip\"\r\n\r\nxyz\r\n").encode()
    body = body.replace(f"--{BOUNDARY}--".encode(), part + f"--{BOUNDARY}--".encode())
    with pytest.raises(FormError, match="more than one"):
        parse_upload_form(io.BytesIO(body), CONTENT_TYPE, store.new_temp)
    assert list(store.temp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/form-data", "multipart/form-data; boundary="],
)
def test_content_type_must_be_multipart_with_boundary(content_type: str | None) -> None:
    """Anything but multipart/form-data with a boundary is refused."""
    with pytest.raises(FormError):
        boundary_of(content_type)


def test_garbage_is_refused(store: MemoryBlobs) -> None:
    """Bytes that are not multipart are refused."""
    with pytest.raises(FormError):
        parse_upload_form(io.BytesIO(b"hello" * 100), CONTENT_TYPE, store.new_temp)


def test_non_utf8_field_is_refused(store: MemoryBlobs) -> None:
    """Text fields must be UTF-8."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
            f"\xff\r\n--{BOUNDARY}--\r\n").encode("latin-1")
    with pytest.raises(FormError, match="UTF-8"):
        parse_upload_form(io.BytesIO(body), CONTENT_TYPE, store.new_temp)


def test_signature_parts_are_ignored(store: MemoryBlobs) -> None:
    """A gpg_signature file part is accepted and dropped."""
    body, _ = upload_form("foo-1.0.tar.gz", b"abc", "foo", "1.0")
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"gpg_signature\"; "
            f"filename=\"foo-1.0.tar.gz.asc\"\r\n\r\nsig\r\n").encode()
    form = parse_upload_form(io.BytesIO(part + body), CONTENT_TYPE, store.new_temp)
    assert form.file is not None and "gpg_signature" not in form.fields
