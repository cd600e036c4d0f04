"""Commands that read results back: compare, report, ui."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from search.cli.app import (
    SUFFIX_FORMATS,
    ChooseOpt,
    ColsOpt,
    ExperimentsArg,
    MetricOpt,
    RowsOpt,
    TrackingOpt,
    WhereOpt,
    app,
    names,
)

BaselineOpt = Annotated[
    Optional[str],
    typer.Option(
        help="The group every other is compared with, written as key=value pairs over the grouping keys "
        "(e.g. depth=20,residual=True); exactly one group must match. Default: the group with the best mean.",
        show_default=False,
    ),
]


TopOpt = Annotated[Optional[int], typer.Option(help="Keep the K best groups (and the baseline).", min=1, show_default=False)]
AllSearchesOpt = Annotated[
    bool,
    typer.Option("--all-searches", help="Pool every search of a space and seed, not only the latest (a --fresh repeat or an edited space replaces the earlier search by default)."),
]


@app.command("compare")
def compare_command(
    experiments: ExperimentsArg,
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    top: TopOpt = None,
    baseline: BaselineOpt = None,
    choose: ChooseOpt = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", help="markdown, latex, csv, html or json (default: from --out's suffix, else markdown).", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Write to this new file instead of stdout (its folder must exist).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it already exists.")] = False,
    all_searches: AllSearchesOpt = False,
    tracking_uri: TrackingOpt = None,
):
    """Compare trials grouped by axis values: n replicates (every replicate of the finished trials), mean ± std
    of the test part's accuracy (where there is one), 95% interval, converged replicates, failed trials,
    costs; each group against the baseline: difference, interval, paired or Welch p (Holm-corrected),
    verdict (noting a replicate not converged) and the replicates that would resolve it. Bold only on a
    baseline resolved better than all."""
    from search.api import compare
    from search.errors import UserError
    from search.reporting.destinations import check_table_file, write_table_file
    from search.reporting.tables import FORMATS, render

    fmt = fmt or SUFFIX_FORMATS.get(out.suffix if out else "", "markdown")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if out:
        check_table_file(out, force=force)  # before the store is read: a refused file costs nothing
    comparison = compare(
        experiments, rows=names(rows) or None, cols=names(cols), metric=metric, where=where, top=top,
        all_searches=all_searches, baseline=baseline, choose=names(choose) or None, tracking_uri=tracking_uri,
    )
    text = render(comparison, fmt, names(cols) or None)
    if out:
        write_table_file(out, text, force=force)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command()
def report(
    experiments: ExperimentsArg,
    out: Annotated[Path, typer.Option(help="Folder to write the report into (made if missing).")] = Path("report"),
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    top: TopOpt = None,
    baseline: BaselineOpt = None,
    choose: ChooseOpt = None,
    all_searches: AllSearchesOpt = False,
    log: Annotated[bool, typer.Option(help="Also log the report to the latest search's parent run in MLflow.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Write over a report already in the --out folder.")] = False,
    tracking_uri: TrackingOpt = None,
):
    """Write tables (every format), figures (PNG + SVG) and index.md / index.html for a report."""
    from search.api import report as write_report

    written = write_report(
        experiments, out, rows=names(rows) or None, cols=names(cols) or None, metric=metric, where=where, top=top, baseline=baseline,
        choose=names(choose) or None, all_searches=all_searches, log_to_mlflow=log, force=force, tracking_uri=tracking_uri,
    )
    typer.echo(f"wrote {len(written)} files to {out}/ (open {out / 'index.html'})")


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the UI on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 5000,
):
    """Start the MLflow UI on the project's store (./mlruns by default); once it answers, print the address of
    the latest search's runs table. Ctrl-C stops it."""
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

    from search.errors import UserError
    from search.tracking.locations import resolve_tracking_uri
    from search.tracking.tags import ROLE_TAG, SEARCH_ROLE, UI_SWITCH_HINT, ui_address

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise UserError(f"{uri} is already a tracking server: open it in a browser")
    shown = f"[{host}]" if ":" in host else host
    reached = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, shown)  # where this machine asks it
    # A server already on the port would answer in place of the one started here: refuse before starting.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} is in use on {host} (another MLflow UI?): pick another with --port") from None

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy

    def ask(endpoint: str, body: dict) -> dict | None:
        request = urllib.request.Request(f"http://{reached}:{port}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with direct.open(request, timeout=3) as response:
                return json.load(response)
        except (OSError, ValueError):  # refused, not ready yet (an HTTPError is an OSError), or not JSON
            return None

    # One worker: MLflow's default of four takes seconds longer to start and serves one person no faster. No
    # GenAI job runners either (seven more processes beside the server), which runs never use.
    env = {**os.environ}
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    server: subprocess.Popen | None = None
    stopping: list[int] = []

    def forward(signum, frame) -> None:
        """Ctrl-C, kill and a closed terminal stop the server's whole process group (MLflow's CLI and uvicorn)."""
        stopping.append(signum)
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)

    def group_alive() -> bool:
        server.poll()  # reap the leader once it exits
        try:
            os.killpg(server.pid, 0)
            return True
        except ProcessLookupError:
            return False

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        # In its own process group: a signal forwarded to the group reaches every process of the server.
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                  process_group=0, text=True, errors="replace")
        if stopping:  # a signal that came while it was being started
            forward(stopping[-1], None)
        said: collections.deque[str] = collections.deque(maxlen=200)
        answered = threading.Event()  # MLflow's start-up chatter is held back; what it says once it answers is shown

        def relay() -> None:
            for line in server.stdout:
                said.append(line.rstrip())
                if answered.is_set():
                    sys.stderr.write(line)
                    sys.stderr.flush()

        threading.Thread(target=relay, daemon=True).start()

        def last_error() -> str:
            """The exception a traceback ended on, else the last line logged as an ERROR, else the last line."""
            lines = [line.strip() for line in said if line.strip()]
            raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit)\b[^:\s]*: ", line)]
            logged = [line for line in lines if re.search(r"\bERROR\b", line)]
            return (raised or logged or lines or ["it said nothing"])[-1]

        started, noted, found = time.monotonic(), False, None
        while found is None and not stopping:
            if server.poll() is not None:
                time.sleep(0.3)  # the rest of what it said
                raise UserError(f"the MLflow UI exited (status {server.returncode}) before it answered: {last_error()}")
            found = ask("experiments/search", {"max_results": 1000})
            if found is None:
                if not noted and time.monotonic() - started > 60:
                    noted = True
                    typer.echo("the MLflow UI has not answered for 60 s; still waiting (Ctrl-C to stop)", err=True)
                time.sleep(0.25)
        if not stopping:
            names = {e["experiment_id"]: e["name"] for e in found.get("experiments", [])}
            latest = names and ask("runs/search", {"experiment_ids": list(names), "filter": f"tags.`{ROLE_TAG}` = '{SEARCH_ROLE}'",
                                                   "order_by": ["attributes.start_time DESC"], "max_results": 1})
            runs = (latest or {}).get("runs") or []
            experiment_id = runs[0]["info"]["experiment_id"] if runs else None
            which = f"the runs of {names.get(experiment_id, experiment_id)!r}, the latest search; " if runs else ""
            typer.echo(f"MLflow UI for {uri} at {ui_address(f'http://{shown}:{port}', experiment_id)}  ({which}Ctrl-C to stop)")
            typer.echo(UI_SWITCH_HINT)
            sys.stdout.flush()
            answered.set()
        while server.poll() is None and not stopping:
            try:
                server.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if not stopping:
            raise UserError(f"the MLflow UI stopped (status {server.returncode}): {last_error()}")
    finally:
        if server is not None:  # whatever ends the command, no process of the server outlives it
            with contextlib.suppress(ProcessLookupError):
                if not stopping and server.poll() is None:
                    os.killpg(server.pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while group_alive() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if group_alive():
                    os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    typer.echo("stopped the MLflow UI", err=True)
