"""Upstream indexes for the tests, on 127.0.0.1: a static tree (tests.e2e.static_index)
that the tests fill and steer."""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.dists import metadata_text, wheel_bytes, wheel_filename
from tests.e2e.daemon import REPO, environment

_SERVING = re.compile(r"serving on (http://[\d.]+:\d+)")


@dataclass
class UpstreamFile:
    filename: str
    content: bytes
    requires_python: str | None = None
    upload_time: str | None = "2020-01-01T00:00:00Z"
    metadata: bytes | None = None
    sha256: str | None = None  # what the page claims (default: the real digest)
    size: int | None = None  # what a JSON page claims (default: the real size)
    yanked: str | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def wheel(name: str, version: str, requires: tuple[str, ...] = (), **fields: Any) -> UpstreamFile:
    text = metadata_text(name, version)
    if requires:
        text = text.rstrip("\n") + "\n" + "".join(f"Requires-Dist: {r}\n" for r in requires) + "\n"
    return UpstreamFile(wheel_filename(name, version),
                        wheel_bytes(name, version, metadata=text), metadata=text.encode(),
                        **fields)


@dataclass
class StaticUpstream:
    root: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    pages: dict[str, list[UpstreamFile]] = field(default_factory=dict)

    def start(self) -> StaticUpstream:
        (self.root / "simple").mkdir(parents=True, exist_ok=True)
        (self.root / "files").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.static_index", str(self.root)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env=environment())
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = _SERVING.search(line)
        assert match, f"the static index did not start: {line}"
        self.url = match.group(1)
        return self

    @property
    def simple(self) -> str:
        return self.url + "/simple"

    def publish(self, name: str, files: list[UpstreamFile], style: str = "html") -> None:
        """Write name's page (PEP 503 HTML or PEP 691 JSON) and its files."""
        self.pages[name] = files
        page_dir = self.root / "simple" / name
        page_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("index.html", "index.json"):
            (page_dir / stale).unlink(missing_ok=True)
        for item in files:
            (self.root / "files" / item.filename).write_bytes(item.content)
            if item.metadata is not None:
                (self.root / "files" / (item.filename + ".metadata")).write_bytes(item.metadata)
        if style == "json":
            document = {"meta": {"api-version": "1.1"}, "name": name, "files": [
                {"filename": item.filename, "url": f"{self.url}/files/{item.filename}",
                 "hashes": {"sha256": item.sha256 or item.digest},
                 "requires-python": item.requires_python,
                 "size": item.size if item.size is not None else len(item.content),
                 "upload-time": item.upload_time,
                 "yanked": item.yanked or False,
                 **({"core-metadata": {"sha256": hashlib.sha256(item.metadata).hexdigest()}}
                    if item.metadata is not None else {})}
                for item in files]}
            (page_dir / "index.json").write_text(json.dumps(document))
            return
        links = []
        for item in files:
            attributes = f'href="../../files/{item.filename}#sha256={item.sha256 or item.digest}"'
            if item.requires_python:
                attributes += f' data-requires-python="{html.escape(item.requires_python)}"'
            if item.metadata is not None:
                digest = hashlib.sha256(item.metadata).hexdigest()
                attributes += f' data-dist-info-metadata="sha256={digest}"'
            if item.yanked is not None:
                attributes += f' data-yanked="{html.escape(item.yanked)}"'
            links.append(f"<a {attributes}>{item.filename}</a><br>")
        (page_dir / "index.html").write_text(
            "<!DOCTYPE html><html><body>" + "\n".join(links) + "</body></html>")

    def stats(self) -> dict[str, list[int]]:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def requests(self, path: str) -> int:
        return self.stats().get(path, [0, 0])[0]

    def not_modified(self, path: str) -> int:
        return self.stats().get(path, [0, 0])[1]

    def mode(self, name: str) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{self.url}/_mode/{name}", method="POST", data=b""), timeout=10).close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
