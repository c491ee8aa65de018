#!/usr/bin/env python3
"""The 1 MB download's floor: pypid beside nginx and beside a bare Twisted protocol that
does nothing but read a request's head and sendfile the file (no routing, no
authorization, no headers of its own), alternated, with each server's user and system
CPU time per request.

    python benchmarks/floor.py          # needs wrk and nginx

Servers on CPU 0 (nginx with one worker), wrk on CPU 1, as in ../shared/bench.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accel import nginx_conf
from quick import BIN, REPO, free_port, pinned, post, start_pypid, wait_for

from tests.dists import wheel_bytes, wheel_filename

BARE = '''
import os, socket, sys
from twisted.internet import protocol, reactor
path, port = sys.argv[1], int(sys.argv[2])
size = os.path.getsize(path)
HEAD = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % size
class Bare(protocol.Protocol):
    buffer = b""
    def dataReceived(self, data):
        self.buffer += data
        while b"\\r\\n\\r\\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\\r\\n\\r\\n")
            fd = os.open(path, os.O_RDONLY)
            sock = self.transport.socket
            sock.sendmsg([HEAD], (), socket.MSG_MORE)
            sent = 0
            try:
                while sent < size:
                    try:
                        sent += os.sendfile(sock.fileno(), fd, sent, size - sent)
                    except BlockingIOError:
                        import select
                        select.select([], [sock], [])
            except OSError:
                self.transport.abortConnection()
            finally:
                os.close(fd)
factory = protocol.Factory()
factory.protocol = Bare
reactor.listenTCP(port, factory, interface="127.0.0.1")
reactor.run()
'''


def times(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def measure(pid: int, url: str, headers: list[str]) -> str:
    before = times(pid)
    command = ["wrk", "-t2", "-c32", "-d4s"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(pinned("1", [*command, url]), capture_output=True, text=True,
                            check=True).stdout
    after = times(pid)
    count = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert count and rate, output
    tick = 1e6 / os.sysconf("SC_CLK_TCK") / int(count.group(1))
    return (f"{float(rate.group(1)):,.0f} | {(after[0] - before[0]) * tick:.0f} | "
            f"{(after[1] - before[1]) * tick:.0f}")


def main() -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not os.path.exists(nginx):
        raise SystemExit("wrk and nginx are needed: apt-get install wrk nginx")
    work = Path(tempfile.mkdtemp(prefix="pypid-floor-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pypid_port, bare_port, static_port = free_port(), free_port(), free_port()
        (work / "p").mkdir()
        daemon, token = start_pypid(work / "p", pypid_port)
        processes.append(daemon)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        project = subprocess.run([str(BIN / "pypid"), "--data-dir", str(work / "p" / "data"),
                                  "project", "create", "b/b"], capture_output=True, text=True,
                                 check=True, env=env).stdout.strip()
        big = wheel_bytes("dl1m", "1.0", padding=1024 * 1024)
        assert post(pypid_port, project, token, wheel_filename("dl1m", "1.0"), big, "1.0",
                    "dl1m") == 201
        static = work / "static"
        static.mkdir()
        (static / "file.whl").write_bytes(big)
        (work / "ngx").mkdir()
        config = nginx_conf(work / "ngx", f"server {{ listen 127.0.0.1:{static_port}; "
                                          f"root {static}; }}")
        processes.append(subprocess.Popen(
            pinned("0", [nginx, "-c", str(config), "-p", str(work / "ngx")]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bare = subprocess.Popen(pinned("0", [sys.executable, "-c", BARE,
                                             str(static / "file.whl"), str(bare_port)]))
        processes.append(bare)
        wait_for(f"http://127.0.0.1:{static_port}")
        wait_for(f"http://127.0.0.1:{bare_port}")
        worker = int(subprocess.run(["pgrep", "-P", str(processes[1].pid)],
                                    capture_output=True, text=True).stdout.split()[0])
        auth = "Authorization: Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        path = (f"/api/v4/projects/{project}/packages/pypi/files/"
                f"{hashlib.sha256(big).hexdigest()}/{wheel_filename('dl1m', '1.0')}")
        servers = (("pypid", daemon.pid, f"http://127.0.0.1:{pypid_port}{path}", [auth]),
                   ("nginx", worker, f"http://127.0.0.1:{static_port}/file.whl", []),
                   ("bare Twisted protocol", bare.pid,
                    f"http://127.0.0.1:{bare_port}/file.whl", []))
        measure(daemon.pid, servers[0][2], [auth])  # fills pypid's caches
        print("| run | server | req/s | user µs per request | system µs per request |")
        print("|---|---|---|---|---|")
        for run in range(3):
            for name, pid, url, headers in servers:
                print(f"| {run + 1} | {name} | {measure(pid, url, headers)} |", flush=True)
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
