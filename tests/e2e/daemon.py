"""Start and stop the real daemon (`twistd -n pypid`) for end-to-end tests."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
_SERVING = re.compile(r"pypid serving on (http://[\d.]+:\d+/)")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # The checkout first: twistd finds twisted/plugins/pypid_plugin.py there.
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in list(env):
        if name.startswith(("PIP_", "UV_", "TWINE_")):
            del env[name]
    return env


@dataclass
class Daemon:
    data_dir: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    def start(self) -> Daemon:
        command = [str(BIN / "twistd"), "-n", "--pidfile=", "pypid",
                   "--data-dir", str(self.data_dir),
                   "--listen", "tcp:0:interface=127.0.0.1", *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=environment(), cwd=self.data_dir.parent,
        )
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        self.url = self.wait_for_line(_SERVING).group(1).rstrip("/")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str]:
        """Read the daemon's log until a line matches (an event, not a sleep)."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"daemon never logged {pattern.pattern}: {self.log}") from None
            if line is None:
                raise AssertionError(f"daemon exited: {self.log}")
            self.lines.append(line)
            match = pattern.search(line)
            if match:
                return match

    @property
    def log(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        assert self._reader is not None
        self._reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    @property
    def token(self) -> str:
        return (self.data_dir / "initial-root-token").read_text().strip()

    def cli(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "pypid"), "--data-dir", str(self.data_dir), *argv],
            capture_output=True, text=True, env=environment(), timeout=60, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"pypid {' '.join(argv)} failed: {result.stderr}")
        return result

    def get(self, path: str, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        if token is not None:
            request.add_header("Private-Token", token)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, token: str | None = None) -> Any:
        code, body = self.get(path, token)
        assert code == 200, (code, body)
        return json.loads(body)


def run(command: list[str], cwd: Path | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                            env=env or environment(), timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result
