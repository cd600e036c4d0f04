"""Where runs live: the tracking URI a command uses, and the sqlite file behind it. Imports no mlflow."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_STORE = Path("mlruns")


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the local sqlite store under ./mlruns."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    if uri.startswith("sqlite:////"):  # an absolute path: the URL's path is then "//abs/..."
        return Path("/" + unquote(urlparse(uri).path).lstrip("/"))
    return Path(uri[len("sqlite:///") :])
