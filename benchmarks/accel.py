#!/usr/bin/env python3
"""The 1 MB download (the shared benchmark's case d) behind nginx, same run: pypid with
--accel-redirect (pypid authorizes, nginx sends) against nginx serving the same file from a
static directory, and against nginx proxying pypid's own sendfile answers.

    python benchmarks/accel.py          # needs wrk and nginx

pypid and nginx share CPU 0 (one worker), wrk runs on CPU 1. A last column hands the
same file off from an upstream that costs nothing (an nginx server block answering the
header): what X-Accel-Redirect itself costs nginx, the ceiling for any authorizer.
ACCEL_PYPID_CPU=1 puts the daemons on CPU 1 beside wrk instead, so that nginx has CPU 0
to itself in every case, as when nginx and pypid run on cores of their own.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick import BIN, REPO, free_port, pinned, post, start_pypid, wait_for, wrk

from tests.dists import wheel_bytes, wheel_filename

PREFIX = "/_pypid_blobs/"


def nginx_conf(work: Path, http: str) -> Path:
    """A benchmark's nginx.conf: one worker, its files under work, then http's lines."""
    user = "user root;" if os.geteuid() == 0 else ""
    config = work / "nginx.conf"
    config.write_text(f"""
{user}
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off; sendfile on; tcp_nopush on;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
{http}
}}
""")
    return config


def nginx_config(work: Path, port: int, direct_port: int, static_port: int,
                 accel_upstream: int, plain_upstream: int, blobs: Path, static: Path,
                 free_port: int, free_upstream: int) -> Path:
    # free_port: the same X-Accel-Redirect, from an upstream that costs nothing (nginx's
    # own server block answering the header): what the hand-off itself costs nginx.
    return nginx_conf(work, f"""
    upstream free {{ server 127.0.0.1:{free_upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{free_port};
        location / {{ proxy_pass http://free; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }}
        location /_static/ {{ internal; alias {static}/; types {{ }}
                            default_type application/octet-stream; }}
    }}
    server {{
        listen 127.0.0.1:{free_upstream}; keepalive_requests 100000;
        location / {{ add_header X-Accel-Redirect /_static/file.whl; return 200 ""; }}
    }}
    upstream accel {{ server 127.0.0.1:{accel_upstream}; keepalive 32; }}
    upstream plain {{ server 127.0.0.1:{plain_upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://accel; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }}
        location {PREFIX} {{ internal; alias {blobs}/; types {{ }}
                            default_type application/octet-stream; }}
    }}
    server {{
        listen 127.0.0.1:{direct_port};
        location / {{ proxy_pass http://plain; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }}
    }}
    server {{ listen 127.0.0.1:{static_port}; root {static}; }}""")


def main() -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not os.path.exists(nginx):
        raise SystemExit("wrk and nginx are needed: apt-get install wrk nginx")
    work = Path(tempfile.mkdtemp(prefix="pypid-accel-"))
    (work / "a").mkdir()
    (work / "p").mkdir()
    (work / "ngx").mkdir()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        accel_port, plain_port = free_port(), free_port()
        cpu = os.environ.get("ACCEL_PYPID_CPU", "0")
        accel, token = start_pypid(work / "a", accel_port, "--accel-redirect", PREFIX, cpu=cpu)
        plain, plain_token = start_pypid(work / "p", plain_port, cpu=cpu)
        processes += [accel, plain]
        big = wheel_bytes("dl1m", "1.0", padding=1024 * 1024)
        sha = hashlib.sha256(big).hexdigest()
        for port, secret in ((accel_port, token), (plain_port, plain_token)):
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            data = work / ("a" if port == accel_port else "p") / "data"
            project = subprocess.run([str(BIN / "pypid"), "--data-dir", str(data), "project",
                                      "create", "b/b"], capture_output=True, text=True,
                                     check=True, env=env).stdout.strip()
            assert post(port, project, secret, wheel_filename("dl1m", "1.0"), big, "1.0",
                        "dl1m") == 201
        static = work / "static"
        static.mkdir()
        (static / "file.whl").write_bytes(big)
        port, direct_port, static_port = free_port(), free_port(), free_port()
        handoff_port = free_port()
        config = nginx_config(work / "ngx", port, direct_port, static_port, accel_port,
                              plain_port, (work / "a" / "data" / "blobs" / "sha256").resolve(),
                              static, handoff_port, free_port())
        processes.append(subprocess.Popen(
            pinned("0", [nginx, "-c", str(config), "-p", str(work / "ngx")]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(f"http://127.0.0.1:{static_port}")
        path = f"/api/v4/projects/1/packages/pypi/files/{sha}/{wheel_filename('dl1m', '1.0')}"
        print("| run | pypid + X-Accel-Redirect via nginx | nginx static | ratio | "
              "nginx proxying pypid's sendfile | X-Accel-Redirect from a free upstream | "
              "its ratio |")
        print("|---|---|---|---|---|---|---|")
        for run in range(3):
            auth = {"Authorization": "Basic " + base64.b64encode(
                f"__token__:{token}".encode()).decode()}
            plain_auth = {"Authorization": "Basic " + base64.b64encode(
                f"__token__:{plain_token}".encode()).decode()}
            accelerated = wrk(f"http://127.0.0.1:{port}{path}", auth)
            baseline = wrk(f"http://127.0.0.1:{static_port}/file.whl", {})
            proxied = wrk(f"http://127.0.0.1:{direct_port}{path}", plain_auth)
            handoff = wrk(f"http://127.0.0.1:{handoff_port}/file.whl", {})
            print(f"| {run + 1} | {accelerated:,.0f} | {baseline:,.0f} | "
                  f"{accelerated / baseline:.2f} | {proxied:,.0f} | {handoff:,.0f} | "
                  f"{handoff / baseline:.2f} |", flush=True)
        return 0
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
