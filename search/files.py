"""Reading and writing files the way a resume needs them: whole or not at all, and never unbounded.

`write_atomic` writes a temporary file beside the target, syncs it to disk and renames it over the target,
so a kill -9 or a full disk at any moment leaves either the old file or the new one, never a cut one.
`read_limited` reads only regular files (not FIFOs, devices or symlink loops) and only up to a limit, so
a space file that points at /dev/zero or a pipe is refused instead of read forever.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PREVIOUS_SUFFIX = ".last"  # the copy `write_atomic(keep_previous=True)` keeps of the file it replaces


def last_good_copy(path: Path | str) -> Path:
    """Where `write_atomic(keep_previous=True)` keeps the file it replaced: what a damaged file is rebuilt from."""
    path = Path(path)
    return path.with_name(path.name + PREVIOUS_SUFFIX)


def write_atomic(path: Path | str, data: str | bytes, *, keep_previous: bool = False) -> None:
    """Write `data` to `path` in one step: temporary file, fsync, rename, fsync of the folder.

    `keep_previous` keeps the replaced file as `<path>.last` (a hard link, so it costs no copy): the last
    good copy a damaged file can be rebuilt from. On error the temporary file is removed and the target is
    untouched; the OSError propagates for the caller to report."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(descriptor, payload)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if keep_previous and path.is_file():
            previous = last_good_copy(path)
            link = path.with_name(f".{previous.name}.tmp")
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, previous)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _write_all(descriptor: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _sync_folder(folder: Path) -> None:
    """The rename itself reaches the disk only when the folder is synced."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class NotRegularFile(OSError):
    """The path exists but is not a regular file (a folder, FIFO, device, socket), or is a symlink loop."""


class TooLarge(OSError):
    """The file holds more than the reader's limit."""


def read_limited(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file at `path`, refusing anything else and anything over `limit` bytes.

    The file is opened without blocking (a FIFO would otherwise wait for a writer forever) and checked
    with fstat on the open descriptor, so what is checked is what is read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotRegularFile(error.errno, "a symlink loop") from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise NotRegularFile(0, f"{kind}, not a regular file")
        chunks, size = [], 0
        while chunk := os.read(descriptor, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise TooLarge(0, f"more than {limit:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(descriptor)
