"""A proxy in front of moto's S3 server that fails on purpose: the next N requests of a
method get 500, as an object store in trouble answers, then it forwards again."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FlakyS3:
    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.failures: dict[str, int] = {}  # method -> how many more to fail
        self.slow: dict[str, threading.Event] = {}  # method -> held until set
        self.pass_first: dict[str, int] = {}  # method -> how many go through unheld
        self.waiting: dict[str, threading.Event] = {}  # method -> set once one is held
        self.seen: dict[str, int] = {}
        self._lock = threading.Lock()
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with flaky._lock:
                    flaky.seen[self.command] = flaky.seen.get(self.command, 0) + 1
                    failing = flaky.failures.get(self.command, 0)
                    if failing:
                        flaky.failures[self.command] = failing - 1
                    unheld = flaky.pass_first.get(self.command, 0)
                    if unheld:
                        flaky.pass_first[self.command] = unheld - 1
                gate = flaky.slow.get(self.command)
                if gate is not None and not unheld:
                    flaky.waiting[self.command].set()
                    gate.wait(60)
                if failing:
                    self.send_response(500)
                    message = b"<Error><Code>InternalError</Code></Error>"
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                upstream = http.client.HTTPConnection(flaky.target.hostname,
                                                      flaky.target.port, timeout=30)
                headers = {key: value for key, value in self.headers.items()
                           if key.lower() not in ("connection", "keep-alive")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                # A HEAD's length is the object's, not its (empty) body's.
                self.send_header("Content-Length", answer.getheader("Content-Length", "0")
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def hold(self, method: str, after: int = 0) -> threading.Event:
        """Requests of method, but the first `after`, wait until the returned event is set
        (a slow store)."""
        event = threading.Event()
        with self._lock:
            self.pass_first[method] = after
            self.waiting[method] = threading.Event()
            self.slow[method] = event
        return event

    def fail(self, method: str, times: int) -> None:
        with self._lock:
            self.failures[method] = times
            self.seen[method] = 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
