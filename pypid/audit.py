"""The audit log: one JSON line per change of what the registry holds or who may touch it.

`<data-dir>/audit.log` records uploads, deletions, yanks, settings, token and membership
changes: who, what, when, from where. Appends are serialized by a lock (the daemon writes
from worker threads, the admin CLI from its own process with O_APPEND), never secrets.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.log"


class AuditLog:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / AUDIT_FILE
        self._lock = threading.Lock()

    def record(self, actor: str, source: str, action: str, **details: Any) -> None:
        """Append one event (blocking: call from a worker thread or the CLI)."""
        event = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "actor": actor, "from": source, "action": action, **details,
        }
        line = (json.dumps(event, sort_keys=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid={os.getuid()}"
