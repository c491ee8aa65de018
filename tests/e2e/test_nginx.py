"""pypid behind a real nginx with --accel-redirect: pip installs, nginx sends the bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dists import wheel_filename, write_wheel
from tests.e2e.daemon import Daemon, run
from tests.e2e.test_clients import imported_value, pip_install, twine, uv_install

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)
PREFIX = "/_pypid_blobs/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_config(work: Path, port: int, daemon_urls: str | list[str], blobs: Path) -> Path:
    """nginx in front of one daemon, or of several on one data dir (an upstream block, as
    conf/nginx.conf shows)."""
    urls = [daemon_urls] if isinstance(daemon_urls, str) else daemon_urls
    servers = "".join(f"        server {url.removeprefix('http://')};\n" for url in urls)
    work.mkdir(parents=True, exist_ok=True)
    config = work / "nginx.conf"
    # `user root` lets the worker read the test's 0700 temp dirs when CI runs as root;
    # nginx ignores it (with a warning) otherwise.
    user = "user root;" if os.geteuid() == 0 else ""
    config.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream pypid {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 60m;
        location / {{
            proxy_pass http://pypid;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_request_buffering off;
        }}
        location {PREFIX} {{
            internal;
            alias {blobs}/;
            types {{ }}
            default_type application/octet-stream;
        }}
    }}
}}
""")
    return config


@contextmanager
def running_nginx(work: Path, daemon_urls: str | list[str], blobs: Path) -> Iterator[str]:
    """A real nginx in front of the daemon(s) on a free port; yields its URL."""
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    port = free_port()
    config = nginx_config(work, port, daemon_urls, blobs.resolve())
    nginx = subprocess.Popen([NGINX, "-c", str(config), "-p", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        if nginx.stderr is not None:
            nginx.stderr.close()


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[Daemon, str]]:
    if NGINX is None and not os.environ.get("CI"):
        pytest.skip("nginx is not installed")
    daemon = Daemon(tmp_path / "data", args=["--accel-redirect", PREFIX]).start()
    try:
        with running_nginx(tmp_path / "nginx", daemon.url,
                           tmp_path / "data" / "blobs" / "sha256") as url:
            yield daemon, url
    finally:
        daemon.stop()


def get(url: str, token: str | None, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", "Basic " + b64encode(
            f"__token__:{token}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_pip_installs_through_nginx_which_sends_the_files(
    behind_nginx: tuple[Daemon, str], tmp_path: Path
) -> None:
    """Uploads and pages go through nginx to pypid; downloads are authorized by pypid and
    sent by nginx (ranges too); the internal location is unreachable; refusals stay
    pypid's."""
    daemon, url = behind_nginx
    project = daemon.cli("project", "create", "acme/nginx").stdout.strip()
    wheel = write_wheel(tmp_path, "viaproxy", "1.0", padding=300_000)
    twine("upload", "--repository-url", f"{url}/api/v4/projects/{project}/packages/pypi",
          "-u", "__token__", "-p", daemon.token, str(wheel))
    host = url.removeprefix("http://")
    index = f"http://__token__:{daemon.token}@{host}/api/v4/projects/{project}/packages/pypi/simple/"
    site = pip_install(tmp_path, index, "viaproxy")
    assert imported_value(site, "viaproxy") == "1.0"
    python = uv_install(tmp_path, index, "viaproxy")
    assert run([str(python), "-c", "import viaproxy; print(viaproxy.VALUE)"]).stdout.strip() \
        == "1.0"
    content = wheel.read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    file_url = (f"{url}/api/v4/projects/{project}/packages/pypi/files/{sha}/"
                f"{wheel_filename('viaproxy', '1.0')}")
    code, headers, body = get(file_url, daemon.token)
    assert code == 200 and body == content
    assert "X-Accel-Redirect" not in headers  # nginx consumed it
    assert headers.get("Content-Disposition", "").endswith('"viaproxy-1.0-py3-none-any.whl"')
    code, headers, body = get(file_url, daemon.token, {"Range": "bytes=10-19"})
    assert code == 206 and body == content[10:20]
    assert get(file_url, None)[0] == 401
    assert get(f"{url}{PREFIX}{sha[:2]}/{sha}", daemon.token)[0] == 404
    # The bytes came from nginx: pypid counted almost nothing sent for the file endpoint.
    _, metrics = daemon.get("/-/metrics")
    sent = [line for line in metrics.decode().splitlines()
            if line.startswith('pypid_response_bytes_total{endpoint="file"}')]
    assert sent and float(sent[0].split()[-1]) < len(content)
