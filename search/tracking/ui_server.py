"""The MLflow UI or tracking server on a store, served for as long as archsearch runs: `mlflow ui` or `mlflow
server` in a process group of its own, announced only once it answers, stopped whole with archsearch. Imports
no mlflow: it runs it as a command.

Its address is given once the server answers over HTTP, not once the process starts, so a printed address
always opens; and every signal that stops archsearch stops every process of the server (MLflow's CLI and
uvicorn), so none outlives it. The store's URI reaches MLflow in its environment, not on its command line,
so a database password in it is not shown by `ps`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from search.errors import UserError
from search.tracking.locations import masked, ui_address
from search.tracking.store import DIRECT
from search.tracking.tags import ROLE_TAG, RUNS_VIEW_TAG, SEARCH_ROLE

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill and a closed terminal


def serve_ui(uri: str, host: str, port: int, on_ready: Callable[[str, str | None], None], on_note: Callable[[str], None]) -> None:
    """Serve the UI on `uri` at host:port until a stop signal ends it (then return); raise `UserError` if the
    port is taken or the server exits on its own. `on_ready(address, experiment)` once it answers: the latest
    search's runs table (and its experiment's name), else the experiments list (and None). `on_note(line)`:
    a line for the user's stderr, a wait of over 60 s or what MLflow says once it answered."""

    def ready(api: str, base: str, found: dict) -> None:
        experiment_id, name, view = latest_search(api, found)
        on_ready(ui_address(base, experiment_id, view=view), name)

    _serve("ui", uri, host, port, [], ready, on_note)


def serve_tracking(uri: str, artifacts: Path, host: str, port: int, on_ready: Callable[[str], None], on_note: Callable[[str], None]) -> None:
    """Serve a tracking server (and its UI) on the store `uri`, artifacts under `artifacts`, at host:port, as
    `serve_ui` serves the UI; `on_ready(base)` once it answers, with its address http://host:port."""
    _serve("server", uri, host, port, ["--artifacts-destination", str(artifacts.resolve())],
           lambda api, base, found: on_ready(base), on_note)


def _serve(kind: str, uri: str, host: str, port: int, options: list[str], on_ready: Callable[[str, str, dict], None],
           on_note: Callable[[str], None]) -> None:
    check_port_free(host, port)
    shown = f"[{host}]" if ":" in host else host
    reached = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, shown)  # where this machine asks it
    api = f"http://{reached}:{port}/api/2.0/mlflow"
    what = "the MLflow UI" if kind == "ui" else "the MLflow tracking server"
    stop = _Stop()
    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        stop.server = server = start_server(kind, uri, host, port, options)
        if stop.signals:  # a signal that came while it was being started
            stop(stop.signals[-1], None)
        output = _Output(server, on_note)
        found = wait_until_answering(server, api, stop, output, on_note, what)
        if found is not None and not stop.signals:
            on_ready(api, f"http://{shown}:{port}", found)
            output.answered.set()
        while server.poll() is None and not stop.signals:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.5)
        if not stop.signals:
            raise UserError(f"{what} stopped (status {server.returncode}): {masked(output.last_error())}")
    finally:
        if stop.server is not None:  # whatever ends the call, no process of the server outlives it
            stop_group(stop.server, signalled=bool(stop.signals))
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def check_port_free(host: str, port: int) -> None:
    """A server already on the port would answer in place of the one started here: refuse before starting."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} is in use on {host} (another MLflow UI?): pick another with --port") from None


def start_server(kind: str, uri: str, host: str, port: int, options: list[str]) -> subprocess.Popen:
    """`mlflow ui` or `mlflow server` in its own process group, so a signal sent to the group reaches every
    process of it; its output (stderr too) comes back on a pipe; the store's URI in its environment. One
    worker: MLflow's default of four takes seconds longer to start and serves a team's few clients no faster.
    No GenAI job runners either (seven more processes beside the server), which runs never use."""
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": uri}
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    env.setdefault("MLFLOW_WORKERS", "1")
    command = [sys.executable, "-m", "mlflow", kind, *options, "--host", host, "--port", str(port)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            process_group=0, text=True, errors="replace")


def wait_until_answering(server: subprocess.Popen, api: str, stop: _Stop, output: _Output, on_note: Callable[[str], None],
                         what: str = "the MLflow UI") -> dict | None:
    """The server's list of experiments, asked until it answers; None if a stop signal came first. A server
    that exits before answering is a `UserError` saying why, in MLflow's words."""
    started, noted = time.monotonic(), False
    while not stop.signals:
        if server.poll() is not None:
            time.sleep(0.3)  # the rest of what it said
            raise UserError(f"{what} exited (status {server.returncode}) before it answered: {masked(output.last_error())}")
        found = ask(api, "experiments/search", {"max_results": 1000})
        if found is not None:
            return found
        if not noted and time.monotonic() - started > 60:
            noted = True
            on_note(f"{what} has not answered for 60 s; still waiting (Ctrl-C to stop)")
        time.sleep(0.25)
    return None


def latest_search(api: str, experiments: dict) -> tuple[str | None, str | None, bool]:
    """The experiment id and name of the search parent run started last, among `experiments` (the server's
    answer to experiments/search), and whether it holds archsearch's view of the runs table; (None, None,
    False) where there is none."""
    names = {e["experiment_id"]: e["name"] for e in experiments.get("experiments", [])}
    viewed = {e["experiment_id"] for e in experiments.get("experiments", []) if any(t["key"] == RUNS_VIEW_TAG for t in e.get("tags", []))}
    latest = names and ask(api, "runs/search", {"experiment_ids": list(names), "filter": f"tags.`{ROLE_TAG}` = '{SEARCH_ROLE}'",
                                                "order_by": ["attributes.start_time DESC"], "max_results": 1})
    runs = (latest or {}).get("runs") or []
    if not runs:
        return None, None, False
    experiment_id = runs[0]["info"]["experiment_id"]
    return experiment_id, names.get(experiment_id, experiment_id), experiment_id in viewed


def ask(api: str, endpoint: str, body: dict) -> dict | None:
    """One call of MLflow's REST API, directly (no proxy); None while it does not answer with JSON."""
    request = urllib.request.Request(f"{api}/{endpoint}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with DIRECT.open(request, timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):  # refused, not ready yet (an HTTPError is an OSError), or not JSON
        return None


def stop_group(server: subprocess.Popen, signalled: bool) -> None:
    """Stop the server's whole group (SIGTERM, unless a forwarded signal already went), wait up to 10 s for
    every process of it to go, then SIGKILL what is left, and reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        if not signalled and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _group_alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(server):
            os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def _group_alive(server: subprocess.Popen) -> bool:
    """Whether any process of the server's group is left (its leader's children outlive it)."""
    server.poll()  # reap the leader once it exits
    try:
        os.killpg(server.pid, 0)
        return True
    except ProcessLookupError:
        return False


class _Stop:
    """The signal handler: records each stop signal and forwards it to the server's group as SIGTERM (which
    uvicorn ends on quietly; a SIGINT would print a KeyboardInterrupt traceback); one that comes before the
    server exists is forwarded once it does."""

    def __init__(self) -> None:
        self.server: subprocess.Popen | None = None
        self.signals: list[int] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.signals.append(signum)
        if self.server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGTERM)


class _Output:
    """What the server says, read on a thread: its start-up chatter is held back (kept for an error message);
    what it says once `answered` is set goes to `on_note`."""

    def __init__(self, server: subprocess.Popen, on_note: Callable[[str], None]) -> None:
        self.said: collections.deque[str] = collections.deque(maxlen=200)
        self.answered = threading.Event()
        self._on_note = on_note
        threading.Thread(target=self._relay, args=(server.stdout,), daemon=True).start()

    def _relay(self, stream) -> None:
        for line in stream:
            self.said.append(line.rstrip())
            if self.answered.is_set():
                self._on_note(masked(line.rstrip("\n")))

    def last_error(self) -> str:
        """The exception a traceback ended on, else the last line logged as an ERROR, else the last line."""
        lines = [line.strip() for line in self.said if line.strip()]
        raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit)\b[^:\s]*: ", line)]
        logged = [line for line in lines if re.search(r"\bERROR\b", line)]
        return (raised or logged or lines or ["it said nothing"])[-1]
