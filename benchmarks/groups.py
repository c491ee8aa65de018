#!/usr/bin/env python3
"""The group index against the project index, same run: a group of 50 projects holding
5,000 packages, and one project holding the same 5,000 packages.

    python benchmarks/groups.py        # needs wrk; about a minute

Cases: the root (5,000 names) of the group and of the project; one package page through
the group and through its project. pypid pinned to CPU 0, wrk to CPU 1 (as quick.py).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick import BIN, REPO, free_port, post, start_pypid, wrk

from tests.dists import wheel_bytes, wheel_filename

PROJECTS = int(os.environ.get("GROUP_PROJECTS", "50"))
PER_PROJECT = int(os.environ.get("GROUP_PACKAGES_PER_PROJECT", "100"))


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="pypid-groups-"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon, token = start_pypid(work, port)
    try:
        base = f"http://127.0.0.1:{port}"

        def cli(*argv: str) -> str:
            return subprocess.run([str(BIN / "pypid"), "--data-dir", str(work / "data"), *argv],
                                  capture_output=True, text=True, check=True,
                                  env=env).stdout.strip()

        members = [cli("project", "create", f"bench/team/p{n:02d}") for n in range(PROJECTS)]
        alone = cli("project", "create", "solo/all")
        jobs = []
        for n in range(PROJECTS * PER_PROJECT):
            name = f"pkg-{n:05d}"
            content = wheel_bytes(name, "1.0")
            jobs.append((members[n // PER_PROJECT], name, content))
            jobs.append((alone, name, content))
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda job: post(
                port, job[0], token, wheel_filename(job[1], "1.0"), job[2], "1.0", job[1]),
                jobs))
        assert codes == [201] * len(jobs), set(codes)
        auth = {"Authorization": "Basic " + base64.b64encode(
            f"__token__:{token}".encode()).decode()}
        group = f"{base}/api/v4/groups/bench%2Fteam/-/packages/pypi/simple/"
        project = f"{base}/api/v4/projects/{alone}/packages/pypi/simple/"
        cases = [("root, 5,000 names", group, project),
                 ("package page", group + "pkg-00042/", project + "pkg-00042/")]
        print("| case | group req/s | project req/s | group / project |")
        print("|---|---|---|---|")
        for label, group_url, project_url in cases:
            for headers in (auth, {**auth, "Accept-Encoding": "gzip"}):
                group_rate = wrk(group_url, headers)
                project_rate = wrk(project_url, headers)
                suffix = " (gzip)" if "Accept-Encoding" in headers else ""
                print(f"| {label}{suffix} | {group_rate:,.0f} | {project_rate:,.0f} | "
                      f"{group_rate / project_rate:.2f} |")
        return 0
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
