"""Files in the data dir that every pypid process on it maps into memory (the change
signal, the failed sign-in table): opened, grown to their size, mapped."""

from __future__ import annotations

import mmap
import os
from pathlib import Path


def map_shared(path: Path, size: int, create: bool = True) -> tuple[mmap.mmap, int]:
    """The file mapped (shared between processes) and its descriptor, which the caller
    keeps for flock. create=False: only a file some daemon made (FileNotFoundError
    otherwise), so that a CLI run by another user never makes one the daemon cannot
    open. A file is grown with zeros, never shrunk, so racing processes agree."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size), fd
    except BaseException:
        os.close(fd)
        raise
