"""What a search reports while it runs (`TrialObserver`, called by the engine), and its two displays:
the live terminal display (rich: trial i/N, epoch, latest metrics, best so far) and a worker's log lines."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from search.spec.metrics import best_metric, minimised


class TrialObserver:
    """Receives progress events from the engine; the displays below implement it. Every method is optional."""

    def search_begin(self, planned_trials: int | None, done: int = 0, best: float | None = None) -> None:
        """`done`, `best`: the trials an interrupted search had already finished and their best score, when
        it is continued."""

    def note(self, message: str) -> None:
        """One line on something the user should know (a state file repaired on resume)."""

    def trial_begin(self, trial_id: str, values: dict) -> None: ...

    def epoch_end(self, trial_id: str, replicate: int, epoch: int, logs: dict) -> None: ...

    def trial_end(self, trial_id: str, status: str, metrics: dict, reason: str = "") -> None: ...


class RichProgress(TrialObserver):
    """Two bars (trials, epochs of the running trial) and one printed line per finished trial."""

    def __init__(self, console: Console, objective: str, epochs: int, repeats: int, distributed: bool = False):
        """`distributed`: trials train in workers; show which worker took each trial instead of its epochs."""
        self.console = console
        self.distributed = distributed
        self.objective = objective
        self.maximise = not minimised(objective)
        self.epochs = epochs * repeats
        self.best: float | None = None
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            refresh_per_second=2,  # the clock shows whole seconds; fewer redraws leave the CPU to training
        )
        self.trials_task = self.progress.add_task("trials", total=None, status="")
        self.epochs_task = self.progress.add_task("epochs", total=self.epochs, status="", visible=False)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def search_begin(self, planned_trials: int | None, done: int = 0, best: float | None = None) -> None:
        self.best = best
        status = f"best {self.objective} {best:.4f}" if best is not None else ""
        self.progress.update(self.trials_task, total=planned_trials, completed=done, status=status)

    def note(self, message: str) -> None:
        self.console.print(escape(message), soft_wrap=True)  # whole paths, not broken over lines

    def trial_begin(self, trial_id: str, values: dict) -> None:
        if self.distributed:
            self.console.print(escape(f"trial {trial_id}  started on {values.get('worker', '?')}"))
            return
        self.progress.reset(self.epochs_task, total=self.epochs, visible=True, description=f"trial {trial_id}", status="")

    def epoch_end(self, trial_id: str, replicate: int, epoch: int, logs: dict) -> None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "val_loss", "val_accuracy"))
        self.progress.update(self.epochs_task, advance=1, status=shown)

    def trial_end(self, trial_id: str, status: str, metrics: dict, reason: str = "") -> None:
        score = metrics.get(best_metric(self.objective))
        if score is not None and (self.best is None or (score > self.best) == self.maximise):
            self.best = score
        best = f"{self.best:.4f}" if self.best is not None else "-"
        shown = f"{self.objective} {score:.4f}" if score is not None else ""  # what selects; the test part is for the tables
        seconds = metrics.get("train_seconds")
        timing = f"{seconds:.1f} s" if seconds is not None else ""
        unconverged = "  not converged" if metrics.get("converged") == 0 else ""
        self.console.print(f"trial {trial_id}  {status:<8} {shown}  (best {best})  {timing}{unconverged}" + (f"  {escape(reason)}" if reason else ""))
        self.progress.update(self.trials_task, advance=1, status=f"best {self.objective} {best}")


class LineProgress(TrialObserver):
    """A worker's log: one line per trial it starts and ends (its output goes to a file, not a live display)."""

    def __init__(self, name: str):
        self.name = name

    def note(self, message: str) -> None:
        print(f"{self.name}: {message}", flush=True)

    def trial_begin(self, trial_id: str, values: dict) -> None:
        print(f"{self.name}: trial {trial_id} started", flush=True)

    def trial_end(self, trial_id: str, status: str, metrics: dict, reason: str = "") -> None:
        score = next((f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("best_")), "")
        print(f"{self.name}: trial {trial_id} {status} {score} {reason}".rstrip(), flush=True)
