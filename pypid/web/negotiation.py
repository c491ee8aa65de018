"""Request headers that choose an answer: Accept, Accept-Encoding, If-None-Match, Range.

Parsed with werkzeug's header parsers (Klein brings werkzeug); pypid adds only its own
tie-breaks. Clients send few distinct values, so the answers are memoized per header value:
the hot path pays a dict lookup.
"""

from __future__ import annotations

import functools

from werkzeug.http import parse_etags, parse_list_header, parse_options_header, parse_range_header

HTML = "text/html"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
# PEP 691: "latest" names the newest version of the API, which is v1.
_ALIASES = {"application/vnd.pypi.simple.latest+json": JSON_V1,
            "application/vnd.pypi.simple.latest+html": HTML_V1}
_OFFERED = (JSON_V1, HTML_V1, HTML)
_WILDCARDS = {"*/*": HTML, "text/*": HTML, "application/*": JSON_V1}


def _quality(params: dict[str, str]) -> float:
    try:
        value = float(params.get("q", "1"))
    except ValueError:
        return 0.0
    return value if 0 <= value <= 1 else 0.0


@functools.lru_cache(maxsize=512)
def media_type(accept: bytes | None) -> str | None:
    """The index media type to answer with: HTML when nothing is asked; None: nothing
    offered is acceptable (406). Higher quality wins; at equal quality the client's
    order (a named type before a wildcard in that order)."""
    if not accept:
        return HTML
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(parse_list_header(accept.decode("latin-1"))):
        media, params = parse_options_header(item)
        media = media.lower()
        candidate = _ALIASES.get(media) or (media if media in _OFFERED else _WILDCARDS.get(media))
        quality = _quality(params)
        if candidate is None or quality <= 0:
            continue
        if best is None or (quality, -position) > best[:2]:
            best = (quality, -position, candidate)
    return best[2] if best else None


@functools.lru_cache(maxsize=256)
def accepts_gzip(header: bytes | None) -> bool:
    """Does an Accept-Encoding header allow gzip (by name or by *, with q above 0)?"""
    if not header:
        return False
    named = wildcard = None
    for item in parse_list_header(header.decode("latin-1")):
        coding, params = parse_options_header(item)
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            named = _quality(params) > 0
        elif coding == "*":
            wildcard = _quality(params) > 0
    return named if named is not None else bool(wildcard)


@functools.lru_cache(maxsize=1024)
def not_modified(if_none_match: bytes | None, etag: bytes) -> bool:
    """Does If-None-Match name this ETag? RFC 9110 13.1.2: weak comparison, `*` matches,
    lists with or without spaces."""
    if not if_none_match:
        return False
    return parse_etags(if_none_match.decode("latin-1")).contains_weak(
        etag.decode("ascii").strip('"'))


def byte_range(header: bytes | None, size: int) -> tuple[int, int] | bool | None:
    """(start, length) of one satisfiable byte range; None: no range, or one pypid ignores
    (several ranges, other units, malformed: the whole file, as RFC 9110 allows); False:
    unsatisfiable (416)."""
    if header is None:
        return None
    parsed = parse_range_header(header.decode("latin-1"))
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    span = parsed.range_for_length(size)
    if span is None:
        return False
    start, stop = span
    return start, stop - start
