"""What every endpoint of GitLab's REST API shares: pagination and its headers, request
parameters (query string, JSON or form body) read and checked, GitLab's 400 shape.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

from twisted.web.iweb import IRequest

from pypid.web.errors import HTTPError

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_PAGE = 2**31
MAX_BODY = 65536


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, f"Bad request - {message}")


def page_args(request: IRequest) -> tuple[int, int]:
    """GitLab's page and per_page (at most 100)."""
    def number(name: bytes, default: int) -> int:
        values = request.args.get(name)
        if not values:
            return default
        try:
            value = int(values[0][:20])
        except ValueError:
            raise bad_request(f"{name.decode()} is invalid") from None
        if value < 1:
            raise bad_request(f"{name.decode()} is invalid")
        return value

    return min(number(b"page", 1), MAX_PAGE), min(number(b"per_page", DEFAULT_PER_PAGE),
                                                 MAX_PER_PAGE)


def set_page_headers(request: IRequest, page: int, per_page: int, total: int,
                     base: str) -> None:
    """X-Total, X-Total-Pages, X-Page, X-Per-Page, X-Next-Page, X-Prev-Page and Link (with
    absolute URLs from base, the server's external URL: python-gitlab follows them)."""
    pages = max(1, math.ceil(total / per_page))
    headers = {b"X-Page": page, b"X-Per-Page": per_page, b"X-Total": total,
               b"X-Total-Pages": pages, b"X-Next-Page": page + 1 if page < pages else "",
               b"X-Prev-Page": page - 1 if page > 1 else ""}
    for header, value in headers.items():
        request.setHeader(header, str(value).encode())
    kept = {key.decode("latin-1"): values[0].decode("latin-1")
            for key, values in request.args.items() if key not in (b"page", b"per_page")}
    links = []
    base += request.path.decode("latin-1")
    for rel, number in (("first", 1), ("last", pages),
                        ("next", page + 1 if page < pages else None),
                        ("prev", page - 1 if page > 1 else None)):
        if number is not None:
            query = urlencode({**kept, "page": number, "per_page": per_page})
            links.append(f'<{base}?{query}>; rel="{rel}"')
    request.setHeader(b"Link", ", ".join(links).encode("latin-1", "replace"))


def paginated(request: IRequest, rows: Sequence[Any], base: str) -> Sequence[Any]:
    """One page of rows already in memory, with the headers set."""
    page, per_page = page_args(request)
    set_page_headers(request, page, per_page, len(rows), base)
    start = (page - 1) * per_page
    return rows[start:start + per_page]


class Fields:
    """A request's parameters: the query string, then a JSON object or form body (which
    python-gitlab and curl send); unknown fields are ignored, as GitLab ignores them."""

    def __init__(self, request: IRequest) -> None:
        self._values: dict[str, Any] = {
            key.decode("utf-8", "replace"): values[0].decode("utf-8", "replace")
            for key, values in request.args.items() if values}
        body = b""
        if request.content is not None:
            request.content.seek(0)
            body = request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise bad_request("the body is too large")
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
        if body.strip() and content_type == b"application/x-www-form-urlencoded":
            try:
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            except (UnicodeDecodeError, ValueError):
                raise bad_request("the form body does not parse") from None
            for key, values in form.items():
                self._values[key.removesuffix("[]")] = (
                    values if key.endswith("[]") else values[0])
        elif body.strip():
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                raise bad_request("the body is not JSON") from None
            if not isinstance(document, dict):
                raise bad_request("the body must be a JSON object")
            self._values.update(document)

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) is not None

    def text(self, name: str, required: bool = False, limit: int = 255) -> str | None:
        value = self._values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise bad_request(f"{name} is invalid")
        text = str(value)
        if len(text) > limit or any(ord(char) < 32 or ord(char) == 127 for char in text):
            raise bad_request(f"{name} is invalid")
        return text

    def integer(self, name: str, required: bool = False) -> int | None:
        value = self._values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is missing")
            return None
        if isinstance(value, bool):
            raise bad_request(f"{name} is invalid")
        text = str(value).strip()
        if not (text.isascii() and text.lstrip("-").isdecimal()) or len(text) > 19:
            raise bad_request(f"{name} is invalid")
        return int(text)

    def boolean(self, name: str) -> bool | None:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise bad_request(f"{name} is invalid")

    def strings(self, name: str, required: bool = False) -> list[str] | None:
        """A list (JSON array, form `name[]=`), or a comma-separated string."""
        value = self._values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is missing")
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise bad_request(f"{name} is invalid")
        return [item.strip() for item in items if item.strip()]
