"""Answers written straight to an idle TCP socket: a download's headers (ahead of
sendfile), and big pages whole.

Through the transport, the headers of a download would leave as a segment of their own
(the transport sends them on its next turn, then sendfile sends the body), which cost the
client side a wake-up and a read per answer: with 1 MB files, wrk's core ran out first,
at 2,000 answers/s beside nginx's 3,000. Sent here with MSG_MORE, the kernel holds them
until sendfile's bytes join them, as nginx does with TCP_NOPUSH. Twisted still writes the
status line and headers (into a capture, below), so its rules for persistence, HEAD and
chunking still apply; pypid only takes over the sending. Whatever the socket does not take
goes back to the transport, which sends it and handles any error as usual.

Big pages (the root index of thousands of projects) go in one sendmsg from the cached
bytes, where the transport would first join and copy them: 4,400 -> 8,000 answers/s for a
195 kB page. Small pages keep the transport's path: sent at once like this they measured
slower (9,500 against 13,100 answers/s for 658 bytes), and no better at 8 kB; the
transport's batching of writes per reactor turn pays there.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import tcp
from twisted.web.iweb import IRequest


class _HeadCapture:
    """Stands in for the transport while Twisted writes a response's headers."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writeSequence(self, parts: list[bytes]) -> None:
        self.parts.extend(parts)

    def write(self, data: bytes) -> None:
        self.parts.append(data)


def tcp_transport(request: IRequest) -> Any:
    """The raw TCP transport under the request, if its socket may be written directly."""
    channel = getattr(request, "channel", None)
    transport = getattr(channel, "transport", None)
    if not isinstance(transport, tcp.Connection) or not hasattr(os, "sendfile"):
        return None  # TLS, in-memory test transports, other platforms: plain writes
    if not all(hasattr(transport, name) for name in ("dataBuffer", "_tempDataBuffer", "offset")):
        return None  # a Twisted whose write buffer we do not know
    return transport


def queued(transport: Any) -> bool:
    """Has the transport bytes of its own still to send (which must go first)?"""
    return len(transport.dataBuffer) > transport.offset or bool(transport._tempDataBuffer)


def head_of(request: IRequest, transport: Any) -> bytes:
    """The status line and headers Twisted writes for the request, without sending them
    (a lean request, pypid.web.lean, writes its own)."""
    lean = getattr(request, "head_bytes", None)
    if lean is not None:
        return lean()  # type: ignore[no-any-return]
    capture = _HeadCapture()
    channel = request.channel  # type: ignore[attr-defined]
    channel.transport = capture
    try:
        request.write(b"")
    finally:
        channel.transport = transport
    return b"".join(capture.parts)


def send(transport: Any, parts: list[bytes], more: bool = False) -> None:
    """Send parts on the socket now; the transport gets whatever the socket did not take.

    more: further bytes follow at once (sendfile), so the kernel may hold these to fill a
    segment (MSG_MORE), as nginx does with TCP_NOPUSH.
    """
    try:
        sent = transport.socket.sendmsg(parts, (), socket.MSG_MORE if more else 0)
    except OSError:
        sent = 0  # full, or failing: the transport sends it, or notices the failure
    for part in parts:
        if sent >= len(part):
            sent -= len(part)
            continue
        transport.write(part[sent:] if sent else part)
        sent = 0


def answer_now(request: IRequest, body: bytes) -> bool:
    """Send a complete GET answer (Content-Length set) at once, and finish the request;
    False, with nothing done, if the connection has bytes queued or is not plain TCP."""
    transport = tcp_transport(request)
    if (transport is None or queued(transport) or request.method != b"GET"
            or not request.responseHeaders.hasHeader(b"content-length")):
        return False  # without a length Twisted would frame the body in chunks
    send(transport, [head_of(request, transport), body])
    request.sentLength = len(body)  # type: ignore[attr-defined]  # for the access log
    request.finish()
    return True
