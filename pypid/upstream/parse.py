"""Reading an upstream's package page: PEP 691 JSON or PEP 503 HTML, into file entries.

Pure and synchronous (it runs in a worker thread). Whatever the upstream sends, the result
is either a list of entries that pypid can serve and verify, or PageGarbage: an entry is
kept only if its filename is a distribution of the requested name, its URL is http(s) and
it has a sha256 (pypid checks every fetched file against it; files without one cannot be
verified and are left out).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from pypid.domain.names import BadName, parse_distribution_filename

JSON_V1 = "application/vnd.pypi.simple.v1+json"
_SHA256 = re.compile("[0-9a-f]{64}")
_SHA256_FRAGMENT = re.compile(r"sha256=([0-9a-fA-F]{64})")


class PageGarbage(ValueError):
    """The upstream answered something that is not a simple-index page."""


@dataclass(frozen=True)
class UpstreamFile:
    filename: str
    url: str  # absolute, without fragment
    sha256: str
    version: str
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    size: int | None = None
    upload_time: str | None = None  # ISO 8601, as the upstream gave it (PEP 700)
    metadata_sha256: str | None = None  # PEP 658/714 core metadata, if the upstream has it

    def row(self) -> dict[str, Any]:
        """The fields a package page is rendered from (pypid.web.simple.render_package)."""
        return {"filename": self.filename, "sha256": self.sha256, "version": self.version,
                "requires_python": self.requires_python, "size": self.size,
                "upload_time": self.upload_time, "yanked": self.yanked,
                "yanked_reason": self.yanked_reason, "metadata_sha256": self.metadata_sha256}


def parse_page(body: bytes, content_type: str | None, page_url: str,
               name: str) -> list[UpstreamFile]:
    """The usable files of name's page (fetched from page_url), in the upstream's order."""
    media = (content_type or "text/html").split(";", 1)[0].strip().lower()
    if media in (JSON_V1, "application/json"):
        return _from_json(body, page_url, name)
    if media in ("text/html", "application/vnd.pypi.simple.v1+html", "application/xhtml+xml"):
        return _from_html(body, page_url, name)
    raise PageGarbage(f"the upstream answered {media!r}, not a simple-index page")


def _from_json(body: bytes, page_url: str, name: str) -> list[UpstreamFile]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise PageGarbage("the upstream's JSON page does not parse") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise PageGarbage("the upstream's JSON page has no files list (PEP 691)")
    found = []
    for item in document["files"]:
        if not isinstance(item, dict):
            continue
        hashes = item.get("hashes")
        sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
        yanked = item.get("yanked", False)
        metadata = item.get("core-metadata", item.get("dist-info-metadata"))
        entry = _entry(
            name, page_url, item.get("filename"), item.get("url"), sha256,
            requires_python=item.get("requires-python"),
            yanked=bool(yanked), yanked_reason=yanked if isinstance(yanked, str) else None,
            size=item.get("size"), upload_time=item.get("upload-time"),
            metadata=metadata.get("sha256") if isinstance(metadata, dict) else None)
        if entry is not None:
            found.append(entry)
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], list[str]]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = []
            self.links.append((dict(attrs), self._open))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)


def _from_html(body: bytes, page_url: str, name: str) -> list[UpstreamFile]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PageGarbage("the upstream's HTML page is not UTF-8") from None
    parser = _Links()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's own complaints
        raise PageGarbage("the upstream's HTML page does not parse") from None
    found = []
    for attrs, texts in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(href)
        hashed = _SHA256_FRAGMENT.fullmatch(fragment)
        filename = "".join(texts).strip() or url.rsplit("/", 1)[-1]
        yanked = attrs.get("data-yanked")
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        meta_hash = _SHA256_FRAGMENT.fullmatch(metadata or "")
        entry = _entry(
            name, page_url, filename, url, hashed.group(1) if hashed else None,
            requires_python=attrs.get("data-requires-python"),
            yanked=yanked is not None, yanked_reason=yanked or None,
            metadata=meta_hash.group(1) if meta_hash else None)
        if entry is not None:
            found.append(entry)
    return found


def _entry(name: str, page_url: str, filename: Any, url: Any, sha256: Any,
           **fields: Any) -> UpstreamFile | None:
    """One file entry, or None if it is not one pypid can serve under this name."""
    if not isinstance(filename, str) or not isinstance(url, str) or not isinstance(sha256, str):
        return None
    sha256 = sha256.lower()
    if not _SHA256.fullmatch(sha256):
        return None
    try:
        dist = parse_distribution_filename(filename)
    except BadName:
        return None
    if dist.name != name:
        return None  # a page of one name lists that name's files only
    absolute = urljoin(page_url, url)
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    requires_python = fields["requires_python"]
    metadata = fields.get("metadata")
    size = fields.get("size")
    upload_time = fields.get("upload_time")
    reason = fields.get("yanked_reason")
    return UpstreamFile(
        filename, absolute, sha256, str(dist.version),
        requires_python if isinstance(requires_python, str) and requires_python else None,
        bool(fields.get("yanked")), reason if isinstance(reason, str) else None,
        size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time if isinstance(upload_time, str) else None,
        metadata.lower() if isinstance(metadata, str)
        and _SHA256.fullmatch(metadata.lower()) else None,
    )
