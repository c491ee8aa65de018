"""The web pages in a real headless browser (Debian's chromium through chromedriver and
selenium) against the real daemon: signing in and out, browsing, the snippets run as
they are shown, yanks, CSRF, revocation, and metadata full of HTML that stays text."""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dists import wheel_bytes, wheel_filename
from tests.e2e.daemon import BIN, Daemon, run

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = os.environ.get("PYPID_SCREENSHOTS")  # a directory: keep the shots there too


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CI"):
            pytest.fail("chromium or chromium-driver is not installed (.ci/run installs them)")
        pytest.skip("chromium is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1100,800",
                     f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def shoot(driver: object, tmp_path: Path, name: str) -> Path:
    """Every test keeps screenshots under its temp dir (and in PYPID_SCREENSHOTS)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    if SCREENSHOTS:
        shutil.copyfile(path, Path(SCREENSHOTS) / f"{name}.png")
    return path


def distinct_pixels(png: Path) -> int:
    """How many different pixel values a PNG has (8-bit RGB or RGBA, unfiltered rows)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    channels = {2: 3, 6: 4}[color]
    assert depth == 8
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc
                                      else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return len({row[i:i + channels] for row in rows[::8] for i in range(0, stride, channels * 8)})


def until(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"never: {what}"


def sign_in(driver: object, daemon: Daemon, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(daemon.url + "/users/sign_in")  # type: ignore[attr-defined]
    field = driver.find_element(By.ID, "token")  # type: ignore[attr-defined]
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()  # type: ignore[attr-defined]
    until(lambda: driver.current_url.rstrip("/") == daemon.url, "signed in")  # type: ignore[attr-defined]


def upload(daemon: Daemon, project: str, name: str, version: str, tmp_path: Path,
           metadata: str | None = None) -> None:
    path = tmp_path / wheel_filename(name, version)
    path.write_bytes(wheel_bytes(name, version, metadata=metadata))
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{daemon.url}/api/v4/projects/{project}/packages/pypi",
         "-u", "__token__", "-p", daemon.token, str(path)])


@pytest.fixture
def team(daemon: Daemon, tmp_path: Path) -> dict[str, str]:
    """acme/tools (private) with a maintainer (mia) and a reporter (rita)."""
    project = daemon.cli("project", "create", "acme/tools").stdout.strip()
    tokens = {}
    for name, role in (("mia", "maintainer"), ("rita", "reporter")):
        daemon.cli("user", "create", name)
        daemon.cli("member", "add", project, name, "--role", role)
        tokens[name] = daemon.cli("token", "create", name, "--scopes", "api").stdout.strip()
    upload(daemon, project, "acme-tool", "1.0", tmp_path)
    return {"project": project, **tokens}


def test_sign_in_browse_and_run_the_snippets(daemon: Daemon, team: dict[str, str],
                                             browser: object, tmp_path: Path) -> None:
    """Signed in, the projects page lists acme/tools; its packages page shows acme-tool and
    snippets with this server's URLs (a placeholder, never the token); the ~/.pypirc and
    pip snippets, with the token filled in, publish with twine and install with pip."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(daemon.url + "/")  # type: ignore[attr-defined]
    assert "acme/tools" not in driver.page_source  # type: ignore[attr-defined]
    shoot(driver, tmp_path, "signed-out")
    sign_in(driver, daemon, team["mia"])
    driver.find_element(By.LINK_TEXT, "acme/tools").click()  # type: ignore[attr-defined]
    assert driver.find_element(By.TAG_NAME, "h1").text == "acme/tools: packages"  # type: ignore[attr-defined]
    shot = shoot(driver, tmp_path, "packages")
    assert distinct_pixels(shot) > 4, "the screenshot is blank"
    pypirc = driver.find_element(By.ID, "snippet-pypirc").text  # type: ignore[attr-defined]
    pip = driver.find_element(By.ID, "snippet-pip").text  # type: ignore[attr-defined]
    assert team["mia"] not in driver.page_source  # type: ignore[attr-defined]
    assert f"{daemon.url}/api/v4/projects/{team['project']}/packages/pypi" in pypirc
    config = tmp_path / "pypirc"
    config.write_text(pypirc.replace("<your_personal_token>", team["mia"]) + "\n")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / wheel_filename("snippet-pkg", "2.0")).write_bytes(wheel_bytes("snippet-pkg", "2.0"))
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--config-file", str(config), "--repository", "gitlab",
         str(dist / wheel_filename("snippet-pkg", "2.0"))])
    command = pip.replace("<your_personal_token>", team["mia"]).replace("PACKAGE", "snippet-pkg")
    words = command.split()
    assert words[:3] == ["pip", "install", "--index-url"]
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
         "--disable-pip-version-check", "--target", str(site), *words[2:]])
    assert (site / "snippet_pkg.py").exists()
    driver.refresh()  # type: ignore[attr-defined]
    driver.find_element(By.LINK_TEXT, "snippet-pkg").click()  # type: ignore[attr-defined]
    assert "snippet_pkg-2.0-py3-none-any.whl" in driver.page_source  # type: ignore[attr-defined]
    shoot(driver, tmp_path, "package")


def test_a_maintainer_yanks_and_a_reporter_sees_no_buttons(
        daemon: Daemon, team: dict[str, str], browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    sign_in(driver, daemon, team["mia"])
    driver.get(f"{daemon.url}/acme/tools/-/packages")  # type: ignore[attr-defined]
    driver.find_element(By.LINK_TEXT, "acme-tool").click()  # type: ignore[attr-defined]
    driver.find_element(By.ID, "reason").send_keys("broken build")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "yank").click()  # type: ignore[attr-defined]
    until(lambda: "yanked: broken build" in driver.page_source, "the yank shown")  # type: ignore[attr-defined]
    code, body = daemon.get(f"/api/v4/projects/{team['project']}/packages/pypi/simple/acme-tool/",
                            team["mia"])
    assert code == 200 and b'data-yanked="broken build"' in body
    shoot(driver, tmp_path, "yanked")
    page = driver.current_url  # type: ignore[attr-defined]
    driver.delete_all_cookies()  # type: ignore[attr-defined]
    sign_in(driver, daemon, team["rita"])
    driver.get(page)  # type: ignore[attr-defined]
    source = driver.page_source  # type: ignore[attr-defined]
    assert "acme_tool-1.0-py3-none-any.whl" in source
    for control in ("Yank", "Unyank", "Delete this version", "Delete file"):
        assert control not in source, control


def _session_cookie(driver: object) -> str:
    cookie = driver.get_cookie("pypid_session")  # type: ignore[attr-defined]
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    return f"pypid_session={cookie['value']}"


def _post(daemon: Daemon, path: str, cookie: str, data: bytes) -> tuple[int, bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(daemon.url + path, data=data, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_csrf_sign_out_and_revocation_end_sessions(
        daemon: Daemon, team: dict[str, str], browser: object, tmp_path: Path) -> None:
    """A POST with the session cookie but without the form's CSRF token is refused;
    signing out ends the session (its cookie no longer works); revoking the token a
    session was made with ends it too."""
    from selenium.webdriver.common.by import By

    driver = browser
    sign_in(driver, daemon, team["mia"])
    cookie = _session_cookie(driver)
    code, body = _post(daemon, "/acme/tools/-/packages/1/yank", cookie, b"reason=forged")
    assert code == 403 and b"CSRF" in body
    code, _ = _post(daemon, "/acme/tools/-/packages/1/yank", cookie,
                    b"reason=forged&csrf_token=guess")
    assert code == 403
    assert b"forged" not in daemon.get(
        f"/api/v4/projects/{team['project']}/packages/pypi/simple/acme-tool/", team["mia"])[1]
    driver.find_element(By.CSS_SELECTOR, "header form button").click()  # type: ignore[attr-defined]
    until(lambda: "Sign in" in driver.page_source, "signed out")  # type: ignore[attr-defined]
    driver.get(f"{daemon.url}/acme/tools/-/packages")  # type: ignore[attr-defined]
    assert driver.current_url.endswith("/users/sign_in")  # type: ignore[attr-defined]
    request = urllib.request.Request(f"{daemon.url}/acme/tools/-/packages",
                                     headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:  # follows to sign-in
        assert response.url.endswith("/users/sign_in")
    # Revocation: a new session, then its token revoked with the CLI.
    sign_in(driver, daemon, team["rita"])
    driver.get(f"{daemon.url}/acme/tools/-/packages")  # type: ignore[attr-defined]
    assert "acme-tool" in driver.page_source  # type: ignore[attr-defined]
    listed = daemon.cli("token", "list", "rita", "--json").stdout
    import json

    token_id = json.loads(listed)[0]["id"]
    daemon.cli("token", "revoke", str(token_id))

    def ended() -> bool:
        driver.get(f"{daemon.url}/acme/tools/-/packages")  # type: ignore[attr-defined]
        return driver.current_url.endswith("/users/sign_in")  # type: ignore[attr-defined]

    until(ended, "the revoked token's session ended")
    shoot(driver, tmp_path, "sign-in")


def test_metadata_full_of_html_stays_text(daemon: Daemon, team: dict[str, str],
                                          browser: object, tmp_path: Path) -> None:
    """A summary and a description made of script tags, event handlers and javascript:
    links: in the browser no script runs, and the summary is shown as the text it is."""
    evil = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
    metadata = ("Metadata-Version: 2.1\nName: evil-pkg\nVersion: 6.6.6\n"
                f"Summary: {evil}\nDescription-Content-Type: text/markdown\n\n"
                f"# Hello\n\n{evil}\n\n[click](javascript:document.title='pwned')\n\n"
                "<a href=\"javascript:alert(1)\">x</a> <iframe src=\"/\"></iframe>\n")
    upload(daemon, team["project"], "evil-pkg", "6.6.6", tmp_path, metadata)
    driver = browser
    sign_in(driver, daemon, team["mia"])
    driver.get(f"{daemon.url}/acme/tools/-/packages?search=evil")  # type: ignore[attr-defined]
    from selenium.webdriver.common.by import By

    driver.find_element(By.LINK_TEXT, "evil-pkg").click()  # type: ignore[attr-defined]
    assert driver.title != "pwned" and "evil-pkg" in driver.title  # type: ignore[attr-defined]
    text = driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    assert '<script>document.title="pwned"</script>' in text  # the summary, as text
    for dangerous in ("script", "iframe", "[onerror]", "[onload]", "a[href^='javascript']"):
        assert driver.find_elements(By.CSS_SELECTOR, dangerous) == [], dangerous  # type: ignore[attr-defined]
    assert driver.find_element(By.CSS_SELECTOR, ".description h1").text == "Hello"  # type: ignore[attr-defined]
    shoot(driver, tmp_path, "metadata-as-text")
