"""Where `compare --out` and `report --out` may write, checked before anything is read or written.

A typo in `--out` must not replace a table or report the user meant to keep, and a path that cannot take
the output (a folder where a file goes, a file where a folder goes, a missing folder) is one line, not a
traceback after the store was read.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from search.errors import OutputError
from search.files import write_atomic
from search.reporting.pages import INDEX_FILES, TABLE_FILES

REPORT_FILES = (*INDEX_FILES, *TABLE_FILES.values())  # a folder holding any of these holds a report
UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def check_table_file(out: Path, *, force: bool) -> None:
    """`out` can become the table: a new file in an existing folder, or (with `force`) a file it replaces."""
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder: give a file name, e.g. {out / 'comparison.md'}")
    if not out.parent.exists():
        raise OutputError(f"--out {out}: the folder {out.parent} does not exist")
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: {out.parent} is not a folder")
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputError(f"--out {out} already exists: pass --force to replace it")
        if not out.is_file():
            raise OutputError(f"--out {out} is not a regular file, so it cannot be replaced")


def write_table_file(out: Path, text: str, *, force: bool) -> None:
    """The table at `out`, written whole or not at all."""
    check_table_file(out, force=force)
    with writing(out):
        write_atomic(out, text)


def check_report_folder(out: Path, *, force: bool) -> None:
    """`out` can hold the report: a new folder (its missing parents are made), an existing folder without
    a report, or (with `force`) one whose report it replaces."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file: a report is a folder of files, give a folder name")
    if not out.exists():
        existing = next(folder for folder in out.parents if folder.exists())
        if not existing.is_dir():
            raise OutputError(f"--out {out}: cannot make the folder, {existing} is not a folder")
    present = [name for name in REPORT_FILES if (out / name).exists()] if out.is_dir() else []
    if present and not force:
        more = f" and {len(present) - 1} more" if len(present) > 1 else ""
        raise OutputError(f"--out {out} already holds a report ({present[0]}{more}): pass --force to replace it")


def make_report_folder(out: Path) -> None:
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """A write refused by the system (no permission, read-only or full disk) becomes one line naming
    `path`; any other OSError is not understood here and keeps its traceback."""
    try:
        yield
    except OSError as error:
        if error.errno not in UNWRITABLE:
            raise
        raise OutputError(f"cannot write {path}: {error.strerror}") from None
