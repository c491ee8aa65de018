"""The lean lane: a GET the fast lane can answer from memory, parsed and answered without
twisted.web's Request machinery.

Profiled on a cached 1 MB download, twisted.web's side of a request (parsing the head a
line at a time, the Request object, its headers, its resource traversal, its logging)
cost more CPU than the kernel's copy of the file, and kept pypid at half nginx's rate on
one core. A bare Twisted protocol sending the same file matched nginx. So the channel
(pypid.web.site.PypidChannel) first offers each read to `LeanLane.answer`:

- only the plainest request qualifies: one whole head in the read and nothing after it,
  `GET` over HTTP/1.1, header names that are tokens, values without control characters,
  no body framing, no `Expect`, `Upgrade` or `Cookie`, no `Connection: close`, within
  Twisted's own size limits. Everything else (and every web page: they sign visitors in
  with cookies) is left to Twisted, untouched;
- the answer comes from the fast lane's `lean_answer`: the same route table, gate peek and
  `from_memory` twins as every other request, so no rule of pypid's is written here;
- whatever memory cannot answer, or any refusal, is handed back and Twisted parses the
  same bytes again from scratch, exactly as if this module did not exist.

What is written here is only HTTP/1.1's framing of such an answer, as twisted.web writes
it: the status line, `Server` and `Date`, the handler's headers (CR and LF in values
become spaces, as Twisted sanitizes them), and no body for 204 and 304. While an answer is
being written, the channel is marked as handling a request, so Twisted buffers whatever
the client sends next and replays it afterwards (`HTTPChannel.requestDone`), and the idle
timeout is off as for any request.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger
from twisted.web.http import RESPONSES
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, version

if TYPE_CHECKING:
    from pypid.web.fastlane import FastLane
    from pypid.web.site import PypidChannel

log = Logger()

# Within Twisted's own limits for a request's head (HTTPChannel.totalHeadersSize, 16 KiB;
# maxHeaders, 500): a longer head is Twisted's, to refuse as it does.
MAX_HEAD = 16384
MAX_HEADERS = 100
# Headers whose handling is Twisted's: a body, persistence, cookies, protocol switches.
_TWISTED_ONLY = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade",
                           b"cookie", b"te", b"trailer"))
_TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin-form, visible ASCII only
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_NO_BODY = (204, 304)
_SERVER_LINE = b"Server: " + version + b"\r\n"


class _Date:
    """The Date header's value, made once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


_date = _Date()


class LeanHeaders:
    """The slice of twisted.web.http_headers.Headers the fast lane's code uses; names are
    kept as given and looked up without case."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[bytes, tuple[bytes, list[bytes]]] = {}

    def getRawHeaders(self, name: bytes, default: Any = None) -> list[bytes] | Any:
        found = self._values.get(name.lower())
        return default if found is None else found[1]

    def hasHeader(self, name: bytes) -> bool:
        return name.lower() in self._values

    def setRawHeaders(self, name: bytes, values: list[bytes]) -> None:
        # Twisted's checkPersistence writes Connection: close here (then it is Twisted's).
        self._values[name.lower()] = (name, [_sanitized(value) for value in values])


def _sanitized(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if b"\r" in value or b"\n" in value:
        return b" ".join(value.splitlines())  # as twisted.web's Headers does
    return value


class LeanRequest:
    """A GET request parsed by `parse`, answered by the fast lane: the attributes and
    methods of twisted.web's Request that the fast lane, the gate and the answers use."""

    method = b"GET"
    clientproto = b"HTTP/1.1"
    body_received = 0
    startedWriting = False
    finished = False
    _disconnected = False
    producer: Any = None

    def __init__(self, channel: PypidChannel, uri: bytes, headers: LeanHeaders) -> None:
        self.channel = channel
        self.uri = uri
        self.path = uri.partition(b"?")[0]
        self.requestHeaders = headers
        self.responseHeaders = LeanHeaders()
        self.code = 200
        self.code_message = b"OK"
        self.sentLength = 0
        self.endpoint_name: str | None = None
        self.arrived: float | None = None

    # -- what the handlers read -------------------------------------------------------

    def getHeader(self, name: bytes) -> bytes | None:
        values = self.requestHeaders.getRawHeaders(name)
        return None if values is None else values[-1]

    def getCookie(self, name: bytes) -> None:
        return None  # requests with cookies are never lean

    def getClientAddress(self) -> Any:
        return self.channel.transport.getPeer()  # type: ignore[union-attr]

    # -- what they write ----------------------------------------------------------------

    def setHeader(self, name: bytes, value: bytes) -> None:
        if value.__class__ is not bytes or b"\r" in value or b"\n" in value:
            value = _sanitized(value)
        self.responseHeaders._values[name.lower()] = (name, [value])

    def setResponseCode(self, code: int, message: bytes | None = None) -> None:
        self.code = code
        self.code_message = message or RESPONSES.get(code, b"Unknown Status")

    def head_bytes(self) -> bytes:
        """The status line and headers, as twisted.web writes them (Server and Date first,
        as twisted.web's Request sets them before the handler runs); marks them written."""
        self.startedWriting = True
        values = self.responseHeaders._values
        parts = [b"HTTP/1.1 %d %s\r\n" % (self.code, self.code_message)]
        if b"server" not in values:
            parts.append(_SERVER_LINE)
        if b"date" not in values:
            parts.append(b"Date: %s\r\n" % _date())
        parts += [b"%s: %s\r\n" % (name, value)
                  for name, named in values.values() for value in named]
        parts.append(b"\r\n")
        return b"".join(parts)

    def write(self, data: bytes) -> None:
        if self.finished:
            raise RuntimeError("write after finish")
        if self._disconnected:
            return
        transport = self.channel.transport
        assert transport is not None
        if not self.startedWriting:
            if self.code not in _NO_BODY and not self.responseHeaders.hasHeader(
                    b"content-length"):
                # twisted.web would frame it in chunks; every lean answer has a length.
                raise RuntimeError("a lean answer without Content-Length")
            head = self.head_bytes()
            if self.code in _NO_BODY:
                transport.write(head)
                return
            transport.writeSequence([head, data] if data else [head])
        elif data and self.code not in _NO_BODY:
            transport.write(data)
        self.sentLength += len(data)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer
        self.channel.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.channel.unregisterProducer()
        self.producer = None

    def finish(self) -> None:
        if self.finished or self._disconnected:
            return
        if not self.startedWriting:
            self.write(b"")
        self.finished = True
        channel = self.channel
        site = channel.site  # type: ignore[attr-defined]
        site.log(self)
        site.request_done(None)
        channel.requestDone(self)

    def connectionLost(self, reason: Any) -> None:
        if not self.finished and not self._disconnected:
            self.channel.site.request_done(None)  # type: ignore[attr-defined]
        self._disconnected = True


def parse(channel: PypidChannel, data: bytes) -> LeanRequest | None:
    """The request in data if it is one whole plain GET and nothing else; None: Twisted's."""
    if not data.startswith(b"GET ") or len(data) > MAX_HEAD:
        return None
    line_end = data.find(b"\r\n")
    end = data.find(b"\r\n\r\n", line_end)
    if end < 0 or end + 4 != len(data):
        return None
    parts = data[:line_end].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not _TARGET.fullmatch(parts[1]):
        return None
    # Every header line a token, a colon and a value of visible characters, spaces and
    # tabs (no obs-fold, no bare CR or LF): checked in one pass.
    if not _HEADER_LINES.fullmatch(data, line_end + 2, end + 2):
        return None
    lines = data[line_end + 2:end].split(b"\r\n") if end > line_end else []
    if len(lines) >= MAX_HEADERS:
        return None
    headers = LeanHeaders()
    values = headers._values
    for line in lines:
        name, _, value = line.partition(b":")
        key = name.lower()
        if key in _TWISTED_ONLY:
            return None
        found = values.get(key)
        if found is None:
            values[key] = (name, [value.strip(b" \t")])
        else:
            found[1].append(value.strip(b" \t"))
    return LeanRequest(channel, parts[1], headers)


class LeanLane:
    """Offers each read of an idle connection to the fast lane (see the module's text)."""

    def __init__(self, fast_lane: FastLane) -> None:
        self._fast_lane = fast_lane

    def answer(self, channel: PypidChannel, data: bytes) -> bool:
        """True if data was one request and it has been answered (or is being written)."""
        request = parse(channel, data)
        # Twisted's own rule for keeping the connection (Connection: close is Twisted's).
        if request is None or not channel.checkPersistence(request, b"HTTP/1.1"):
            return False
        site = channel.site  # type: ignore[attr-defined]
        # As twisted.web does once a request's content is in (HTTPChannel.
        # allContentReceived): later reads are kept for replay until requestDone.
        channel.requests.append(request)
        channel._handlingRequest = True
        channel._savedTimeOut = None
        channel.setRawMode()
        site.request_started(request)
        try:
            # It stands in for the parts of IRequest that memory's answers use; anything
            # else raises before a byte is written, and Twisted answers instead.
            answer = self._fast_lane.lean_answer(cast(IRequest, request))
        except Exception:
            if request.startedWriting:
                log.failure("a lean answer failed while being written")
                channel.transport.abortConnection()  # type: ignore[union-attr]
                return True
            answer = None  # Twisted runs it again and answers the failure as usual
        if answer is None:
            # Undo, in reverse: nothing was written, so Twisted takes the bytes as new.
            if request.producer is not None:
                request.unregisterProducer()
            site.request_done(None)
            channel.line_mode = 1
            channel._handlingRequest = False
            channel.requests.remove(request)
            return False
        if answer is not NOT_DONE_YET:
            assert isinstance(answer, bytes)
            request.setHeader(b"Content-Length", b"%d" % len(answer))
            request.write(answer)
            request.finish()
        elif not request.finished and channel.timeOut:
            # Still being written: the idle timeout is off until it is done, as for any
            # request (a download that stalls is cut by its producer).
            channel._savedTimeOut = channel.setTimeout(None)
        return True
