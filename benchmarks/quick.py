#!/usr/bin/env python3
"""pypid's own quick benchmark: catches a regression of pages, root index, downloads and
uploads in under a minute, each read case beside a same-run baseline.

The baseline is plain twisted.web (`twistd web --path`) serving the same bytes from a
static directory on the same core: what the machine and Twisted can do with no registry
logic at all. Ratios to it stay comparable across machines and runs; absolute rates do not.

    python benchmarks/quick.py            # needs wrk (Debian: apt-get install wrk)

QUICK_PROJECTS sets the number of projects (200); QUICK_PYPID_ARGS adds daemon options
(e.g. --no-metrics, to measure what counting costs).

Server processes are pinned to CPU 0 and wrk to CPU 1 when taskset exists, as in
../shared/bench. Prints a table; exit status 0 unless something failed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.dists import upload_form, wheel_bytes, wheel_filename

BIN = Path(sys.executable).parent
DURATION = os.environ.get("QUICK_DURATION", "4s")
PROJECTS = int(os.environ.get("QUICK_PROJECTS", "200"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: str, command: list[str]) -> list[str]:
    return (["taskset", "-c", cpu] if shutil.which("taskset") else []) + command


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            host, port = url.split("//")[1].split("/")[0].split(":")
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


def start_pypid(work: Path, port: int, *options: str,
                tree: Path = REPO, cpu: str = "0") -> tuple[subprocess.Popen[bytes], str]:
    """`twistd -n pypid` from tree on CPU cpu, data dir work/data; the process (once it
    listens) and root's token."""
    daemon = subprocess.Popen(
        pinned(cpu, [str(BIN / "twistd"), "-n", "--pidfile=", "pypid", "--data-dir",
                     str(work / "data"), "--listen", f"tcp:{port}:interface=127.0.0.1",
                     *options]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(tree)}, cwd=work)
    try:
        wait_for(f"http://127.0.0.1:{port}")
        while not (work / "data" / "initial-root-token").exists():
            time.sleep(0.05)
    except BaseException:
        daemon.terminate()
        daemon.wait(timeout=30)
        raise
    return daemon, (work / "data" / "initial-root-token").read_text().strip()


def wrk(url: str, headers: dict[str, str]) -> float:
    command = ["wrk", "-t2", "-c32", f"-d{DURATION}", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(pinned("1", [*command, url]), capture_output=True, text=True,
                            check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"errors while loading {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def post(port: int, project: str, token: str, filename: str, content: bytes, version: str,
         name: str) -> int:
    body, headers = upload_form(filename, content, name, version)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", f"/api/v4/projects/{project}/packages/pypi", body=body,
                       headers={**headers, "Private-Token": token})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="pypid-quick-"))
    port, static_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon, token = start_pypid(work, port, *os.environ.get("QUICK_PYPID_ARGS", "").split())
    static = None
    try:
        base = f"http://127.0.0.1:{port}"
        project = subprocess.run(
            [str(BIN / "pypid"), "--data-dir", str(work / "data"), "project", "create",
             "quick/bench"], capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()
        files = [(wheel_filename(f"pkg-{n:05d}", "1.0"), wheel_bytes(f"pkg-{n:05d}", "1.0"),
                  f"pkg-{n:05d}") for n in range(PROJECTS)]
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(
                lambda f: post(port, project, token, f[0], f[1], "1.0", f[2]), files))
        upload_rate = len(files) / (time.perf_counter() - started)
        assert codes == [201] * len(files), codes
        big = wheel_bytes("dl1m", "1.0", padding=1024 * 1024)
        assert post(port, project, token, wheel_filename("dl1m", "1.0"), big, "1.0",
                    "dl1m") == 201
        auth = {"Authorization": "Basic " + base64.b64encode(
            f"__token__:{token}".encode()).decode()}
        simple = f"{base}/api/v4/projects/{project}/packages/pypi/simple/"
        sha = hashlib.sha256(big).hexdigest()
        download = (f"{base}/api/v4/projects/{project}/packages/pypi/files/{sha}/"
                    f"{wheel_filename('dl1m', '1.0')}")
        # The same bytes as static files for the baseline.
        tree = work / "static"
        (tree / "pkg").mkdir(parents=True)
        for path, url in ((tree / "index.html", simple), (tree / "pkg" / "index.html",
                                                          simple + "pkg-00001/")):
            request = urllib_get(url, auth)
            path.write_bytes(request)
        (tree / "file.whl").write_bytes(big)
        static = subprocess.Popen(
            pinned("0", [str(BIN / "twistd"), "-n", "--pidfile=", "web", "--listen",
                         f"tcp:{static_port}:interface=127.0.0.1", "--path", str(tree)]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        static_base = f"http://127.0.0.1:{static_port}"
        wait_for(static_base)
        cases = [
            ("a: project page", simple + "pkg-00001/", f"{static_base}/pkg/index.html"),
            (f"c: root index ({PROJECTS + 1} projects)", simple, f"{static_base}/index.html"),
            ("d: 1 MB download", download, f"{static_base}/file.whl"),
        ]
        print("| case | pypid req/s | twisted.web static req/s | ratio |")
        print("|---|---|---|---|")
        for label, url, baseline_url in cases:
            rate = wrk(url, auth)
            baseline = wrk(baseline_url, {})
            print(f"| {label} | {rate:,.0f} | {baseline:,.0f} | {rate / baseline:.2f} |")
        print(f"| uploads, 8 KB wheels, 4 at a time | {upload_rate:,.0f} files/s | — | — |")
        return 0
    finally:
        for process in (daemon, static):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def urllib_get(url: str, headers: dict[str, str]) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own http URL
    with urllib.request.urlopen(request) as response:  # noqa: S310
        return bytes(response.read())


if __name__ == "__main__":
    sys.exit(main())
