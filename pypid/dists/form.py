"""The legacy upload form (twine's multipart POST), parsed as a stream in a worker thread.

Text fields are kept (bounded); the `content` part goes straight to a blob temp file while
md5, sha256 and blake2b-256 are computed in the same pass, so a 50 MB wheel is never in
memory. Every malformed or oversized input is a FormError with a reason for a person.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import multipart

CHUNK = 256 * 1024
MAX_FIELD_BYTES = 4 * 1024 * 1024  # all text fields together (long descriptions included)
MAX_PARTS = 256
FILE_FIELD = "content"
# Parts twine may send that pypid accepts and does not keep (PyPI stopped using them).
IGNORED_FILE_FIELDS = frozenset({"gpg_signature", "attestations"})


class FormError(ValueError):
    """The request body is not an acceptable upload form."""


@dataclass
class UploadedFile:
    filename: str
    temp_path: str
    size: int
    md5: str
    sha256: str
    blake2_256: str


@dataclass
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: UploadedFile | None = None

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def boundary_of(content_type: str | None) -> str:
    """The multipart boundary from a Content-Type header value."""
    if not content_type:
        raise FormError("expected a multipart/form-data upload (no Content-Type)")
    kind, options = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data":
        raise FormError(f"expected a multipart/form-data upload, not {kind or 'nothing'}")
    boundary = options.get("boundary")
    if not boundary:
        raise FormError("multipart/form-data without a boundary")
    return str(boundary)


def parse_upload_form(
    body: IO[bytes], content_type: str | None, new_temp: Callable[[], IO[bytes]]
) -> UploadForm:
    """Parse a whole body; the file part is written to a temp file from new_temp().

    On any error the temp file is removed before FormError is raised.
    """
    parser = FormParser(content_type, new_temp)
    body.seek(0)
    while chunk := body.read(CHUNK):
        parser.feed(chunk)
    return parser.close()


class FormParser:
    """Parses a body fed piece by piece (blocking file writes: call it from a thread).

    Any error removes the temp file, and the parser then refuses more input.
    """

    def __init__(self, content_type: str | None, new_temp: Callable[[], IO[bytes]]) -> None:
        self.form = UploadForm()
        try:
            self._parser = multipart.PushMultipartParser(
                boundary_of(content_type), max_header_size=8192, max_header_count=16,
                max_segment_count=MAX_PARTS,
            )
        except (ValueError, TypeError) as error:
            if isinstance(error, FormError):
                raise
            raise FormError(f"unusable multipart boundary: {error}") from None
        self._sink = _PartSink(self.form, new_temp)
        self._failed = False

    def feed(self, chunk: bytes) -> None:
        if self._failed:
            raise FormError("the upload form was already refused")
        try:
            for event in self._parser.parse(chunk):
                self._sink.event(event)
        except multipart.ParserLimitReached as error:
            self.abort()
            raise FormError(f"the upload form is too large or has too many parts: "
                            f"{error}") from None
        except multipart.MultipartError as error:
            self.abort()
            raise FormError(f"malformed multipart body: {error}") from None
        except BaseException:
            self.abort()
            raise

    def close(self) -> UploadForm:
        """The end of the body: the parsed form, or FormError if the body ended early."""
        self.feed(b"")
        if not self._parser.closed:
            self.abort()
            raise FormError("the upload form ended early (truncated body)")
        return self.form

    def abort(self) -> None:
        """Remove the temp file, if any; the form is refused."""
        self._failed = True
        self._sink.abort()


class _PartSink:
    """Receives parser events and routes each part to a text buffer or the file."""

    def __init__(self, form: UploadForm, new_temp: Callable[[], IO[bytes]]) -> None:
        self.form = form
        self.new_temp = new_temp
        self.name: str | None = None
        self.text: bytearray | None = None
        self.text_total = 0
        self.stream: IO[bytes] | None = None
        self.hashes: tuple[Any, ...] = ()
        self.size = 0
        self.filename = ""

    def event(self, event: multipart.MultipartSegment | bytes | bytearray | None) -> None:
        if isinstance(event, multipart.MultipartSegment):
            self.begin(event)
        elif event is None:
            self.end()
        elif self.stream is not None:
            self.stream.write(event)
            for digest in self.hashes:
                digest.update(event)
            self.size += len(event)
        elif self.text is not None:
            self.text_total += len(event)
            if self.text_total > MAX_FIELD_BYTES:
                raise FormError(f"form fields are larger than {MAX_FIELD_BYTES} bytes")
            self.text += event
        # else: an ignored part (signature, attestation): its bytes are dropped.

    def begin(self, segment: multipart.MultipartSegment) -> None:
        self.name = segment.name
        if segment.name == FILE_FIELD:
            if self.form.file is not None or self.stream is not None:
                raise FormError("the form has more than one 'content' file")
            if segment.filename is None:
                raise FormError("the 'content' part has no filename")
            self.filename = segment.filename
            self.stream = self.new_temp()
            self.hashes = (hashlib.md5(usedforsecurity=False), hashlib.sha256(),
                           hashlib.blake2b(digest_size=32))
            self.size = 0
        elif segment.filename is not None and segment.name in IGNORED_FILE_FIELDS:
            self.text = None
        else:
            self.text = bytearray()

    def end(self) -> None:
        if self.stream is not None:
            self.stream.flush()
            self.stream.close()
            md5, sha256, blake2 = (digest.hexdigest() for digest in self.hashes)
            self.form.file = UploadedFile(
                self.filename, self.stream.name, self.size, md5, sha256, blake2
            )
            self.stream = None
        elif self.text is not None and self.name is not None:
            try:
                value = self.text.decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(f"form field {self.name!r} is not UTF-8 text") from None
            self.form.fields.setdefault(self.name, []).append(value)
        self.text = None
        self.name = None

    def abort(self) -> None:
        paths = []
        if self.stream is not None:
            self.stream.close()
            paths.append(self.stream.name)
        if self.form.file is not None:
            paths.append(self.form.file.temp_path)
        for path in paths:
            try:
                os.unlink(path)
            except (FileNotFoundError, TypeError):
                pass
