"""What makes a search resumable: a small state file beside KerasTuner's, and the rules for reruns.

`archsearch run` on a search that was interrupted (Ctrl-C, kill -9, a restart) continues it, provided
the space is the same; a changed space is refused with the differences listed, unless `--fresh`.
A search that ended is not run twice by accident: rerunning it unchanged reports it, `--fresh` repeats it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from search.errors import SearchBusy, StateError, reported_as
from search.files import last_good_copy, write_atomic
from search.spec.schema import Space
from search.tracking.locations import sqlite_path

STATE_FILE = "archsearch.json"
LOCK_FILE = ".lock"
# A search that was interrupted, or stopped by an error (too many failed trials, a store that went away),
# continues when run again; one that finished is reported instead.
RESUMABLE = ("running", "failed")


@dataclass(frozen=True)
class SearchState:
    space: dict  # the resolved space (every default filled in), as JSON
    tracking_uri: str
    experiment_id: str
    parent_id: str
    status: str  # "running" until the search ends, then "finished" or "failed"
    data_hash: str = ""  # the data split's fingerprint: resuming on other data would mix two questions

    @classmethod
    def read(cls, project: Path) -> SearchState | None:
        """The recorded state (None for a new search). A damaged file is replaced by its last good copy,
        which the atomic writer keeps; with neither readable the search cannot be continued."""
        path = project / STATE_FILE
        if not path.exists():
            return None
        state = cls._parsed(path)
        if state is None:
            state = cls._parsed(last_good_copy(path))
            if state is None:
                raise StateError(f"{path} is damaged and has no good copy; run with --fresh to start the search over")
            state.write(project, keep_previous=False)  # the damaged file is no copy worth keeping
        return state

    @classmethod
    def readable(cls, project: Path) -> SearchState | None:
        """What `read` gives, or None where the state cannot be read: what `--fresh` abandons, if anything."""
        path = project / STATE_FILE
        return cls._parsed(path) or cls._parsed(last_good_copy(path))

    @classmethod
    def _parsed(cls, path: Path) -> SearchState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, project: Path, keep_previous: bool = True) -> None:
        """Atomically, so a kill mid-write never leaves half a file; the file replaced is the last good copy."""
        with reported_as(StateError, f"write the search's state {project / STATE_FILE}"):
            project.mkdir(parents=True, exist_ok=True)
            write_atomic(project / STATE_FILE, json.dumps(asdict(self), indent=2), keep_previous=keep_previous)

    def ended(self, status: str) -> SearchState:
        return dataclasses.replace(self, status=status)


@contextmanager
def exclusive(project: Path):
    """Hold the search folder's lock for the whole search: two processes on one folder would resume each
    other's trials. The operating system releases it when the process dies, even by kill -9."""
    with reported_as(StateError, f"create the search's state folder {project}"):
        project.mkdir(parents=True, exist_ok=True)
    with _held(project / LOCK_FILE, f"process {os.getpid()}") as owner:
        if owner is not None:
            raise SearchBusy(f"{project} is being searched by {owner}; wait for it or stop it first")
        yield


@contextmanager
def exclusive_search(key: str, tracking_uri: str, project: Path):
    """Hold the lock of the search itself (its space, data and store), wherever its tuner folder is: the same
    search under two `--tuner-dir`s would otherwise run twice into one experiment. The lock lives in a
    per-user folder of this machine (`$XDG_RUNTIME_DIR`, else the temporary folder)."""
    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"archsearch-{os.getuid()}"
    store = sqlite_path(tracking_uri)  # the same store however its path is written
    name = hashlib.sha256(f"{key}\n{store.resolve() if store else tracking_uri}".encode()).hexdigest()[:32] + ".lock"
    with reported_as(StateError, f"create the lock folder {folder}"):
        folder.mkdir(mode=0o700, exist_ok=True)
        mode = folder.lstat()
    if not stat.S_ISDIR(mode.st_mode) or mode.st_uid != os.getuid() or mode.st_mode & 0o077:
        raise StateError(f"the lock folder {folder} is not a private folder of this user (a link, another owner, "
                         "or open to others); remove it, or set XDG_RUNTIME_DIR to a private folder")
    with _held(folder / name, f"process {os.getpid()} in {project.resolve()}") as owner:
        if owner is not None:
            raise SearchBusy(f"this search (same space, data and tracking URI) is being run by {owner}; wait for it or stop it first")
        yield


@contextmanager
def _held(path: Path, me: str):
    """Try to lock `path`; yields None when this process holds it (the file then names `me`), else
    what the file says of the holder."""
    with reported_as(StateError, f"open the lock file {path}"):  # never through a link someone else put there
        lock = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600), "r+")
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            yield lock.read(1000).strip() or "another process"
            return
        lock.seek(0)
        lock.truncate()
        lock.write(me)
        lock.flush()
        yield None


def differences(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Key paths whose values differ, as 'key: old -> new' lines."""
    changes = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}.{key}" if prefix else str(key)
        old, new = before.get(key, "(absent)"), after.get(key, "(absent)")
        if isinstance(old, dict) and isinstance(new, dict):
            changes += differences(old, new, path)
        elif old != new:
            changes.append(f"{path}: {json.dumps(old)} -> {json.dumps(new)}")
    return changes


def with_current_defaults(recorded: dict) -> dict:
    """A space recorded by an earlier version, with the defaults of fields added since: a new setting at its
    default does not change what ran, so it must not turn a finished search into a new one."""
    try:
        return Space.model_validate(recorded).model_dump(mode="json")
    except ValidationError:  # a field since removed or narrowed: compare as recorded
        return recorded
