"""Where runs live: the tracking URI a command uses, the sqlite file behind it, and the MLflow UI's address of
them. Imports no mlflow."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from search.tracking.tags import RUNS_VIEW_KEY

DEFAULT_STORE = Path("mlruns")


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the local sqlite store under ./mlruns."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.IGNORECASE)


def masked(text: str) -> str:
    """`text` with the password of every URI in it shown as ***: what archsearch prints or logs of a store."""
    return _PASSWORD.sub(lambda match: f"{match['scheme']}{match['user']}:***@", text)


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    if uri.startswith("sqlite:////"):  # an absolute path: the URL's path is then "//abs/..."
        return Path("/" + unquote(urlparse(uri).path).lstrip("/"))
    return Path(uri[len("sqlite:///") :])


# MLflow 3.17's UI chooses between its GenAI view (an experiment opens on "Overview": traces, tokens) and its
# model-training view (an experiment opens on the runs table) by the `workflowType` query parameter of the
# page's address, else by the browser's localStorage key "mlflow.workflowType_v1", which only the sidebar's
# "GenAI / Model training" switch sets (default "genai"); it ignores the experiment's tags. So the addresses
# archsearch prints carry the parameter. The experiments list drops it from its links: an experiment
# clicked there opens in the GenAI view until the user has clicked "Model training" once in that browser.
UI_WORKFLOW = "workflowType=machine_learning"
UI_SWITCH_HINT = ('a new browser opens experiments clicked in MLflow\'s list on its GenAI "Overview": '
                  'click "Model training" at the top of the sidebar once to get the runs table there')


def ui_address(base: str, experiment_id: str | None = None, run_id: str | None = None, view: bool = False) -> str:
    """The MLflow UI at `base` (http://host:port): an experiment's runs table (or one of its runs) in the
    model-training view, or without an experiment the experiments list; `view`: the runs table with the
    columns archsearch chose (`RUNS_VIEW_TAG`, which the experiment must hold: a missing one is an error page)."""
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments"
    run = f"/{run_id}" if run_id else ""
    columns = f"&viewStateShareKey={RUNS_VIEW_KEY}" if view and not run_id else ""
    return f"{base}/#/experiments/{experiment_id}/runs{run}?{UI_WORKFLOW}{columns}"
