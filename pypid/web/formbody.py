"""Upload bodies parsed while they arrive, in a worker thread, instead of spooled first.

A spooled body was written to disk by the reactor (blocking it whenever the kernel
throttled dirty pages), then read back and written again as the blob: with 20 MB
uploads, a third of the daemon's time went to the spool's writes. Here the reactor only
collects what the socket delivers; batches go to a worker thread, which parses the form
and writes the file part straight into its blob temp file (hashed on the way).

Memory stays bounded: while more than HIGH_WATER bytes wait for the worker, the
connection stops being read (TCP backpressure to the client). A body that ends before
BATCH bytes never leaves the reactor's hands until the upload job parses it whole, so a
small upload costs no extra thread hop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from pypid.dists.form import FormError, FormParser, UploadForm

if TYPE_CHECKING:
    from pypid.web.routes import Router

BATCH = 256 * 1024
HIGH_WATER = 1024 * 1024

log = Logger()


class StreamedFormBody:
    """The request's `content`: what Twisted writes the body into, parsed in batches."""

    def __init__(
        self, parser: FormParser, run: Callable[..., Deferred[Any]], transport: Any
    ) -> None:
        self._parser = parser
        self._run = run
        self._transport = transport
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._running: Deferred[Any] | None = None
        self._settled: list[Deferred[None]] = []
        self._error: BaseException | None = None
        self._complete = False  # the whole body has arrived; no batch starts any more
        self._paused = False
        self._lock = threading.Lock()
        self._taken = False  # finish() has the parser: the upload job owns the temp file
        self._abandoned = False
        self._size = 0

    # -- on the reactor, as the body arrives --------------------------------------------

    def write(self, data: bytes) -> int:
        self._size += len(data)
        if self._error is None and not self._abandoned:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._running is None and self._pending_size >= BATCH:
                self._start_batch()
            elif self._pending_size >= HIGH_WATER and not self._paused:
                self._paused = True
                self._transport.pauseProducing()
        return len(data)

    def _start_batch(self) -> None:
        chunks, self._pending, self._pending_size = self._pending, [], 0
        running = self._running = self._run(self._feed, chunks)
        running.addCallbacks(self._batch_done, self._batch_failed)

    def _feed(self, chunks: list[bytes]) -> None:
        """Worker thread."""
        for chunk in chunks:
            self._parser.feed(chunk)

    def _batch_done(self, _: object) -> None:
        self._running = None
        if not self._complete and not self._abandoned and self._pending_size >= BATCH:
            self._start_batch()
        else:
            self._fire_settled()
        self._maybe_resume()

    def _batch_failed(self, failure: Failure) -> None:
        # Keep reading (and dropping) the rest of the body; the route answers the error.
        self._running = None
        self._error = failure.value
        self._pending, self._pending_size = [], 0
        self._fire_settled()
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        if self._paused:  # the worker is done with a batch: nothing waits beyond one
            self._paused = False
            if not self._complete and not self._abandoned:
                self._transport.resumeProducing()

    def _fire_settled(self) -> None:
        waiting, self._settled = self._settled, []
        for waiter in waiting:
            waiter.callback(None)

    # -- once the body is complete ----------------------------------------------------

    def settled(self) -> Deferred[None]:
        """Fires when no batch is running; the body is complete, so none starts again."""
        self._complete = True
        if self._running is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._settled.append(waiter)
        return waiter

    def finish(self) -> UploadForm:
        """Worker thread, after settled(): parse what is left; the parsed form."""
        with self._lock:
            if self._abandoned:
                raise FormError("the upload was abandoned")
            self._taken = True
        if self._error is not None:
            raise self._error
        pending, self._pending = self._pending, []
        for chunk in pending:
            self._parser.feed(chunk)
        return self._parser.close()

    # -- what Twisted and the routes call on a request's content -----------------------

    def tell(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""  # the bytes went to the parser; no route but the upload reads them

    def close(self) -> None:
        """The request is done or gone: unless the upload job took the form, remove the
        temp file (after a running batch, which may still be writing it)."""
        if self._abandoned or self._taken:
            return
        self._abandoned = True
        self._pending, self._pending_size = [], 0
        self._fire_settled()
        running = self._running if self._running is not None else succeed(None)
        running.addBoth(lambda _: self._run(self._abort))
        running.addErrback(lambda failure: log.failure(
            "cannot remove an abandoned upload's temp file", failure))

    def _abort(self) -> None:
        """Worker thread."""
        with self._lock:
            if self._taken:
                return
            self._abandoned = True
        self._parser.abort()


def streamed_body(
    request: Any, new_temp: Callable[[], IO[bytes]], run: Callable[..., Deferred[Any]],
    router: Router,
) -> StreamedFormBody | None:
    """A streamed body for a POST to an endpoint whose body is an upload form (the route
    table says which), called when its headers are in (before Twisted has set the
    request's method and path); None: spool it as any other body."""
    channel = request.channel
    path = getattr(channel, "_path", None)  # Twisted keeps the request line here till then
    command = getattr(channel, "_command", None)
    if not isinstance(command, bytes) or not isinstance(path, bytes):
        return None
    endpoint = router.match(command, path.split(b"?", 1)[0]).endpoint
    if endpoint is None or not endpoint.streams_body:
        return None
    content_type = request.requestHeaders.getRawHeaders(b"content-type", [None])[0]
    try:
        parser = FormParser(content_type.decode("latin-1") if content_type else None, new_temp)
    except FormError:
        return None  # the upload route refuses it with the reason
    return StreamedFormBody(parser, run, channel.transport)
