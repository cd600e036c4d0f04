"""Every error archsearch raises on purpose, in one tree.

An `ArchsearchError` is an outcome the user can act on: the CLI prints its message on one line (no
traceback) and exits with its `exit_code`. `UserError`s are bad input or a refused request (exit 2);
`SearchStopped` is a search the oracle gave up on (exit 1). Any other exception is a bug: the CLI lets
it show its traceback. The CLI catches nothing else; library code turns a specific failure it understands
(an unwritable folder, a download that failed) into one of these where it happens, never a whole class
such as OSError or RuntimeError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ArchsearchError(Exception):
    """Base of the tree; `exit_code` is the status the command exits with, `where` what the message is
    about when the raiser did not know (the space file of a search, say), added on the way up by `at`."""

    exit_code = 1
    where: str | None = None

    def at(self, where: object) -> ArchsearchError:
        """The same error, said of `where` (unless it already names a place)."""
        if self.where is None:
            self.where = str(where)
        return self

    def message(self) -> str:
        return f"{self.where}: {self}" if self.where else str(self)


class UserError(ArchsearchError):
    """Bad input, missing data or store, a refused resume: one line, exit 2, nothing half-written."""

    exit_code = 2


@contextmanager
def reported_as(error_class: type[UserError], action: str) -> Iterator[None]:
    """An OSError inside (a folder that cannot be made, a full disk) becomes `error_class` saying
    "cannot <action>: <reason>", so the user sees which file, not a traceback."""
    try:
        yield
    except OSError as error:
        raise error_class(f"cannot {action}: {error.strerror or error}") from None


class SpaceError(UserError):
    """Everything wrong with one space (or study) file, as one message naming the file, line and key."""

    def __init__(self, path: Path | str, problems: list, total: int | None = None):
        """`total`: how many problems there are, when only the first of them are listed."""
        self.path = Path(path)
        self.problems = problems
        self.total = len(problems) if total is None else total
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.total == 1:
            return f"{self.path}: {self.problems[0]}"
        lines = [f"{self.path}: {self.total:,} problems"]
        lines += [f"  - {problem}" for problem in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  - and {self.total - len(self.problems):,} more")
        return "\n".join(lines)


class GenotypeError(UserError, ValueError):
    """A genotype string that does not describe a valid pair of cells; the message says where.
    A ValueError too, so that the space-file schema reports it at its key."""


class DataError(UserError):
    """The data named in a space file cannot be loaded; the message says why and what to do."""


class TrackingError(UserError):
    """What was asked of the MLflow store is not in it (no store, an unknown experiment, no trials), or
    the store cannot be read."""


class TrackingUnreachable(TrackingError):
    """The tracking server did not answer for longer than the command waits (`--tracking-timeout`); the
    search's state is kept, so running the command again continues it."""


class TableError(UserError):
    """A comparison request that cannot be met (unknown axis or metric, bad filter)."""


class OutputError(UserError):
    """Where a table or report was asked to go cannot take it, or holds something it would replace."""


class TransferError(UserError):
    """The source search or the target space cannot be used for a transfer; the message says why."""


class SearchBusy(UserError):
    """Another process is running this search right now."""


class SearchChanged(UserError):
    """An interrupted search would continue under a different space or store."""

    def __init__(self, project: Path, changes: list[str]):
        self.project, self.changes = project, changes
        listed = "\n".join(f"  - {change}" for change in changes)
        super().__init__(
            f"the interrupted search in {project} was started with a different space or store:\n{listed}\n"
            "Run it with the original file to continue it, or pass --fresh to start over "
            "(the interrupted runs stay in MLflow, marked KILLED)."
        )


class StateError(UserError):
    """The search's state (the tuner directory: lock, state file, prepared data, worker logs) cannot be
    created or written."""


class WorkerError(UserError):
    """A worker cannot join a search, or a chief cannot serve one (address taken, no matching search)."""


class SearchStopped(ArchsearchError):
    """The search gave up before its end (too many failed trials in a row, local workers that keep
    failing); the parent run is FAILED with the whole reason, and running the command again continues it."""

    def message(self) -> str:
        return f"search stopped: {str(self).splitlines()[0]}"


class ChiefLost(ArchsearchError):
    """A worker lost its chief (gone, or unreachable for longer than the worker waits)."""


class Interrupted(ArchsearchError):
    """Ctrl-C: whatever ran was marked KILLED; the message says how to continue."""

    exit_code = 130


class ResourceError(UserError):
    """The search would need more of the machine than it has (memory for the data set or the largest
    candidate); the message names the key to change, the estimate and what is available."""


class WeightsError(UserError):
    """Pretrained weights the space asks for and this machine lacks, or that do not fit its data."""
