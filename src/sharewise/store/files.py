"""Private files written whole: keys and other secrets that readers may look for while they are created."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _synced_temp(path: Path, data: bytes) -> Path:
    """The data in a new temporary file beside path (mode 600 from the moment it exists), synced to disk."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_exclusive(path: Path, data: bytes) -> bool:
    """Write a file (mode 600) complete or not at all; False if it already exists.

    The data goes to a temporary file beside it first, synced, then is linked to its name: a reader
    never sees a half-written file, two writers never both win, and a crash leaves at most a stray
    temporary file, never an empty key under the real name.
    """
    temp = _synced_temp(path, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write a file (mode 600) whole or not at all, replacing any file of that name.

    The data goes to a temporary file beside it (mode 600 from the moment it exists), synced, then
    is renamed over the name. On any failure the temporary file is removed and the OSError raised:
    nothing is left behind, least of all a readable copy of the data.
    """
    temp = _synced_temp(path, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
