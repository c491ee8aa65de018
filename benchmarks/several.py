#!/usr/bin/env python3
"""The shared benchmark's read cases (a-d, scale A) against pypid as one daemon and as two
daemons on one data dir behind nginx, with nginx serving the same corpus from a static
tree in the same run as the peer.

    python benchmarks/several.py        # needs wrk, nginx, the corpora of ../shared/bench

Setups (all on this 2-core machine; the load generator shares the cores, so nothing here
is a ceiling):
  one-direct     one daemon on CPU 0, wrk on CPU 1 (the shared bench's own setup)
  one-nginx      one daemon on CPU 0 behind nginx (1 worker, sending the downloads that
                 pypid authorizes: --accel-redirect); nginx and wrk on both CPUs
  two-nginx      daemons on CPU 0 and CPU 1 behind nginx (upstream block of both)
  nginx-static   nginx serving ../shared/bench's static tree of the corpus (the peer)
For each pypid setup and case the per-daemon figures: requests each answered (from its
/-/metrics) and the CPU seconds each used. Writes JSON per setup and prints tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accel import PREFIX, nginx_conf
from quick import BIN, REPO, free_port, pinned, wait_for

BENCH = REPO.parent / "shared" / "bench"
DATA = Path(os.environ.get("BENCH_DATA", "/tmp/bench-data"))  # noqa: S108 - the harness's
CASES = os.environ.get("SEVERAL_CASES", "a,b,c,d")


def start_daemon(data: Path, port: int, cpu: str, *options: str) -> subprocess.Popen[bytes]:
    daemon = subprocess.Popen(
        pinned(cpu, [str(BIN / "twistd"), "-n", "--pidfile=", "pypid", "--data-dir", str(data),
                     "--listen", f"tcp:{port}:interface=127.0.0.1", *options]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=data.parent)
    wait_for(f"http://127.0.0.1:{port}")
    return daemon


def start_nginx(work: Path, port: int, servers: list[int] | None, static: Path
                ) -> subprocess.Popen[bytes]:
    """nginx in front of the daemons (downloads sent by nginx: --accel-redirect, as
    conf/nginx.conf), or serving the static tree static."""
    work.mkdir(parents=True, exist_ok=True)
    if servers is not None:
        upstream = "".join(f"server 127.0.0.1:{server}; " for server in servers)
        inner = ("location / { proxy_pass http://pypid; proxy_http_version 1.1; "
                 "proxy_set_header Connection \"\"; proxy_set_header Host $host; }")
        inner += (f" location {PREFIX} {{ internal; alias {static}/; types {{ }} "
                  "default_type application/octet-stream; }")
        block = f"upstream pypid {{ {upstream} keepalive 64; }}"
    else:
        inner, block = f"root {static};", ""
    nginx_conf(work, f"""
    {block}
    server {{ listen 127.0.0.1:{port}; client_max_body_size 60m; {inner} }}""")
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c",
                              str(work / "nginx.conf"), "-p", str(work)])
    wait_for(f"http://127.0.0.1:{port}")
    return nginx


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("pypid_requests_total{") and 'endpoint="metrics"' not in line)


def load(label: str, simple: str, out: Path, token: str | None, populate: bool,
         upload: str = "", pid: int | None = None, cpu: str = "0,1") -> dict[str, Any]:
    env = {**os.environ, "SIMPLE_URL": simple, "UPLOAD_URL": upload, "LOADGEN_CPU": cpu,
           "WRK_DURATION": os.environ.get("WRK_DURATION", "5s"), "RUNS": "2"}
    if token:
        env.update(TOKEN=token, USERNAME="__token__", READ_AUTH="1")
    if pid:
        env["SERVER_PID"] = str(pid)
    subprocess.run([sys.executable, str(BENCH / "load.py"), "--label", label,
                    "--corpus", str(DATA / "corpus-A"), "--dl", str(DATA / "dl1m"),
                    "--populate", "all" if populate else "none",
                    "--cases", CASES if not populate else "", "--out", str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> int:
    for needed in ("wrk", "nginx"):
        if not shutil.which(needed) and not os.path.exists(f"/usr/sbin/{needed}"):
            raise SystemExit(f"{needed} is needed")
    if not (DATA / "corpus-A").exists() or not (DATA / "static-A").exists():
        raise SystemExit(f"make the corpora first: {BENCH}/run_all.sh (or README's commands)")
    work = Path(tempfile.mkdtemp(prefix="pypid-several-"))
    data = work / "data"
    first_port, second_port, front = free_port(), free_port(), free_port()
    results: dict[str, dict[str, Any]] = {}
    figures: dict[str, list[tuple[str, float, float]]] = {}
    first = start_daemon(data, first_port, "0")
    processes = [first]
    try:
        token = (data / "initial-root-token").read_text().strip()
        project = subprocess.run(
            [str(BIN / "pypid"), "--data-dir", str(data), "project", "create", "bench/bench"],
            check=True, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip()
        path = f"/api/v4/projects/{project}/packages/pypi"
        load("populate", f"http://127.0.0.1:{first_port}{path}/simple/", work / "populate.json",
             token, True, f"http://127.0.0.1:{first_port}{path}", cpu="1")

        def measure(label: str, port: int, daemons: list[tuple[int, subprocess.Popen[bytes]]],
                    cpu: str) -> None:
            before = [(answered(p), cpu_seconds(d.pid)) for p, d in daemons]
            results[label] = load(label, f"http://127.0.0.1:{port}{path}/simple/",
                                  work / f"{label}.json", token, False, pid=daemons[0][1].pid,
                                  cpu=cpu)
            after = [(answered(p), cpu_seconds(d.pid)) for p, d in daemons]
            figures[label] = [(f"daemon {n + 1}", a[0] - b[0], a[1] - b[1])
                              for n, (b, a) in enumerate(zip(before, after, strict=True))]

        measure("one-direct", first_port, [(first_port, first)], "1")
        first.terminate()
        first.wait(timeout=30)
        blobs = (data / "blobs" / "sha256").resolve()
        first = start_daemon(data, first_port, "0", "--accel-redirect", PREFIX)
        processes.append(first)
        nginx = start_nginx(work / "ngx1", front, [first_port], blobs)
        processes.append(nginx)
        measure("one-nginx", front, [(first_port, first)], "0,1")
        nginx.terminate()
        nginx.wait(timeout=30)
        second = start_daemon(data, second_port, "1", "--accel-redirect", PREFIX)
        processes.append(second)
        nginx = start_nginx(work / "ngx2", front, [first_port, second_port], blobs)
        processes.append(nginx)
        measure("two-nginx", front, [(first_port, first), (second_port, second)], "0,1")
        nginx.terminate()
        nginx.wait(timeout=30)
        static = start_nginx(work / "ngx3", front, None, DATA / "static-A")
        processes.append(static)
        results["nginx-static"] = load("nginx-static", f"http://127.0.0.1:{front}/simple/",
                                       work / "static.json", None, False)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    print("| case | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for case in CASES.split(","):
        rates = []
        for result in results.values():
            runs = result.get(case, {}).get("runs", [])
            rates.append(" / ".join(f"{run['rps']:,.0f}" for run in runs) or "-")
        what = next(r[case]["what"] for r in results.values() if case in r)
        print(f"| {case}: {what} | " + " | ".join(rates) + " |")
    print()
    print("| setup | daemon | requests answered | CPU seconds | CPU µs per request |")
    print("|---|---|---|---|---|")
    for label, rows in figures.items():
        for name, requests, seconds in rows:
            per = seconds / requests * 1e6 if requests else 0.0
            print(f"| {label} | {name} | {requests:,.0f} | {seconds:.1f} | {per:.0f} |")
    print(f"\n(raw results in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
