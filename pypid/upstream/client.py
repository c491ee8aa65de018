"""Speaking to an upstream index over HTTP, with treq: pages (conditional GETs) and files
(streamed into a temp file of the blob store, hashed on the way, in worker threads).

Every failure becomes an UpstreamError carrying the status pypid answers with (502: the
upstream is unreachable or answered badly; 504: it did not answer in time) and a reason
that names the upstream (without its credentials).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

import treq
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed

from pypid import __version__
from pypid.interfaces import IBlobStore
from pypid.upstream.settings import public_url

ACCEPT = ("application/vnd.pypi.simple.v1+json, "
          "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1")
USER_AGENT = f"pypid/{__version__}"
MAX_PAGE_SIZE = 64 * 1024 * 1024
WRITE_BATCH = 256 * 1024  # bytes gathered on the reactor before a worker writes them


class UpstreamError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class PageReply:
    status: int  # 200, 304 (not modified: body empty) or 404 (the upstream has no such page)
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A file fetched into a temp file of the blob store (not synced yet: the caller
    checks it first, and syncs what it keeps)."""

    temp_path: str
    sha256: str
    size: int


class UpstreamClient:
    """http: a treq HTTPClient (or treq.testing.StubTreq in tests)."""

    def __init__(self, http: Any, reactor: Any, run_worker: Callable[..., Deferred[Any]],
                 timeout: float) -> None:
        self._http = http
        self._reactor = reactor
        self._run_worker = run_worker
        self._timeout = timeout

    async def page(self, url: str, etag: str | None) -> PageReply:
        headers = {"Accept": ACCEPT, "User-Agent": USER_AGENT}
        if etag:
            headers["If-None-Match"] = etag
        where = public_url(url)

        async def fetch() -> PageReply:
            response = await self._http.request("GET", url, headers=headers, unbuffered=True)
            if response.code == 304:
                return PageReply(304, etag=etag)
            if response.code in (404, 410):
                await _drain(response)
                return PageReply(404)
            if response.code != 200:
                await _drain(response)
                raise UpstreamError(502, f"Bad Gateway - the upstream {where} answered "
                                         f"{response.code}")
            body = await _collect(response, MAX_PAGE_SIZE)
            return PageReply(200, body, _header(response, b"content-type"),
                             _header(response, b"etag"))

        reply: PageReply = await self._bounded(fetch(), where)
        return reply

    async def download(self, url: str, blobs: IBlobStore, max_size: int,
                       progress: Progress | None = None,
                       expected_size: int | None = None) -> Fetched:
        """The file at url, in a new temp file of blobs, with its sha256; at most
        max_size bytes (and expected_size, if given), else UpstreamError. progress hears
        of the answer's start and of every batch written. The caller commits or discards
        the temp file. The timeout bounds the wait for the answer, then every pause in
        its body (a large file may take long, a stalled one may not)."""
        where = public_url(url)
        sink = _Sink(blobs, self._run_worker, progress)

        async def answer() -> Any:
            return await self._http.request(
                "GET", url, headers={"User-Agent": USER_AGENT}, unbuffered=True)

        # The temp file is made (in a worker) while the request goes out.
        opening = Deferred.fromCoroutine(sink.open())
        try:
            response = await self._bounded(answer(), where)
            await opening
            if response.code != 200:
                await _drain(response)
                raise UpstreamError(502, f"Bad Gateway - the upstream answered "
                                         f"{response.code} for {where}")
            length = response.length if isinstance(response.length, int) else None
            if length is not None and length > max_size:
                await _drain(response)
                raise UpstreamError(502, f"Bad Gateway - the upstream file is {length} "
                                         f"bytes, more than the {max_size} allowed")
            if None not in (length, expected_size) and length != expected_size:
                await _drain(response)
                raise UpstreamError(502, f"Bad Gateway - the upstream file is {length} "
                                         f"bytes, not the {expected_size} its page gives")
            if progress is not None:
                progress.started(length if length is not None else expected_size,
                                 sink.path)
            await self._body(response, sink, max_size, where)
            fetched = await sink.finish()
            return fetched
        except BaseException:
            if not opening.called:
                await opening
            await sink.abandon()
            raise

    async def _body(self, response: Any, sink: _Sink, max_size: int, where: str) -> None:
        idle: Any = None
        collecting: Deferred[None] | None = None

        def take(data: bytes) -> None:
            idle.reset(self._timeout)
            sink.take(data, max_size)

        def stalled() -> None:
            if collecting is not None:
                collecting.cancel()

        idle = self._reactor.callLater(self._timeout, stalled)
        collecting = treq.collect(response, take)
        try:
            await collecting
        except TooLarge:
            raise UpstreamError(502, "Bad Gateway - the upstream file is larger than "
                                     f"the {max_size} bytes allowed") from None
        except CancelledError:
            raise UpstreamError(504, f"Gateway Timeout - the upstream {where} stopped "
                                     f"sending for {self._timeout:g} s") from None
        except ResponseFailed:
            raise UpstreamError(502, f"Bad Gateway - the upstream {where} broke off its "
                                     "answer") from None
        finally:
            if idle.active():
                idle.cancel()

    async def _bounded(self, work: Any, where: str) -> Any:
        """work within the timeout, its failures as UpstreamErrors."""
        deferred = Deferred.fromCoroutine(work)
        # Cancelled by the timeout, the HTTP stack fails with its own errors (such as
        # ResponseNeverReceived): whatever it raises then is a timeout.
        deferred.addTimeout(self._timeout, self._reactor,
                            onTimeoutCancel=lambda result, timeout: Failure(TimeoutError()))
        try:
            return await deferred
        except UpstreamError:
            raise
        except (TimeoutError, CancelledError):
            raise UpstreamError(504, f"Gateway Timeout - the upstream {where} did not answer "
                                     f"within {self._timeout:g} s") from None
        except (ConnectError, DNSLookupError) as error:
            raise UpstreamError(502, f"Bad Gateway - cannot reach the upstream {where}: "
                                     f"{error.__class__.__name__}") from None
        except ResponseFailed:
            raise UpstreamError(502, f"Bad Gateway - the upstream {where} broke off its "
                                     "answer") from None
        except TooLarge:
            raise UpstreamError(502, f"Bad Gateway - the upstream page {where} is larger "
                                     f"than {MAX_PAGE_SIZE} bytes") from None
        except Exception as error:  # anything else the HTTP stack raises
            raise UpstreamError(502, f"Bad Gateway - the upstream {where} failed: "
                                     f"{error.__class__.__name__}") from None


def _header(response: Any, name: bytes) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[0].decode("latin-1") if values else None


async def _collect(response: Any, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0

    def take(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > limit:
            raise TooLarge()
        parts.append(data)

    await treq.collect(response, take)
    return b"".join(parts)


async def _drain(response: Any) -> None:
    try:
        await treq.collect(response, lambda data: None)
    except Exception:  # noqa: S110 - the answer is already decided; its body is not needed
        pass


class Progress(Protocol):
    """Who follows a download as it arrives (pypid.upstream.proxy.FileFetch)."""

    def started(self, length: int | None, temp_path: str) -> None:
        """The upstream answers 200 with length bytes (None: unknown) into temp_path."""

    def wrote(self, total: int) -> None:
        """The first total bytes are in the temp file, readable by others."""


class _Sink:
    """A temp file receiving a download: chunks are gathered on the reactor and written
    and hashed in worker threads, one batch after the other (in order)."""

    def __init__(self, blobs: IBlobStore, run_worker: Callable[..., Deferred[Any]],
                 progress: Progress | None = None) -> None:
        self._blobs = blobs
        self._run_worker = run_worker
        self._progress = progress
        self._written = 0
        self.path = ""
        self._stream: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._size = 0
        self._writing: Deferred[Any] | None = None

    async def open(self) -> None:
        self._stream = await self._run_worker(self._blobs.new_temp)
        self.path = str(self._stream.name)

    def take(self, data: bytes, max_size: int) -> None:
        self._size += len(data)
        if self._size > max_size:
            raise TooLarge()
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= WRITE_BATCH:
            self._flush()

    def _flush(self, last: bool = False) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        if not batch:
            return
        previous = self._writing

        async def write() -> None:
            if previous is not None:
                await previous
            await self._run_worker(self._write, batch, last)
            self._written += sum(len(data) for data in batch)
            if self._progress is not None:
                self._progress.wrote(self._written)

        self._writing = Deferred.fromCoroutine(write())

    def _write(self, batch: list[bytes], last: bool = False) -> None:
        assert self._stream is not None
        for data in batch:
            self._digest.update(data)
            self._stream.write(data)
        if last:
            self._stream.close()
        else:
            self._stream.flush()  # readable through the file system by a streaming reader

    async def finish(self) -> Fetched:
        self._flush(last=True)  # the last batch's worker closes the file too
        if self._writing is not None:
            await self._writing
        assert self._stream is not None
        stream, self._stream = self._stream, None
        if not stream.closed:
            await self._run_worker(stream.close)
        return Fetched(str(stream.name), self._digest.hexdigest(), self._size)

    async def abandon(self) -> None:
        if self._writing is not None:
            try:
                await self._writing
            except Exception:  # noqa: S110 - the file goes anyway
                pass
        stream, self._stream = self._stream, None
        if stream is not None:
            await self._run_worker(stream.close)
            await self._run_worker(self._blobs.discard, stream.name)
