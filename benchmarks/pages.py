#!/usr/bin/env python3
"""A project's packages page (the web UI) against its simple root index, same run, at
5,000 packages: both cached, the page read with a signed-in session cookie.

    python benchmarks/pages.py        # needs wrk; a few minutes (the uploads)

pypid pinned to CPU 0, wrk to CPU 1 (as quick.py).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick import BIN, REPO, free_port, post, start_pypid, wrk

from tests.dists import wheel_bytes, wheel_filename

PACKAGES = int(os.environ.get("PAGES_PACKAGES", "5000"))


def session_cookie(port: int, token: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/users/sign_in")
    response = connection.getresponse()
    body = response.read().decode()
    form_cookie = response.getheader("Set-Cookie", "").split(";")[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert csrf, body
    connection.request("POST", "/users/sign_in", body=f"csrf_token={csrf.group(1)}&token={token}",
                       headers={"Cookie": form_cookie,
                                "Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    assert response.status == 303, response.status
    return response.getheader("Set-Cookie", "").split(";")[0]


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="pypid-pages-"))
    port = free_port()
    daemon, token = start_pypid(work, port)
    try:
        project = subprocess.run(
            [str(BIN / "pypid"), "--data-dir", str(work / "data"), "project", "create",
             "bench/all"], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip()
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda n: post(
                port, project, token, wheel_filename(f"pkg-{n:05d}", "1.0"),
                wheel_bytes(f"pkg-{n:05d}", "1.0"), "1.0", f"pkg-{n:05d}"), range(PACKAGES)))
        assert codes == [201] * PACKAGES, set(codes)
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Basic " + base64.b64encode(
            f"__token__:{token}".encode()).decode()}
        cookie = {"Cookie": session_cookie(port, token)}
        cases = [("simple root, 5,000 names (token)", f"{base}/api/v4/projects/{project}"
                  "/packages/pypi/simple/", auth),
                 ("packages page 1 of 100 (session)", f"{base}/bench/all/-/packages", cookie),
                 ("packages page, search (session)",
                  f"{base}/bench/all/-/packages?search=pkg-0004&sort=recent", cookie)]
        print("| case | req/s | against the simple root |")
        print("|---|---|---|")
        root = None
        for label, url, headers in cases:
            rate = wrk(url, headers)
            root = root or rate
            print(f"| {label} | {rate:,.0f} | {rate / root:.2f} |")
        return 0
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
