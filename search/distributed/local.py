"""`archsearch worker` processes on this machine, started and kept by a chief (`run --workers N`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from search.errors import SearchStopped, StateError, reported_as


class LocalWorkers:
    """`archsearch worker` processes on this machine, kept at N while trials remain."""

    def __init__(self, space_path: Path, chief: str, tracking_uri: str, tuner_dir: Path, count: int, threads: int | None, logs: Path):
        self.command = [sys.executable, "-m", "search.cli", "worker", str(space_path), "--chief", chief,
                        "--tracking-uri", tracking_uri, "--tuner-dir", str(tuner_dir)]
        self.logs = logs
        self.count, self.threads = count, threads
        self.processes: dict[str, subprocess.Popen] = {}
        self.started = 0
        self.replacements_left = 2 * count  # a worker that fails at once, every time, must not be restarted forever

    def start(self) -> None:
        while sum(p.poll() is None for p in self.processes.values()) < self.count:
            self.started += 1
            worker_id = f"worker-{self.started}"
            with reported_as(StateError, f"write the worker's log {self.logs / f'{worker_id}.log'}"):
                log = open(self.logs / f"{worker_id}.log", "w")  # noqa: SIM115 - the child writes it
            threads = ["--threads", str(self.threads)] if self.threads else []
            self.processes[worker_id] = subprocess.Popen([*self.command, "--id", worker_id, *threads], stdout=log, stderr=subprocess.STDOUT)
            log.close()

    def lost(self, search_done: bool) -> list[str]:
        """Workers that exited with an error since the last call; replaced while the search goes on."""
        gone = [worker_id for worker_id, p in self.processes.items() if p.poll() not in (None, 0)]
        for worker_id in gone:
            del self.processes[worker_id]
        if gone and not search_done:
            if self.replacements_left <= 0 and not any(p.poll() is None for p in self.processes.values()):
                raise SearchStopped(f"the local workers keep failing; see their logs in {self.logs}")
            if self.replacements_left > 0:
                self.replacements_left -= len(gone)
                self.start()
        return gone

    def stop(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
