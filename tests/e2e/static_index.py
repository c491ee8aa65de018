"""A static PEP 503/691 tree served by twisted.web, as an upstream for the tests.

Run as `python -m tests.e2e.static_index ROOT`; it prints "serving on URL". A path ending
in / serves its index.json (as PEP 691 JSON) if there is one, else its index.html. Answers
carry an ETag, and If-None-Match gets 304. The tests steer it over HTTP:
  GET  /_stats            {path: [requests, not-modified answers]}
  POST /_mode/NAME        normal | fail (500s) | garbage (200 junk) | hold (answers wait)
                          | trickle (files: the first half now, the rest when released)
  POST /_release          answer every held request (and the rest of trickled files)
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

JSON_V1 = b"application/vnd.pypi.simple.v1+json"


class StaticIndex(Resource):
    isLeaf = True

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()
        self.stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.mode = "normal"
        self.held: list[tuple[Any, Path]] = []
        self.trickled: list[tuple[Any, bytes]] = []

    def render_POST(self, request: Any) -> bytes:
        path = request.path.decode()
        if path.startswith("/_mode/"):
            self.mode = path.removeprefix("/_mode/")
            if self.mode != "hold":
                self._release()
            return b"ok"
        if path == "/_release":
            self._release()
            return b"ok"
        request.setResponseCode(404)
        return b""

    def _release(self) -> None:
        held, self.held = self.held, []
        for request, target in held:
            if not request._disconnected:
                request.write(self._answer(request, target))
                request.finish()
        trickled, self.trickled = self.trickled, []
        for request, rest in trickled:
            if not request._disconnected:
                request.write(rest)
                request.finish()

    def render_GET(self, request: Any) -> bytes | int:
        path = request.path.decode()
        if path == "/_stats":
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps(self.stats).encode()
        self.stats[path][0] += 1
        target = (self.root / path.lstrip("/")).resolve()
        if self.root not in target.parents and target != self.root:
            request.setResponseCode(404)
            return b""
        if self.mode == "fail":
            request.setResponseCode(500)
            return b"upstream trouble"
        if self.mode == "garbage":
            request.setHeader(b"Content-Type", b"application/vnd.pypi.simple.v1+json")
            return b"\x00{not json at all"
        if self.mode == "hold":
            self.held.append((request, target))
            request.notifyFinish().addErrback(lambda _: None)
            return NOT_DONE_YET
        body = self._answer(request, target)
        if self.mode == "trickle" and not path.endswith("/") and len(body) > 1:
            request.setHeader(b"Content-Length", b"%d" % len(body))
            request.write(body[:len(body) // 2])
            self.trickled.append((request, body[len(body) // 2:]))
            request.notifyFinish().addErrback(lambda _: None)
            return NOT_DONE_YET
        return body

    def _answer(self, request: Any, target: Path) -> bytes:
        path = request.path.decode()
        content_type = b"application/octet-stream"
        if path.endswith("/"):
            if (target / "index.json").is_file():
                target, content_type = target / "index.json", JSON_V1
            else:
                target, content_type = target / "index.html", b"text/html; charset=utf-8"
        if not target.is_file():
            request.setResponseCode(404)
            return b"not found"
        body = target.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:16].encode() + b'"'
        request.setHeader(b"ETag", etag)
        if request.getHeader(b"if-none-match") == etag:
            self.stats[path][1] += 1
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Type", content_type)
        return body


def main() -> None:
    root = Path(sys.argv[1])
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")

    def listening(port: Any) -> None:
        print(f"serving on http://127.0.0.1:{port.getHost().port}", flush=True)

    endpoint.listen(Site(StaticIndex(root))).addCallback(listening)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
