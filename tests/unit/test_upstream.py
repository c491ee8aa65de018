"""The upstream's pure parts and its rows: settings and their inheritance, page parsing
(HTML and JSON, garbage, Unicode), what an index shows (cooldown, size), single flight."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from pypid.blobs.guard import BlobGuard
from pypid.domain.names import parse_distribution_filename
from pypid.store.db import open_registry
from pypid.store.registry import FileRecord, Invalid, Registry
from pypid.upstream.flight import SingleFlight
from pypid.upstream.parse import PageGarbage, UpstreamFile, parse_page
from pypid.upstream.proxy import Upstream
from pypid.upstream.settings import (
    Layer,
    SettingError,
    UpstreamSettings,
    check_min_age,
    check_patterns,
    check_ttl,
    check_url,
    public_url,
    resolve,
)

SHA = "a" * 64
META = "b" * 64
PAGE = "https://up.example/simple/demo/"


# -- settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "ftp://x/simple", "https://", "not a url", "https://h/simple?q=1", "https://h/s#f",
    "https://h:99999/", "https://h/\x00", "https://h/\u200bsimple ", "javascript:alert(1)",
    "https://exa mple/"])
def test_bad_upstream_urls_are_refused(value: str) -> None:
    with pytest.raises(SettingError, match="--upstream"):
        check_url(value)


def test_upstream_urls() -> None:
    assert check_url("https://pypi.org/simple/") == "https://pypi.org/simple"
    assert check_url("off") == "off"
    assert public_url("https://user:secret@host:8443/simple") == "https://host:8443/simple"
    assert public_url("https://host/simple") == "https://host/simple"


@pytest.mark.parametrize("value", ["a b", "", "é", "x" * 101, "a/b", "a\nb", "💥"])
def test_bad_patterns_are_refused(value: str) -> None:
    with pytest.raises(SettingError, match="--upstream-allow"):
        check_patterns([value])


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "3651", "x", None, "٣"])
def test_bad_min_ages_are_refused(value: Any) -> None:
    with pytest.raises(SettingError, match="--upstream-min-age"):
        check_min_age(value)


@pytest.mark.parametrize("value", ["-1", "1.5", "٣", "", True, str(32 * 86400)])
def test_bad_ttls_are_refused(value: Any) -> None:
    with pytest.raises(SettingError, match="--upstream-ttl"):
        check_ttl(value)


def test_patterns_match_normalized_names() -> None:
    settings = UpstreamSettings("https://u/simple", check_patterns(["Req*", "Zope.Interface"]))
    assert settings.allows("requests") and settings.allows("requests-toolbelt")
    assert settings.allows("zope-interface")
    assert not settings.allows("numpy")
    assert UpstreamSettings("https://u/simple").allows("numpy")
    assert not UpstreamSettings(None).allows("numpy")


def test_settings_are_inherited_field_by_field() -> None:
    """Nearest first: a project's own value, then its groups', then the daemon's; off is a
    value (it stops the search), None inherits."""
    daemon = Layer("https://daemon/simple", None, 0.0, 60)
    group = Layer(None, ("req*",), 3.0, None)
    project = Layer(None, None, None, 0)
    assert resolve([project, group, daemon]) == UpstreamSettings(
        "https://daemon/simple", ("req*",), 3.0, 0)
    assert resolve([Layer("off"), group, daemon]).url is None
    assert resolve([]) == UpstreamSettings(None)


# -- pages ----------------------------------------------------------------------------------

def _html(*links: str) -> bytes:
    return ("<html><body>" + "".join(links) + "</body></html>").encode()


def test_html_pages() -> None:
    body = _html(
        f'<a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA.upper()}" '
        f'data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256={META}">'
        "demo-1.0-py3-none-any.whl</a>",
        f'<a href="https://cdn/demo-0.9.tar.gz#sha256={SHA}" data-yanked="bad">'
        "demo-0.9.tar.gz</a>",
        f'<a href="/f/demo-0.8.tar.gz#md5={"c" * 32}">demo-0.8.tar.gz</a>',  # no sha256
        f'<a href="/f/other-1.0.tar.gz#sha256={SHA}">other-1.0.tar.gz</a>',  # another name
        f'<a href="javascript:alert(1)#sha256={SHA}">demo-0.7.tar.gz</a>',
        f'<a href="/f/x#sha256={SHA}">../../etc/passwd</a>',
    )
    files = parse_page(body, "text/html; charset=utf-8", PAGE, "demo")
    assert [f.filename for f in files] == ["demo-1.0-py3-none-any.whl", "demo-0.9.tar.gz"]
    first, second = files
    assert first.url == "https://up.example/files/demo-1.0-py3-none-any.whl"
    assert first.sha256 == SHA and first.requires_python == ">=3.8"
    assert first.metadata_sha256 == META and first.version == "1.0"
    assert second.yanked and second.yanked_reason == "bad" and second.url.startswith("https://cdn/")


def test_json_pages() -> None:
    document = {"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": "demo-1.0.tar.gz", "url": "../../f/demo-1.0.tar.gz",
         "hashes": {"sha256": SHA}, "requires-python": ">=3", "size": 10,
         "upload-time": "2024-01-01T00:00:00Z", "yanked": True,
         "core-metadata": {"sha256": META}},
        {"filename": "demo-2.0.tar.gz", "url": "/f/demo-2.0.tar.gz", "hashes": {}},
        {"filename": "demo-3.0.tar.gz", "url": "/f/x", "hashes": {"sha256": SHA},
         "size": -5, "upload-time": 7, "yanked": "why"},
        "junk", None, {"filename": 5},
    ]}
    files = parse_page(json.dumps(document).encode(), "application/vnd.pypi.simple.v1+json",
                       PAGE, "demo")
    assert [f.filename for f in files] == ["demo-1.0.tar.gz", "demo-3.0.tar.gz"]
    assert files[0] == UpstreamFile("demo-1.0.tar.gz", "https://up.example/f/demo-1.0.tar.gz",
                                    SHA, "1.0", ">=3", True, None, 10, "2024-01-01T00:00:00Z",
                                    META)
    assert files[1].size is None and files[1].upload_time is None
    assert files[1].yanked_reason == "why"


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{", "application/vnd.pypi.simple.v1+json"),
    (b"[]", "application/vnd.pypi.simple.v1+json"),
    (b'{"files": 3}', "application/json"),
    (b"[" * 100000, "application/vnd.pypi.simple.v1+json"),
    (b"\xff\xfe<html>", "text/html"),
    (b"PK\x03\x04", "application/zip"),
])
def test_garbage_is_page_garbage(body: bytes, content_type: str) -> None:
    with pytest.raises(PageGarbage):
        parse_page(body, content_type, PAGE, "demo")


def test_any_unicode_in_a_page_is_either_an_entry_or_left_out() -> None:
    """Every code point (controls, surrogates' neighbours, non-characters) in filenames,
    URLs and attributes: parsing never fails with anything but PageGarbage, and what it
    keeps is a clean distribution filename of the name."""
    odd = "".join(chr(code) for code in range(0, 0x3000, 7) if not 0xD800 <= code < 0xE000)
    links = [f'<a href="/f/{odd[i:i + 20]}#sha256={SHA}">demo-1.0{odd[i:i + 3]}.tar.gz</a>'
             for i in range(0, len(odd), 20)]
    files = parse_page(_html(*links), "text/html", PAGE, "demo")
    for entry in files:
        assert entry.filename.isascii() or entry.filename.isprintable()
        assert "/" not in entry.filename and all(ord(c) >= 32 for c in entry.filename)
    document = {"files": [{"filename": f"demo-1.0{odd[i:i + 3]}.tar.gz", "url": odd[i:i + 9],
                           "hashes": {"sha256": SHA}} for i in range(0, len(odd), 9)]}
    parse_page(json.dumps(document).encode(), "application/json", PAGE, "demo")


# -- what an index shows --------------------------------------------------------------------

def test_visible_applies_cooldown_and_size_limit(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    upstream = Upstream(None, None, None, None, BlobGuard(), max_file_size=100,  # type: ignore[arg-type]
                        wall_clock=lambda: now)

    def entry(filename: str, size: int | None, age_days: float | None) -> UpstreamFile:
        uploaded = None if age_days is None else (now - timedelta(days=age_days)).isoformat()
        return UpstreamFile(filename, "https://u/" + filename, SHA, "1.0", size=size,
                            upload_time=uploaded)

    files = (entry("demo-1.tar.gz", 50, 10), entry("demo-2.tar.gz", 101, 10),
             entry("demo-3.tar.gz", None, 1), entry("demo-4.tar.gz", 10, None))
    assert [f.filename for f in upstream.visible(UpstreamSettings("u"), files)] == [
        "demo-1.tar.gz", "demo-3.tar.gz", "demo-4.tar.gz"]
    cooled = upstream.visible(UpstreamSettings("u", min_age_days=3), files)
    assert [f.filename for f in cooled] == ["demo-1.tar.gz"]  # unknown age hidden too


# -- single flight --------------------------------------------------------------------------

def test_single_flight_shares_one_piece_of_work() -> None:
    flights = SingleFlight()
    gate: Deferred[str] = Deferred()
    calls = []

    async def work() -> str:
        calls.append(1)
        return await gate

    results: list[Any] = []
    for _ in range(100):
        flights.run("k", work).addBoth(results.append)
    assert len(calls) == 1 and results == [] and len(flights) == 1
    gate.callback("done")
    assert results == ["done"] * 100 and len(flights) == 0
    failing: Deferred[str] = Deferred()

    async def broken() -> str:
        return await failing

    errors: list[Any] = []
    for _ in range(3):
        flights.run("k", broken).addErrback(lambda f: errors.append(f.value))
    failing.errback(ValueError("upstream down"))
    assert [str(e) for e in errors] == ["upstream down"] * 3
    assert flights.started == 2


# -- rows -----------------------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return open_registry(tmp_path)


def test_settings_rows_and_layers(registry: Registry) -> None:
    project_id = registry.create_project("acme/platform/tools")
    registry.set_upstream("groups", "acme", url="https://up/simple/", ttl="60")
    registry.set_upstream("groups", "acme/platform", allow=["Req*"])
    registry.set_upstream("projects", project_id, min_age="2.5")
    layers = registry.project_layers(registry.project(project_id))
    assert resolve(layers) == UpstreamSettings("https://up/simple", ("req*",), 2.5, 60)
    registry.set_upstream("projects", project_id, url="off")
    assert resolve(registry.project_layers(registry.project(project_id))).url is None
    registry.set_upstream("projects", project_id, url="inherit", min_age="inherit")
    assert resolve(registry.project_layers(registry.project(project_id))) == UpstreamSettings(
        "https://up/simple", ("req*",), 0.0, 60)
    registry.set_upstream("groups", "acme/platform", allow=["inherit"])
    assert resolve(registry.group_layers(registry.group("acme/platform")["id"])).allow == ()
    with pytest.raises(Invalid, match="--upstream-ttl"):
        registry.set_upstream("projects", project_id, ttl="soon")


def test_names_are_local_to_the_whole_namespace(registry: Registry) -> None:
    tools = registry.create_project("acme/platform/tools")
    registry.create_project("other/x")
    registry.add_file(tools, parse_distribution_filename("acme_lib-1.0.tar.gz"), "acme-lib",
                      "1.0", FileRecord("acme_lib-1.0.tar.gz", SHA, "m", "b", 1, None, None),
                      "root")
    acme = registry.group("acme")["id"]
    other = registry.group("other")["id"]
    assert registry.name_is_local(acme, "acme-lib")
    assert not registry.name_is_local(other, "acme-lib")
    assert not registry.name_is_local(acme, "requests")


def test_cached_upstream_files_are_blob_references_until_retention(
        tmp_path: Path) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    registry = open_registry(tmp_path)
    registry._now = lambda: now[0]
    registry.record_upstream_file(SHA, "demo-1.0.tar.gz", "demo", 10, "https://u/demo")
    registry.record_upstream_metadata(META, b"Metadata-Version: 2.1\n")
    assert registry.unreferenced([SHA, "c" * 64]) == ["c" * 64]
    assert registry.core_metadata(META) == b"Metadata-Version: 2.1\n"
    now[0] += timedelta(days=10)
    assert registry.forget_unused_upstream_files(30) == []
    row = registry.upstream_file(SHA, "demo-1.0.tar.gz")
    assert row is not None
    registry.touch_upstream_file(row["id"])
    now[0] += timedelta(days=29)
    assert registry.forget_unused_upstream_files(30) == []
    now[0] += timedelta(days=2)
    assert [r["filename"] for r in registry.forget_unused_upstream_files(30)] == [
        "demo-1.0.tar.gz"]
    assert registry.unreferenced([SHA]) == [SHA]
    assert registry.core_metadata(META) is None
