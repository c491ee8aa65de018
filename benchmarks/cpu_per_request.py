#!/usr/bin/env python3
"""The daemon's CPU time per request, for a page and a 1 MB download, two configurations
alternated: less disturbed by a noisy machine than req/s alone.

    python benchmarks/cpu_per_request.py "" "--no-metrics"     # daemon options A, then B
    PYPID_TREE=/path/to/other/checkout ...                      # B runs that checkout

Needs wrk. pypid pinned to CPU 0, wrk to CPU 1; 200 small packages and one 1 MB wheel.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick import BIN, REPO, free_port, pinned, post, start_pypid

from tests.dists import wheel_bytes, wheel_filename

PACKAGES = 200


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tree: str, options: list[str]) -> dict[str, tuple[float, float]]:
    work = Path(tempfile.mkdtemp(prefix="pypid-cpu-"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": tree}
    daemon, token = start_pypid(work, port, *options, tree=Path(tree))
    try:
        project = subprocess.run(
            [str(BIN / "pypid"), "--data-dir", str(work / "data"), "project", "create", "c/b"],
            capture_output=True, text=True, env=env, check=True).stdout.strip()
        files = [(wheel_filename(f"pkg-{n:05d}", "1.0"), wheel_bytes(f"pkg-{n:05d}", "1.0"),
                  f"pkg-{n:05d}") for n in range(PACKAGES)]
        big = wheel_bytes("dl1m", "1.0", padding=1024 * 1024)
        files.append((wheel_filename("dl1m", "1.0"), big, "dl1m"))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda f: post(port, project, token, f[0], f[1], "1.0", f[2]), files))
        auth = "Authorization: Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        base = f"http://127.0.0.1:{port}/api/v4/projects/{project}/packages/pypi/"
        download = f"{base}files/{hashlib.sha256(big).hexdigest()}/{wheel_filename('dl1m', '1.0')}"
        results = {}
        for label, url in (("page", base + "simple/pkg-00001/"), ("download", download)):
            subprocess.run(pinned("1", ["wrk", "-t1", "-c4", "-d1s", "-H", auth, url]),
                           capture_output=True, check=True)
            before = cpu_seconds(daemon.pid)
            output = subprocess.run(pinned("1", ["wrk", "-t2", "-c32", "-d4s", "-H", auth, url]),
                                    capture_output=True, text=True, check=True).stdout
            spent = cpu_seconds(daemon.pid) - before
            count = re.search(r"(\d+) requests in", output)
            rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
            assert count and rate, output
            results[label] = (float(rate.group(1)), spent / int(count.group(1)) * 1e6)
        return results
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def main() -> int:
    first, second = [*sys.argv[1:3], "", ""][:2]
    other = os.environ.get("PYPID_TREE", str(REPO))
    for run in range(3):
        for label, tree, options in (("A", str(REPO), first), ("B", other, second)):
            results = measure(tree, options.split())
            print(f"{label} run {run + 1}: " + ", ".join(
                f"{case} {rate:,.0f} req/s {cpu:.1f} CPU us/request"
                for case, (rate, cpu) in results.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
