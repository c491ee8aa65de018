"""A synchronous HTTP client for the in-memory app, and index-page parsers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from pypid.testing import AppHarness, make_app, run_now
from pypid.web.formbody import streamed_body
from pypid.web.site import PypidSite
from tests.dists import upload_form, wheel_bytes, wheel_filename

BASE = "http://pypid.test"


@dataclass
class Reply:
    code: int
    phrase: bytes
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def result_of(deferred: Deferred[Any]) -> Any:
    box: list[Any] = []
    deferred.addBoth(box.append)
    assert box, "the request did not complete synchronously"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


class Client:
    """resource: what the Site serves; the app's root (fast lane, then Klein) by default."""

    def __init__(self, harness: AppHarness, streamed: bool = True,
                 resource: Any = None) -> None:
        self.harness = harness
        resource = resource if resource is not None else harness.app.resource()
        self.treq = StubTreq(resource)
        # StubTreq always builds a default Site, which parses multipart forms itself and
        # has no body limit (STYLE.md pitfall 10c); serve through pypid's own Site instead.
        agent = self.treq._agent
        self.site = PypidSite(
            resource, spool_dir=harness.blobs.temp_dir,
            max_body_size=harness.app.services.max_upload_size, reactor=agent._memoryReactor,
            streamed_body=lambda request: streamed_body(
                request, harness.blobs.new_temp, run_now, harness.app.router)
            if streamed else None,
            stats=harness.app.metrics.stats if harness.app.metrics else None,
            endpoint_of=harness.app.router.endpoint_name,
        )
        agent._serverFactory = self.site

    def request(self, method: str, path: str, auth: tuple[str, str] | None = None,
                headers: dict[str, str] | None = None, data: bytes | None = None) -> Reply:
        url = path if path.startswith("http") else BASE + path
        response = result_of(self.treq.request(
            method, url, auth=auth, headers=headers or {}, data=data, allow_redirects=False))
        body = result_of(self.treq.content(response))
        return Reply(
            response.code, response.phrase,
            {k.decode().lower(): [v.decode("latin-1") for v in vs]
             for k, vs in response.headers.getAllRawHeaders()},
            body,
        )

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def upload(self, project: str | int, filename: str, content: bytes, name: str, version: str,
               auth: tuple[str, str] | None, extra: dict[str, str] | None = None,
               digests: bool = True, headers: dict[str, str] | None = None) -> Reply:
        body, form_headers = upload_form(filename, content, name, version, extra, digests)
        return self.request("POST", f"/api/v4/projects/{project}/packages/pypi", auth=auth,
                            headers={**form_headers, **(headers or {})}, data=body)

    def upload_wheel(self, project: str | int, name: str, version: str,
                     auth: tuple[str, str] | None, **options: Any) -> Reply:
        return self.upload(project, wheel_filename(name, version),
                           wheel_bytes(name, version, **options), name, version, auth)


class LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, dict[str, str | None]]] = []
        self._attrs: dict[str, str | None] | None = None
        self.meta: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = dict(attrs)
        elif tag == "meta":
            values = dict(attrs)
            self.meta[values.get("name") or ""] = values.get("content")

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self.links.append((data, self._attrs))
            self._attrs = None


def parse_links(reply: Reply) -> list[tuple[str, dict[str, str | None]]]:
    parser = LinkParser()
    parser.feed(reply.body.decode("utf-8"))
    return parser.links


def absolute(page_url: str, href: str) -> str:
    return urljoin(BASE + page_url, href)


def new_client(tmp_path: Path, **options: Any) -> Client:
    return Client(make_app(tmp_path / "data", **options))
