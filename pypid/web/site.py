"""The Site, Channel and Request pypid serves with: bodies spooled to the data dir and
size-capped in one place, slow clients cut.

twisted.web would otherwise keep small bodies in memory, spool big ones to $TMPDIR (maybe
RAM), parse multipart forms on the reactor, and accept bodies of any size (STYLE.md
pitfalls 1-3). Here a body goes to an unlinked temp file in the data dir; once it passes
the upload limit, by Content-Length or counted as chunks stream in, the rest is discarded
unread-into-storage and the route answers 413 (`PypidRequest.body_refusal`). A client
that announces such a body with `Expect: 100-continue` gets the 413 instead of the 100.

Twisted's idle timeout restarts with every byte, so a client sending one header line (or
byte) every few seconds would hold a connection for good: the channel cuts a request
whose headers are not all in after the request timeout.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web import http, server
from twisted.web.resource import IResource

from pypid.web.errors import HTTPError, raw_response
from pypid.web.lean import LeanLane
from pypid.web.metrics import Stats

IN_MEMORY_BODY = 64 * 1024


class _Discard(io.RawIOBase):
    """Where the bytes of a refused body go; counts them so tell() works."""

    def __init__(self) -> None:
        super().__init__()
        self._count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._count += len(data)
        return len(data)

    def tell(self) -> int:
        return self._count

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""


class SpooledBody(io.BufferedIOBase):
    """Memory for small bodies, an unlinked file in the data dir past IN_MEMORY_BODY."""

    def __init__(self, spool_dir: Path) -> None:
        super().__init__()
        self._spool_dir = spool_dir
        self._stream: IO[bytes] = io.BytesIO()
        self._on_disk = False

    def write(self, data: Any) -> int:
        if not self._on_disk and self._stream.tell() + len(data) > IN_MEMORY_BODY:
            spooled = tempfile.TemporaryFile(dir=self._spool_dir, prefix="body-")
            spooled.write(self._stream.getvalue())  # type: ignore[attr-defined]
            self._stream = spooled
            self._on_disk = True
        return self._stream.write(data)

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()
        super().close()


class PypidRequest(server.Request):
    """Counts the body as it arrives and stops storing it past the site's upload limit."""

    body_too_large: int | None = None  # bytes announced or received, once over the limit
    body_received = 0
    body_error: OSError | None = None  # the body could not be spooled

    def body_refusal(self) -> BaseException | None:
        """Why the body cannot be used: over the upload limit (413), or it could not be
        stored (the OSError: a full disk is 507); None if it is fine."""
        if self.body_error is not None:
            return self.body_error
        if self.body_too_large is not None:
            return self.pypid_site.too_large(self.body_too_large)
        return None

    @property
    def pypid_site(self) -> PypidSite:
        site: PypidSite = self.channel.site  # type: ignore[attr-defined]
        return site

    _body_started: float | None = None

    def gotLength(self, length: int | None) -> None:
        site = self.pypid_site
        self._body_started = site.reactor.seconds()
        if length is not None and length > site.max_body_size:
            self.body_too_large = length
            self.content = _Discard()
        else:
            streamed = site.streamed_body(self) if length != 0 and site.streamed_body else None
            self.content = streamed if streamed is not None else SpooledBody(site.spool_dir)

    _counted_by: PypidSite | None = None

    arrived: float | None = None
    endpoint_name: str | None = None  # the route table's name, set by the fast lane

    def process(self) -> None:
        site = self._counted_by = self.pypid_site
        site.request_started(self)
        super().process()

    def finish(self) -> None:
        super().finish()
        self._uncount()

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self._uncount()

    def _uncount(self) -> None:
        site, self._counted_by = self._counted_by, None
        if site is not None:
            site.request_done(None)

    def handleContentChunk(self, data: bytes) -> None:
        self.body_received += len(data)
        if self._too_slow():
            return
        content = self.content
        assert content is not None
        if self.body_too_large is None and self.body_received > self.pypid_site.max_body_size:
            self.body_too_large = self.body_received
            content.close()
            content = self.content = _Discard()
        if self.body_too_large is not None:
            self.body_too_large = max(self.body_too_large, self.body_received)
        try:
            content.write(data)
        except OSError as error:
            # Disk full (or worse) while spooling: keep reading, store nothing; the route
            # answers with the error (507 for a full disk).
            self.body_error = error
            content.close()
            self.content = _Discard()


    def _too_slow(self) -> bool:
        """Cut a body that trickles in below the site's floor (after a grace period)."""
        site = self.pypid_site
        if self._body_started is None or not site.min_body_rate:
            return False
        elapsed = site.reactor.seconds() - self._body_started
        if elapsed < BODY_RATE_GRACE or self.body_received >= site.min_body_rate * elapsed:
            return False
        self._log.info("dropping a request whose body arrives at {rate:.0f} bytes/s",
                       rate=self.body_received / elapsed)
        self._body_started = None
        transport = self.channel.transport
        if transport is not None:
            transport.abortConnection()  # type: ignore[attr-defined]
        return True


# A body may start slowly (TCP slow start, a client hashing first); the floor applies after.
BODY_RATE_GRACE = 10.0


class PypidChannel(http.HTTPChannel):
    """HTTPChannel with a deadline for a request's headers, and no `100 Continue` for a
    body that will be refused."""

    _headers_started: float | None = None
    _cut = False  # aborted for slow headers
    last_credentials: Any = None  # pypid.web.credentials keeps its last parse here
    _log = Logger()

    def dataReceived(self, data: bytes) -> None:
        # Checked once per read, not per line: a client dripping its headers makes a read
        # per drip anyway. line_mode: Twisted reads headers in line mode, bodies raw.
        if self._cut:
            return  # whatever arrives between the abort and the close
        lean = self.site.lean  # type: ignore[attr-defined]
        if (lean is not None and self.line_mode and not self._handlingRequest
                and not self.requests and not self._buffer and self._headers_started is None
                and lean.answer(self, data)):
            self.resetTimeout()
            return
        if self.line_mode and not self._handlingRequest and self._headers_late():
            return
        super().dataReceived(data)

    def _headers_late(self) -> bool:
        """Start the headers' clock, or, once it has run past the timeout, cut."""
        limit = self.timeOut
        if not limit:
            return False
        now = self.site.reactor.seconds()  # type: ignore[attr-defined]
        started = self._headers_started
        if started is None:
            self._headers_started = now
            return False
        if now - started <= limit:
            return False
        self._log.info("dropping a client whose request headers took over {limit} s",
                       limit=limit)
        self._cut = True
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]
        return True

    def allHeadersReceived(self) -> None:
        self._headers_started = None
        super().allHeadersReceived()

    def _send100Continue(self) -> None:
        # Checked against Twisted 25.5-26.10: allHeadersReceived calls this after
        # gotLength, which has judged the announced length.
        request = self.requests[-1] if self.requests else None
        refused = request.body_refusal() if isinstance(request, PypidRequest) else None
        if isinstance(refused, HTTPError):
            self.transport.write(raw_response(refused))  # type: ignore[union-attr]
            self.loseConnection()
            return
        super()._send100Continue()


class PypidSite(server.Site):
    requestFactory = PypidRequest
    # Plain HTTP/1.1; TLS and HTTP/2 belong to the proxy in front.
    protocol = PypidChannel  # type: ignore[assignment]

    access_log = Logger(namespace="pypid.access")

    def __init__(
        self, resource: IResource, spool_dir: Path, max_body_size: int,
        log_requests: bool = False, min_body_rate: float = 0.0,
        streamed_body: Callable[[PypidRequest], Any] | None = None,
        stats: Stats | None = None, endpoint_of: Callable[[bytes, bytes], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, parsePOSTFormSubmission=False, **kwargs)
        # Makes the body of an upload form, parsed as it arrives (pypid.web.formbody);
        # None from it, or no such callable: the body is spooled.
        self.streamed_body = streamed_body
        self.log_requests = log_requests
        # /-/metrics: each finished request is counted under its route-table endpoint.
        self.stats = stats
        self._endpoint_of = endpoint_of
        self.min_body_rate = min_body_rate
        self.spool_dir = spool_dir
        self.max_body_size = max_body_size
        self.in_flight = 0
        # The lean lane (pypid.web.lean), when the root resource is the fast lane.
        lane = getattr(resource, "lean_answer", None)
        self.lean = LeanLane(resource) if lane is not None else None  # type: ignore[arg-type]
        self._drained: list[Deferred[None]] = []

    def log(self, request: Any) -> None:
        """Count the finished request (/-/metrics); one structured event per request when
        asked for (--access-log).

        The query string is left out: it is never needed to read the log and may carry
        things that should not be kept.
        """
        stats = self.stats
        if stats is not None and request.arrived is not None:
            endpoint = request.endpoint_name
            if endpoint is None:  # a resource other than the fast lane served it
                endpoint = self._endpoint_of(request.method, request.path) \
                    if self._endpoint_of is not None else "unmatched"
            stats.request_done(endpoint, request.code, self.reactor.seconds() - request.arrived,
                               request.sentLength, request.body_received)
        if self.log_requests:
            self.access_log.info(
                "{client} {method} {path} {code} {length}",
                client=request.getClientAddress().host
                if hasattr(request.getClientAddress(), "host") else "-",
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
                code=request.code, length=request.sentLength,
            )

    def request_started(self, request: Any) -> None:
        """Count a request in (for the graceful stop; cheaper than a notifyFinish Deferred
        per request) and note its arrival for the latency histogram."""
        self.in_flight += 1
        if self.stats is not None:
            request.arrived = self.reactor.seconds()

    def too_large(self, size: int) -> HTTPError:
        return HTTPError(413, f"File too large: {size} bytes, limit {self.max_body_size}")

    def request_done(self, _: object) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            waiting, self._drained = self._drained, []
            for waiter in waiting:
                waiter.callback(None)

    def drain(self, clock: IReactorTime, grace: float) -> Deferred[None]:
        """Fires when no request is in flight, or after grace seconds."""
        if self.in_flight == 0:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drained.append(waiter)

        def give_up() -> None:
            if not waiter.called:
                waiter.callback(None)

        timer = clock.callLater(grace, give_up)

        def stop_timer(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        waiter.addBoth(stop_timer)
        return waiter
