"""Header parsing over every byte string: an answer, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pypid.web.credentials import credentials_from
from pypid.web.errors import HTTPError
from pypid.web.negotiation import (
    HTML,
    HTML_V1,
    JSON_V1,
    accepts_gzip,
    byte_range,
    media_type,
    not_modified,
)

header_bytes = st.one_of(
    st.binary(max_size=80),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=40).map(
        lambda text: text.encode("utf-8")),
    st.sampled_from([b"*", b'W/"x"', b'"a","b"', b"bytes=0-", b"bytes=-0", b"bytes=5-1",
                     b"text/html;q=nan", b"gzip;q=1e400", b"application/*;q=-1"]),
)


@settings(max_examples=500, deadline=None)
@given(header_bytes)
def test_every_header_gets_an_answer(value: bytes) -> None:
    """Accept, Accept-Encoding, If-None-Match and Range of any bytes are answered."""
    assert media_type(value) in (None, HTML, HTML_V1, JSON_V1)
    assert accepts_gzip(value) in (True, False)
    assert not_modified(value, b'"abc"') in (True, False)
    for size in (0, 1, 1000):
        span = byte_range(value, size)
        if isinstance(span, tuple):
            start, length = span
            assert 0 <= start and 0 < length and start + length <= size


class _Headers:
    def __init__(self, values: dict[bytes, bytes]) -> None:
        self._values = values

    def getRawHeaders(self, name: bytes) -> list[bytes] | None:  # Twisted's name
        value = self._values.get(name)
        return None if value is None else [value]


class _Request:
    def __init__(self, values: dict[bytes, bytes]) -> None:
        self.requestHeaders = _Headers(values)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"authorization", b"private-token"]), header_bytes)
def test_any_credentials_header_is_parsed_or_refused_with_401(name: bytes, value: bytes) -> None:
    """Authorization and Private-Token of any bytes: credentials, none, or a 401."""
    try:
        credentials_from(_Request({name: value}))  # type: ignore[arg-type]
    except HTTPError as error:
        assert error.code == 401
