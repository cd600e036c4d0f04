"""What makes a search resumable: a small state file beside KerasTuner's, and the rules for reruns.

`archsearch run` on a search that was interrupted (Ctrl-C, kill -9, a restart) continues it, provided
the space is the same; a changed space is refused with the differences listed, unless `--fresh`.
A search that ended is not run twice by accident: rerunning it unchanged reports it, `--fresh` repeats it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from search.errors import SearchBusy, StateError, reported_as
from search.spec.schema import Space

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
        path = project / STATE_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def write(self, project: Path) -> None:
        """Atomically, so a kill mid-write never leaves half a file."""
        temporary = project / f".{STATE_FILE}.tmp"
        with reported_as(StateError, f"write the search's state {project / STATE_FILE}"):
            project.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(asdict(self), indent=2))
            os.replace(temporary, project / STATE_FILE)

    def ended(self, status: str) -> SearchState:
        return dataclasses.replace(self, status=status)


@contextmanager
def exclusive(project: Path):
    """Hold the search's lock file for the whole search: two processes on one search would resume each
    other's trials. The operating system releases it when the process dies, even by kill -9."""
    with reported_as(StateError, f"create the search's state folder {project}"):
        project.mkdir(parents=True, exist_ok=True)
        lock = open(project / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole search
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise SearchBusy(f"{project} is being searched by {owner}; wait for it or stop it first") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()}")
        lock.flush()
        yield


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
