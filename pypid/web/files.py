"""Downloads: a blob streamed with a pull producer, with ETag, ranges and no encodings.

Never static.File: it would label a .tar.gz as gzip-encoded and clients would store the
inflated tar (STYLE.md pitfall 11). The file was opened in a worker thread; chunks are read
here, from the page cache in practice, as the transport asks for them.
"""

from __future__ import annotations

import os
import re
from typing import IO

from twisted.internet.interfaces import IPushProducer
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """(start, end inclusive) for one satisfiable range; None: no/ignored range; False: 416."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # multiple or odd ranges: answer with the whole file (allowed by RFC 9110)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


@implementer(IPushProducer)
class BlobProducer:
    """Writes a byte range of a blob while the transport keeps up (push producer).

    The transport pauses it when its buffer fills and resumes it once drained, so memory
    stays at about one buffer per download, with no cooperator round trip per chunk.
    """

    def __init__(self, request: IRequest, stream: IO[bytes], start: int, length: int) -> None:
        self._request = request
        self._stream = stream
        self._remaining = length
        self._paused = False
        self._done = False
        stream.seek(start)

    def start(self) -> None:
        self._request.registerProducer(self, True)  # type: ignore[attr-defined]
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        while not self._paused and not self._done:
            data = self._stream.read(min(CHUNK, self._remaining)) if self._remaining else b""
            if not data:
                self._finish()
                return
            self._remaining -= len(data)
            self._request.write(data)

    def _finish(self) -> None:
        self._done = True
        self._stream.close()
        self._request.unregisterProducer()  # type: ignore[attr-defined]
        self._request.finish()

    def stopProducing(self) -> None:
        self._done = True
        self._stream.close()


def content_type_for(filename: str) -> bytes:
    if filename.endswith(".metadata"):
        return b"text/plain; charset=utf-8"
    return b"application/octet-stream"


class _Stream(Resource):
    """What a Klein route returns to stream: Klein finishes any other answer at once."""

    isLeaf = True

    def __init__(self, producer: BlobProducer) -> None:
        super().__init__()
        self._producer = producer

    def render(self, request: IRequest) -> int:
        self._producer.start()
        return NOT_DONE_YET


def serve(
    request: IRequest, stream: IO[bytes], filename: str, etag: bytes
) -> bytes | Resource:
    """Answer a GET/HEAD for an open blob: bytes to write, or a resource that streams."""
    size = os.fstat(stream.fileno()).st_size
    request.setHeader(b"Content-Type", content_type_for(filename))
    request.setHeader(b"ETag", etag)
    request.setHeader(b"Accept-Ranges", b"bytes")
    # Blobs never change under a given sha256 URL.
    request.setHeader(b"Cache-Control", b"private, max-age=31536000, immutable")
    disposition = filename.replace('"', "").encode("utf-8", "replace")
    request.setHeader(b"Content-Disposition", b'attachment; filename="' + disposition + b'"')
    if etag in (request.getHeader(b"if-none-match") or b"").split(b", "):
        stream.close()
        request.setResponseCode(304)
        return b""
    wanted = None
    if_range = request.getHeader(b"if-range")
    if if_range is None or if_range == etag:
        header = request.getHeader(b"range")
        wanted = parse_range(header.decode("latin-1") if header else None, size)
    if wanted is False:
        stream.close()
        request.setResponseCode(416)
        request.setHeader(b"Content-Range", b"bytes */%d" % size)
        return b""
    start, length = 0, size
    if isinstance(wanted, tuple):
        start, end = wanted
        length = end - start + 1
        request.setResponseCode(206)
        request.setHeader(b"Content-Range", b"bytes %d-%d/%d" % (start, end, size))
    request.setHeader(b"Content-Length", b"%d" % length)
    if request.method == b"HEAD" or length == 0:
        stream.close()
        return b""
    return _Stream(BlobProducer(request, stream, start, length))
