"""--log-format json: twisted.logger's JSON observer, one event a line, for log shippers.

twistd sets up logging itself, from its own options; pypid names an observer factory in
twistd's `--logger` option (which twistd resolves by dotted name), and the factory writes
where twistd would have written: stdout under `-n` without `--logfile`, else the log file
(`twistd.log` by default).
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.logger import ILogObserver, jsonFileLogObserver
from twisted.python.logfile import LogFile

FACTORY = "pypid.logs.json_observer"
# Where to write, from twistd's options: (--logfile, -n); set by pypid's Options.
destination: tuple[str | None, bool] = (None, True)


def json_observer() -> ILogObserver:
    logfile, nodaemon = destination
    out: IO[Any]
    if logfile == "-" or (nodaemon and not logfile):
        out = sys.stdout
    else:
        out = LogFile.fromFullPath(logfile or "twistd.log")
    # No record separator: plain JSON lines, which every shipper reads.
    return jsonFileLogObserver(out, recordSeparator="")
