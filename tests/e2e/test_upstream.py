"""The upstream, end to end: the real daemon proxying a static PEP 503/691 tree and a second
pypid, both on 127.0.0.1. Never a local name from upstream; allow-list, cooldown, TTL and
revalidation, upstream trouble, hash and size checks, single flight, pip and uv."""

from __future__ import annotations

import http.client
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.e2e.daemon import BIN, Daemon, run
from tests.e2e.upstreams import StaticUpstream, UpstreamFile, wheel

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[StaticUpstream]:
    server = StaticUpstream(tmp_path / "upstream").start()
    yield server
    server.stop()


@pytest.fixture
def proxy(tmp_path: Path, upstream: StaticUpstream) -> Iterator[Daemon]:
    """A pypid whose instance default upstream is the static tree."""
    running = Daemon(tmp_path / "data", args=["--upstream", upstream.simple]).start()
    yield running
    running.stop()


def project(daemon: Daemon, path: str = "acme/app", visibility: str = "public") -> str:
    return daemon.cli("project", "create", path, "--visibility", visibility).stdout.strip()


def simple(project_id: str, name: str = "") -> str:
    return f"/api/v4/projects/{project_id}/packages/pypi/simple/{name + '/' if name else ''}"


def page(daemon: Daemon, path: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    code, body = daemon.get(path, token, headers={"Accept": JSON})
    return code, (json.loads(body) if code == 200 else {"body": body.decode()})


def fetch(daemon: Daemon, path: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(daemon.url + path, headers={"Accept": JSON})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def file_url(page_path: str, document: dict[str, object], filename: str) -> str:
    for entry in document["files"]:  # type: ignore[attr-defined]
        if entry["filename"] == filename:
            return urljoin(page_path, entry["url"])  # type: ignore[no-any-return]
    raise AssertionError(f"{filename} not on the page: {document}")


def until(check: Callable[[], bool], what: str) -> None:
    """A CLI change reaches the daemon at its next poll of the database (twice a second):
    wait for that event, bounded."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < 5.0, f"the daemon never saw: {what}"


def settled(daemon: Daemon, path: str, code: int) -> None:
    until(lambda: page(daemon, path)[0] == code, f"{path} answering {code}")


def upload_local(daemon: Daemon, project_id: str, name: str, version: str,
                 tmp_path: Path, requires: tuple[str, ...] = ()) -> None:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires) + "\n"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / wheel_filename(name, version)
    path.write_bytes(wheel_bytes(name, version, metadata=metadata))
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{daemon.url}/api/v4/projects/{project_id}/packages/pypi",
         "-u", "__token__", "-p", daemon.token, str(path)])


def test_a_name_with_no_local_files_comes_from_upstream(
        proxy: Daemon, upstream: StaticUpstream) -> None:
    """The page lists the upstream's files under pypid's own files/ URLs, says where it comes
    from (PEP 708 tracks, X-Pypid-Upstream), passes requires-python, yanks and PEP 658
    metadata through; the file and its metadata are fetched once and served from the
    store; the root index lists local names only."""
    upstream.publish("requests", [
        wheel("requests", "2.0", requires_python=">=3.8"),
        wheel("requests", "1.0", yanked="broken")])
    app = project(proxy)
    code, document = page(proxy, simple(app, "requests"))
    assert code == 200, document
    assert document["tracks"] == [f"{upstream.simple}/requests/"]
    files = {entry["filename"]: entry for entry in document["files"]}  # type: ignore[attr-defined]
    assert files["requests-2.0-py3-none-any.whl"]["requires-python"] == ">=3.8"
    assert files["requests-1.0-py3-none-any.whl"]["yanked"] == "broken"
    url = file_url(simple(app, "requests"), document, "requests-2.0-py3-none-any.whl")
    assert url.startswith(f"/api/v4/projects/{app}/packages/pypi/files/")
    status, headers, body = fetch(proxy, simple(app, "requests"))
    assert headers["X-Pypid-Upstream"] == f"{upstream.simple}/requests/"
    expected = upstream.pages["requests"][0]
    for _ in range(3):
        status, _, body = fetch(proxy, url)
        assert (status, body) == (200, expected.content)
        status, _, body = fetch(proxy, url + ".metadata")
        assert (status, body) == (200, expected.metadata)
    assert upstream.requests("/files/requests-2.0-py3-none-any.whl") == 1
    assert upstream.requests("/files/requests-2.0-py3-none-any.whl.metadata") == 1
    root_code, root = page(proxy, simple(app))
    assert root_code == 200 and root["projects"] == []
    # The group index takes it from the same upstream (the instance's default).
    code, document = page(proxy, "/api/v4/groups/acme/-/packages/pypi/simple/requests/",
                          proxy.token)
    assert code == 200 and document["tracks"] == [f"{upstream.simple}/requests/"]
    _, metrics = proxy.get("/-/metrics")
    assert b"pypid_upstream_file_fetches_total 1.0" in metrics
    # The HTML page says it too.
    code, html = proxy.get(simple(app, "requests"))
    assert code == 200 and b'<meta name="pypi:tracks"' in html


def test_a_local_name_is_never_taken_from_upstream(
        proxy: Daemon, upstream: StaticUpstream, tmp_path: Path) -> None:
    """A name with local files in the index, or in any project of its top-level group
    (even one the reader may not see), never comes from upstream, whatever the upstream
    has (here: a higher version); an upload makes a proxied name local at once."""
    upstream.publish("acme-core", [wheel("acme-core", "99.0")])
    upstream.publish("acme-private", [wheel("acme-private", "99.0")])
    upstream.publish("later", [wheel("later", "99.0")])
    app = project(proxy, "acme/app")
    lib = project(proxy, "acme/platform/lib", "private")
    upload_local(proxy, app, "acme-core", "1.0", tmp_path)
    upload_local(proxy, lib, "acme-private", "1.0", tmp_path)
    code, document = page(proxy, simple(app, "acme-core"))
    assert code == 200 and document["versions"] == ["1.0"] and "tracks" not in document
    code, _ = page(proxy, simple(app, "acme-private"))
    assert code == 404  # local in the namespace (a private sibling): not from upstream
    assert upstream.requests("/simple/acme-core/") == 0
    assert upstream.requests("/simple/acme-private/") == 0
    code, document = page(proxy, simple(app, "later"))
    assert code == 200 and document["versions"] == ["99.0"]
    upload_local(proxy, lib, "later", "1.0", tmp_path)
    code, _ = page(proxy, simple(app, "later"))
    assert code == 404  # now local to the namespace: the upstream's copy is gone
    code, document = page(proxy, "/api/v4/groups/acme/-/packages/pypi/simple/later/",
                          proxy.token)
    assert code == 200 and document["versions"] == ["1.0"]
    # Another namespace still proxies it.
    other = project(proxy, "elsewhere/app")
    code, document = page(proxy, simple(other, "later"))
    assert code == 200 and document["versions"] == ["99.0"]


def test_settings_per_project_and_group(proxy: Daemon, upstream: StaticUpstream) -> None:
    """off turns the instance's upstream off for a group, a project turns it on again;
    the allow-list keeps other names out (404, as any unknown name)."""
    upstream.publish("requests", [wheel("requests", "1.0")])
    upstream.publish("numpy", [wheel("numpy", "1.0")])
    app = project(proxy, "team/app")
    assert page(proxy, simple(app, "requests"))[0] == 200  # the instance's upstream
    proxy.cli("group", "settings", "team", "--upstream", "off")
    settled(proxy, simple(app, "requests"), 404)
    proxy.cli("project", "settings", app, "--upstream", upstream.simple,
              "--upstream-allow", "Req*")
    settled(proxy, simple(app, "requests"), 200)
    assert page(proxy, simple(app, "numpy"))[0] == 404
    assert upstream.requests("/simple/numpy/") == 0
    proxy.cli("project", "settings", app, "--upstream-allow", "*")
    settled(proxy, simple(app, "numpy"), 200)
    proxy.cli("project", "settings", app, "--upstream", "inherit")
    settled(proxy, simple(app, "numpy"), 404)  # the group's off again


def test_cooldown_hides_young_files(proxy: Daemon, upstream: StaticUpstream) -> None:
    """--upstream-min-age: files younger than that (by the upstream's upload-time) are not
    on the page and cannot be downloaded either."""
    now = datetime.now(UTC)
    old = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    young = (now - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    upstream.publish("fresh", [wheel("fresh", "1.0", upload_time=old),
                               wheel("fresh", "2.0", upload_time=young)], style="json")
    app = project(proxy)
    _, document = page(proxy, simple(app, "fresh"))
    assert document["versions"] == ["1.0", "2.0"]
    young_url = file_url(simple(app, "fresh"), document, "fresh-2.0-py3-none-any.whl")
    proxy.cli("project", "settings", app, "--upstream-min-age", "3")
    until(lambda: page(proxy, simple(app, "fresh"))[1].get("versions") == ["1.0"],
          "the cooldown")
    assert fetch(proxy, young_url)[0] == 404
    assert upstream.requests("/files/fresh-2.0-py3-none-any.whl") == 0


def test_pages_are_kept_for_their_ttl_then_revalidated(
        proxy: Daemon, upstream: StaticUpstream) -> None:
    """Within the TTL the upstream is not asked again; with TTL 0 every request
    revalidates with If-None-Match, and the upstream's 304 keeps the page."""
    upstream.publish("requests", [wheel("requests", "1.0")])
    app = project(proxy)
    for _ in range(5):
        assert page(proxy, simple(app, "requests"))[0] == 200
    assert upstream.requests("/simple/requests/") == 1
    proxy.cli("project", "settings", app, "--upstream-ttl", "0")
    until(lambda: page(proxy, simple(app, "requests"))[0] == 200
          and upstream.not_modified("/simple/requests/") == 1, "TTL 0")
    for _ in range(3):
        code, document = page(proxy, simple(app, "requests"))
        assert code == 200 and document["versions"] == ["1.0"]
    assert upstream.not_modified("/simple/requests/") == 4
    upstream.publish("requests", [wheel("requests", "1.0"), wheel("requests", "1.1")])
    _, document = page(proxy, simple(app, "requests"))
    assert document["versions"] == ["1.0", "1.1"]


def test_upstream_trouble(proxy: Daemon, upstream: StaticUpstream, tmp_path: Path) -> None:
    """An upstream failing: a kept page is served stale (with a Warning) and its file too;
    a name never fetched gets 502 with a reason; garbage is a 502 too; local names are
    unaffected."""
    upstream.publish("requests", [wheel("requests", "1.0")])
    upstream.publish("never", [wheel("never", "1.0")])
    app = project(proxy)
    upload_local(proxy, app, "ours", "1.0", tmp_path)
    proxy.cli("project", "settings", app, "--upstream-ttl", "0")
    _, document = page(proxy, simple(app, "requests"))
    until(lambda: page(proxy, simple(app, "requests"))[0] == 200
          and upstream.requests("/simple/requests/") >= 2, "TTL 0")
    url = file_url(simple(app, "requests"), document, "requests-1.0-py3-none-any.whl")
    assert fetch(proxy, url)[0] == 200
    upstream.mode("fail")
    status, headers, body = fetch(proxy, simple(app, "requests"))
    assert status == 200 and "Revalidation Failed" in headers["Warning"]
    assert fetch(proxy, url)[0] == 200
    status, _, body = fetch(proxy, simple(app, "never"))
    assert status == 502 and b"answered 500" in body
    upstream.mode("garbage")
    status, _, body = fetch(proxy, simple(app, "never"))
    assert status == 502 and b"unusable" in body
    upstream.stop()  # down: nothing listens any more
    status, _, body = fetch(proxy, simple(app, "never"))
    assert status == 502 and b"cannot reach the upstream" in body
    assert fetch(proxy, simple(app, "requests"))[0] == 200
    code, document = page(proxy, simple(app, "ours"))
    assert code == 200 and document["versions"] == ["1.0"]


def test_a_slow_upstream_is_a_504(tmp_path: Path, upstream: StaticUpstream) -> None:
    upstream.publish("requests", [wheel("requests", "1.0")])
    daemon = Daemon(tmp_path / "slow", args=["--upstream", upstream.simple,
                                             "--upstream-timeout", "1"]).start()
    try:
        app = project(daemon)
        upstream.mode("hold")
        status, _, body = fetch(daemon, simple(app, "requests"))
        assert status == 504 and b"did not answer within 1 s" in body
    finally:
        upstream.mode("normal")
        daemon.stop()


def test_a_file_that_does_not_match_its_hash_is_never_served(
        proxy: Daemon, upstream: StaticUpstream) -> None:
    """The page claims one sha256, the upstream sends other bytes: 502 every time, nothing
    kept (fsck counts no cached upstream file)."""
    bad = wheel("evil", "1.0")
    bad.sha256 = "0" * 64
    upstream.publish("evil", [bad])
    app = project(proxy)
    _, document = page(proxy, simple(app, "evil"))
    url = file_url(simple(app, "evil"), document, "evil-1.0-py3-none-any.whl")
    for _ in range(2):
        status, _, body = fetch(proxy, url)
        assert status == 502 and b"does not match the sha256" in body
    assert upstream.requests("/files/evil-1.0-py3-none-any.whl") == 2
    report = proxy.cli("fsck").stdout
    assert "0 cached upstream files" in report and report.rstrip().endswith("OK")


def test_files_over_the_size_limit(tmp_path: Path, upstream: StaticUpstream) -> None:
    """A file the upstream's page says is too large is not listed (every listed file can be
    downloaded); one whose page gives no size is refused (502) once its bytes exceed it."""
    big = wheel("big", "1.0")
    upstream.publish("big", [big, wheel("big", "0.1")], style="json")
    upstream.publish("sneaky", [wheel("sneaky", "1.0")])  # HTML: no size on the page
    limit = len(big.content) - 1
    daemon = Daemon(tmp_path / "small", args=["--upstream", upstream.simple,
                                              "--upstream-max-file-size", str(limit)]).start()
    try:
        app = project(daemon)
        code, document = page(daemon, simple(app, "big"))
        assert code == 200 and [f["filename"] for f in document["files"]] == [  # type: ignore[attr-defined]
            "big-0.1-py3-none-any.whl"]
        code, document = page(daemon, simple(app, "sneaky"))
        url = file_url(simple(app, "sneaky"), document, "sneaky-1.0-py3-none-any.whl")
        status, _, body = fetch(daemon, url)
        assert status == 502 and (b"larger than" in body or b"more than" in body), body
    finally:
        daemon.stop()


def _in_flight(daemon: Daemon) -> float:
    code, body = daemon.get("/-/metrics")
    match = re.search(rb"^pypid_requests_in_flight (\S+)$", body, re.M)
    assert code == 200 and match, body[:200]
    return float(match.group(1))


def _concurrently(daemon: Daemon, upstream: StaticUpstream, path: str,
                  count: int) -> list[int]:
    """count requests for path at once while the upstream holds its answers; released
    once all of them are inside pypid (its in-flight gauge says so: an event, not a
    sleep)."""
    upstream.mode("hold")
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(fetch, daemon, path) for _ in range(count)]
        while _in_flight(daemon) < count + 1:  # + the metrics request itself
            assert not any(future.done() for future in futures), futures[0].result()
        upstream.mode("normal")
        return [future.result()[0] for future in futures]


def test_one_fetch_for_a_hundred_concurrent_requests(
        proxy: Daemon, upstream: StaticUpstream) -> None:
    """100 concurrent requests for an uncached page make one upstream request; then 100
    for an uncached file make one too."""
    upstream.publish("popular", [wheel("popular", "1.0")])
    app = project(proxy)
    codes = _concurrently(proxy, upstream, simple(app, "popular"), 100)
    assert codes == [200] * 100
    assert upstream.requests("/simple/popular/") == 1
    _, document = page(proxy, simple(app, "popular"))
    url = file_url(simple(app, "popular"), document, "popular-1.0-py3-none-any.whl")
    codes = _concurrently(proxy, upstream, url, 100)
    assert codes == [200] * 100
    assert upstream.requests("/files/popular-1.0-py3-none-any.whl") == 1


def test_pip_and_uv_install_local_app_with_upstream_dependencies(
        tmp_path: Path) -> None:
    """One --index-url: the app comes from the project, its dependency from the upstream,
    which here is a second pypid (PEP 691 JSON, PEP 658 metadata)."""
    origin = Daemon(tmp_path / "origin").start()
    proxy = None
    try:
        public = project(origin, "pypi/mirror")
        upload_local(origin, public, "leftpad", "3.0", tmp_path / "o")
        upstream_url = f"{origin.url}/api/v4/projects/{public}/packages/pypi/simple"
        proxy = Daemon(tmp_path / "proxy", args=["--upstream", upstream_url]).start()
        app = project(proxy, "acme/app", "private")
        upload_local(proxy, app, "acme-app", "1.0", tmp_path / "p", requires=("leftpad>=2",))
        host = proxy.url.removeprefix("http://")
        index = f"http://__token__:{proxy.token}@{host}{simple(app)}"
        target = tmp_path / "site"
        run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
             "--disable-pip-version-check", "--index-url", index, "--target", str(target),
             "acme-app"])
        assert (target / "leftpad.py").read_text() == "VALUE = '3.0'\n"
        venv = tmp_path / "venv"
        run([str(BIN / "uv"), "venv", "--python", sys.executable, str(venv)])
        run([str(BIN / "uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
             "--no-cache", "--index-url", index, "acme-app"])
        result = run([str(venv / "bin" / "python"), "-c", "import leftpad; print(leftpad.VALUE)"])
        assert result.stdout.strip() == "3.0"
    finally:
        if proxy is not None:
            proxy.stop()
        origin.stop()


def test_cached_upstream_files_in_fsck_backup_and_gc(
        proxy: Daemon, upstream: StaticUpstream, tmp_path: Path) -> None:
    """fsck counts cached upstream files; backup keeps them (or, --without-upstream, leaves
    them out); a cached file whose blob vanished is fetched again."""
    upstream.publish("requests", [wheel("requests", "1.0")])
    app = project(proxy)
    _, document = page(proxy, simple(app, "requests"))
    url = file_url(simple(app, "requests"), document, "requests-1.0-py3-none-any.whl")
    assert fetch(proxy, url)[0] == 200
    report = proxy.cli("fsck").stdout
    assert "1 cached upstream files" in report and report.rstrip().endswith("OK")
    with_files = proxy.cli("backup", str(tmp_path / "full")).stdout
    without = proxy.cli("backup", "--without-upstream", str(tmp_path / "lean")).stdout
    assert "1 blobs" in with_files and "0 blobs" in without
    digest = upstream.pages["requests"][0].digest
    (proxy.data_dir / "blobs" / "sha256" / digest[:2] / digest).unlink()
    report = proxy.cli("fsck", check=False).stdout
    assert "requests-1.0-py3-none-any.whl (from upstream)" in report
    proxy.cli("fsck", "--repair")
    restarted = Daemon(proxy.data_dir, args=["--upstream", upstream.simple])
    proxy.stop()
    restarted.start()
    try:
        page(restarted, simple(app, "requests"))
        status, _, body = fetch(restarted, url)
        assert status == 200 and body == upstream.pages["requests"][0].content
        assert upstream.requests("/files/requests-1.0-py3-none-any.whl") == 2
    finally:
        restarted.stop()
        proxy.start()  # the fixture stops it again


def test_bad_settings_are_refused(proxy: Daemon) -> None:
    project(proxy)
    for option, value in (("--upstream", "ftp://example.org/simple"),
                          ("--upstream", "https://exa mple.org/"),
                          ("--upstream", "https://example.org/simple?x=1"),
                          ("--upstream-allow", "bad name"),
                          ("--upstream-allow", "é*"),
                          ("--upstream-min-age", "-1"),
                          ("--upstream-min-age", "nan"),
                          ("--upstream-ttl", "1.5"),
                          ("--upstream-ttl", "٣")):
        result = proxy.cli("project", "settings", "acme/app", option, value, check=False)
        assert result.returncode != 0, (option, value)
        assert result.stderr.count("\n") == 1 and option in result.stderr, result.stderr
        assert "Traceback" not in result.stderr



def _open_download(daemon: Daemon, path: str) -> tuple[http.client.HTTPConnection,
                                                        http.client.HTTPResponse]:
    host, port = daemon.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", path)
    return connection, connection.getresponse()


def test_a_large_first_fetch_is_streamed_as_it_arrives(
        proxy: Daemon, upstream: StaticUpstream) -> None:
    """A 3 MB file: its first megabyte reaches the client while the upstream still holds
    back half of it; the rest follows once the upstream sends it, and the file is then in
    the store. A large file whose bytes do not match the page's sha256 is cut off before
    its end: the client never receives all of it, and nothing is kept."""
    good = UpstreamFile(wheel_filename("huge", "1.0"),
                        wheel_bytes("huge", "1.0", padding=3 * 1024 * 1024))
    bad = UpstreamFile(wheel_filename("huge", "0.9"),
                       wheel_bytes("huge", "0.9", padding=3 * 1024 * 1024), sha256="0" * 64)
    upstream.publish("huge", [good, bad], style="json")
    app = project(proxy)
    _, document = page(proxy, simple(app, "huge"))
    upstream.mode("trickle")
    connection, response = _open_download(proxy, file_url(simple(app, "huge"), document,
                                                          good.filename))
    try:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == len(good.content)
        first = response.read(1024 * 1024)  # arrives while the upstream holds its second half
        assert first == good.content[:len(first)] and len(first) == 1024 * 1024
        upstream.mode("normal")  # the upstream sends the rest
        assert first + response.read() == good.content
    finally:
        connection.close()
    status, _, body = fetch(proxy, file_url(simple(app, "huge"), document, good.filename))
    assert status == 200 and body == good.content
    assert upstream.requests(f"/files/{good.filename}") == 1
    upstream.mode("trickle")
    connection, response = _open_download(proxy, file_url(simple(app, "huge"), document,
                                                          bad.filename))
    try:
        assert response.status == 200
        received = len(response.read(1024 * 1024))
        upstream.mode("normal")
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            while chunk := response.read(65536):
                received += len(chunk)
        assert received < len(bad.content)
    finally:
        connection.close()
    report = proxy.cli("fsck").stdout
    assert "1 cached upstream files" in report and report.rstrip().endswith("OK")
