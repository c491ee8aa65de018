"""Downloads: a blob streamed with a pull producer, with ETag, ranges and no encodings.

Never static.File: it would label a .tar.gz as gzip-encoded and clients would store the
inflated tar (STYLE.md pitfall 11). The file was opened in a worker thread; chunks are read
here, from the page cache in practice, as the transport asks for them.
"""

from __future__ import annotations

import os
from typing import IO, Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from pypid.web import wire
from pypid.web.negotiation import byte_range, not_modified

CHUNK = 256 * 1024
log = Logger()


def cut_connection(request: IRequest) -> None:
    """Abort a download's connection: after its headers went out, the only way to tell
    the client its bytes are not to be trusted (or not coming)."""
    transport = getattr(request.channel, "transport", None)  # type: ignore[attr-defined]
    if transport is not None:
        transport.abortConnection()


@implementer(IPushProducer)
class BlobProducer:
    """Writes a byte range of a blob while the transport keeps up (push producer).

    The transport pauses it when its buffer fills and resumes it once drained, so memory
    stays at about one buffer per download. On a plain TCP connection whose send buffer is
    empty, the bytes go with os.sendfile straight from the page cache to the socket; when
    the socket is full, one chunk goes through the transport instead, which pauses this
    producer and resumes it once the socket has drained.
    """

    def __init__(self, request: IRequest, stream: IO[bytes], start: int, length: int) -> None:
        self._request = request
        self._stream = stream
        self._offset = start
        self._remaining = length
        self._paused = False
        self._done = False
        self._transport = wire.tcp_transport(request)
        # Twisted's idle timeout is off while an answer is being written, so a client
        # that stops reading would hold the connection and the open blob for good:
        # a download paused for longer than the site's idle timeout is cut.
        site = getattr(getattr(request, "channel", None), "site", None)
        self._stall_limit: float | None = getattr(site, "timeOut", None)
        self._clock: Any = getattr(site, "reactor", None)
        self._stall_timer: Any = None

    def start(self) -> None:
        transport = self._transport
        if transport is None or wire.queued(transport):
            self._request.registerProducer(self, True)  # type: ignore[attr-defined]
            self._request.write(b"")  # the status line and headers, through the transport
            self.resumeProducing()
            return
        # Flagged MSG_MORE: the kernel holds the headers until sendfile's bytes join them,
        # so the answer leaves in full-sized segments.
        wire.send(transport, [wire.head_of(self._request, transport)], more=True)
        # Most answers fit the socket at once: sent and finished then, without
        # registering as the connection's producer.
        while (not self._done and self._remaining > 0 and self._sendable() > 0
               and self._sendfile()):
            pass
        if self._done:
            return
        if self._remaining <= 0:
            self._finish()
            return
        self._request.registerProducer(self, True)  # type: ignore[attr-defined]
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self._paused = True
        if self._stall_timer is None and self._stall_limit and self._clock is not None:
            self._stall_timer = self._clock.callLater(self._stall_limit, self._stalled)

    def _stalled(self) -> None:
        self._stall_timer = None
        log.info("cutting a download whose client stopped reading for {seconds:.0f} s",
                 seconds=self._stall_limit)
        self.stopProducing()
        cut_connection(self._request)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            if self._stall_timer.active():
                self._stall_timer.cancel()
            self._stall_timer = None

    def resumeProducing(self) -> None:
        self._paused = False
        self._cancel_stall_timer()
        while not self._paused and not self._done:
            if self._remaining <= 0:
                self._finish()
                return
            if self._sendable() <= 0:
                return  # more is on its way (FollowingProducer): wait to be resumed
            if self._transport is None or not self._sendfile():
                self._write_chunk()

    def _sendable(self) -> int:
        """How many of the remaining bytes may go now (all of them, for a whole blob)."""
        return self._remaining

    def _sendfile(self) -> bool:
        """Send what the socket takes now; False if a buffered write must go first."""
        transport = self._transport
        assert transport is not None
        if wire.queued(transport):
            transport.doWrite()  # try to flush what is queued (headers) right now
            if wire.queued(transport):
                return False
        try:
            sent = os.sendfile(transport.fileno(), self._stream.fileno(), self._offset,
                               min(self._sendable(), SENDFILE_MAX))
        except BlockingIOError:
            return False
        except OSError:
            self.stopProducing()  # the connection is gone; the transport will notice
            return True
        if sent == 0:
            self._remaining = 0  # the blob is shorter than its row says: stop, don't spin
            return True
        self._offset += sent
        self._remaining -= sent
        self._request.sentLength += sent  # type: ignore[attr-defined]  # for logs, metrics
        return True

    def _write_chunk(self) -> None:
        data = os.pread(self._stream.fileno(), min(CHUNK, self._sendable()), self._offset)
        if not data:
            self._remaining = 0
            return
        self._offset += len(data)
        self._remaining -= len(data)
        self._request.write(data)

    def _finish(self) -> None:
        self._done = True
        self._stream.close()
        self._request.unregisterProducer()  # type: ignore[attr-defined]
        self._request.finish()

    def stopProducing(self) -> None:
        self._done = True
        self._cancel_stall_timer()
        self._stream.close()


SENDFILE_MAX = 4 * 1024 * 1024


class FollowingProducer(BlobProducer):
    """Sends a file that is still arriving (an upstream fetch, pypid.upstream.proxy.
    FileFetch), as far as it is written, as BlobProducer sends a blob (sendfile while the
    socket takes it); its last byte only once the whole file has passed its checks. A fetch
    that fails them is cut off instead, so that no client ever receives all of a file that
    did not match its sha256 (and the hash check of pip or uv fails on what it did get)."""

    def __init__(self, request: IRequest, fetch: Any, stream: IO[bytes], length: int) -> None:
        super().__init__(request, stream, 0, length)
        self._fetch = fetch
        self._length = length

    def start(self) -> None:
        self._fetch.watch(self._arrived)
        super().start()

    def _sendable(self) -> int:
        fetch = self._fetch
        whole = fetch.checked or (fetch.finished and not fetch.failed)
        limit = self._length if whole else min(fetch.written, self._length - 1)
        return limit - self._offset

    def _arrived(self) -> None:
        if self._done:
            return
        if self._fetch.failed and not self._fetch.checked:
            self._cut()
        elif not self._paused:
            self.resumeProducing()

    def _cut(self) -> None:
        log.info("cut off a download whose upstream fetch failed its checks")
        self.stopProducing()
        cut_connection(self._request)

    def _finish(self) -> None:
        self._fetch.unwatch(self._arrived)
        super()._finish()

    def stopProducing(self) -> None:
        self._fetch.unwatch(self._arrived)
        super().stopProducing()


@implementer(IPushProducer)
class RangeReader:
    """Sends a byte range of a remote blob (--download proxy) a chunk at a time: the next
    chunk is read (in a worker thread, by read(offset, length)) only once the last one was
    written and the transport is not paused, so memory stays at one chunk per download.
    A read that fails after the headers went out cuts the connection."""

    def __init__(self, request: IRequest, read: Any, start: int, length: int) -> None:
        self._request = request
        self._read = read
        self._offset = start
        self._remaining = length
        self._paused = False
        self._reading = False
        self._done = False

    def start(self) -> None:
        self._request.registerProducer(self, True)  # type: ignore[attr-defined]
        self._next()

    def _next(self) -> None:
        if self._done or self._paused or self._reading:
            return
        if self._remaining <= 0:
            self._done = True
            self._request.unregisterProducer()  # type: ignore[attr-defined]
            self._request.finish()
            return
        self._reading = True
        size = min(CHUNK, self._remaining)
        self._read(self._offset, size).addCallbacks(self._got, self._failed)

    def _got(self, data: bytes) -> None:
        self._reading = False
        if self._done:
            return
        if not data:
            self._failed(None)
            return
        self._offset += len(data)
        self._remaining -= len(data)
        self._request.write(data)
        self._next()

    def _failed(self, failure: Any) -> None:
        self._reading = False
        if self._done:
            return
        log.warn("cut off a proxied download: the object store failed a read")
        self._done = True
        cut_connection(self._request)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._next()

    def stopProducing(self) -> None:
        self._done = True


def serve_remote(request: IRequest, read: Any, size: int, filename: str,
                 etag: bytes) -> bytes | Resource:
    """Answer a GET/HEAD (ranges, If-None-Match) for a blob read a chunk at a time."""
    span = _prepare(request, size, filename, etag)
    if span is None:
        return b""
    return Stream(RangeReader(request, read, *span))


def follow(request: IRequest, fetch: Any, stream: IO[bytes], filename: str,
           etag: bytes, length: int) -> Resource:
    """Answer a plain GET with a file still arriving (see FollowingProducer)."""
    span = _prepare(request, length, filename, etag)
    assert span == (0, length), "ranges, HEAD and revalidations wait for the whole file"
    return Stream(FollowingProducer(request, fetch, stream, length))


def content_type_for(filename: str) -> bytes:
    if filename.endswith(".metadata"):
        return b"text/plain; charset=utf-8"
    return b"application/octet-stream"


class Stream(Resource):
    """What a Klein route returns to stream: Klein finishes any other answer at once."""

    isLeaf = True

    def __init__(self, producer: BlobProducer | RangeReader) -> None:
        super().__init__()
        self._producer = producer

    def render(self, request: IRequest) -> int:
        self._producer.start()
        return NOT_DONE_YET


def _prepare(
    request: IRequest, size: int, filename: str, etag: bytes
) -> tuple[int, int] | None:
    """Headers of a file answer; (start, length) to send, or None if nothing is to be sent
    (304, 416, HEAD, empty)."""
    request.setHeader(b"Content-Type", content_type_for(filename))
    request.setHeader(b"ETag", etag)
    request.setHeader(b"Accept-Ranges", b"bytes")
    # Content never changes under a given sha256 URL.
    request.setHeader(b"Cache-Control", b"private, max-age=31536000, immutable")
    disposition = filename.replace('"', "").encode("utf-8", "replace")
    request.setHeader(b"Content-Disposition", b'attachment; filename="' + disposition + b'"')
    if not_modified(request.getHeader(b"if-none-match"), etag):
        request.setResponseCode(304)
        return None
    wanted = None
    if_range = request.getHeader(b"if-range")
    if if_range is None or if_range == etag:
        wanted = byte_range(request.getHeader(b"range"), size)
    if wanted is False:
        request.setResponseCode(416)
        request.setHeader(b"Content-Range", b"bytes */%d" % size)
        return None
    start, length = 0, size
    if isinstance(wanted, tuple):
        start, length = wanted
        request.setResponseCode(206)
        request.setHeader(b"Content-Range",
                          b"bytes %d-%d/%d" % (start, start + length - 1, size))
    request.setHeader(b"Content-Length", b"%d" % length)
    if request.method == b"HEAD" or length == 0:
        return None
    return start, length


def serve(
    request: IRequest, stream: IO[bytes], filename: str, etag: bytes, size: int | None = None
) -> bytes | BlobProducer:
    """Answer a GET/HEAD for an open blob (of size bytes, if the caller knows):
    bytes to write, or a producer to start."""
    if size is None:
        size = os.fstat(stream.fileno()).st_size
    span = _prepare(request, size, filename, etag)
    if span is None:
        stream.close()
        return b""
    return BlobProducer(request, stream, *span)


def accel_redirect(request: IRequest, filename: str, etag: bytes, target: str) -> bytes:
    """Answer a GET/HEAD by handing the blob to nginx (X-Accel-Redirect to an internal
    location): pypid has authorized the request and sets the headers; nginx sends the bytes,
    ranges included, and replaces the length."""
    request.setHeader(b"Content-Type", content_type_for(filename))
    request.setHeader(b"ETag", etag)
    request.setHeader(b"Cache-Control", b"private, max-age=31536000, immutable")
    disposition = filename.replace('"', "").encode("utf-8", "replace")
    request.setHeader(b"Content-Disposition", b'attachment; filename="' + disposition + b'"')
    if not_modified(request.getHeader(b"if-none-match"), etag):
        request.setResponseCode(304)
        return b""
    request.setHeader(b"X-Accel-Redirect", target.encode("ascii"))
    return b""


def serve_bytes(request: IRequest, data: bytes, filename: str, etag: bytes) -> bytes:
    """Answer a GET/HEAD for small content held in memory (core metadata)."""
    span = _prepare(request, len(data), filename, etag)
    if span is None:
        return b""
    start, length = span
    return data[start:start + length]
