"""What a sqlite file behind a tracking URI holds, asked read-only, and whether a tracking server answers.
Imports no mlflow.

MLflow's client, given a sqlite URI, creates or migrates the tables it finds missing, and on a damaged file
raises a raw SQLAlchemy error. So before a client is made: a read-only command needs an MLflow store that is
there and sound (it never creates one, not even over an empty file), and a search needs the file to be
either absent, where a new store is made, or a sound store.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

from search.errors import TrackingError
from search.tracking.locations import masked

ANSWER_WITHIN = 10.0  # seconds a read command gives a tracking server to answer before it says so
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # asks a server never through an http_proxy


def schema_revision(connection: sqlite3.Connection) -> str | None:
    """The alembic revision MLflow recorded in the store (None where there is none: not an MLflow store)."""
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return None
        raise
    return row[0] if row else None


def read_only(db: Path) -> sqlite3.Connection:
    """A connection that cannot change the file (nor create it)."""
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)


def check_store(db: Path) -> str:
    """The schema revision of the MLflow store at `db`; a missing, empty, foreign or damaged file is a
    TrackingError naming it."""
    if not db.exists():
        raise TrackingError(f"no MLflow store at {db} (run a search first, or pass --tracking-uri)")
    if not db.is_file():
        raise TrackingError(f"{db} is not a file; the MLflow store is a sqlite database file")
    try:
        with closing(read_only(db)) as connection:
            revision = schema_revision(connection)
            if revision is not None:  # reads every page once: milliseconds for a store of thousands of runs
                problems = [row[0] for row in connection.execute("PRAGMA quick_check(1)")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(problems[0])
    except sqlite3.OperationalError as error:  # busy or unreadable: not damage, and no reason to move it away
        if "locked" in str(error) or "unable to open" in str(error):
            raise TrackingError(f"cannot read the MLflow store {db}: {error} (another process may hold it, "
                                "or its folder may not be readable); try again") from None
        raise TrackingError(damaged(db, error)) from None
    except sqlite3.DatabaseError as error:
        raise TrackingError(damaged(db, error)) from None
    if revision is None:
        raise TrackingError(damaged(db, "no MLflow tables in it (an empty or foreign sqlite file)"))
    return revision


def damaged(db: Path, reason: object) -> str:
    return (f"cannot read the MLflow store {db}: {reason}; it is damaged or not an MLflow store: restore it "
            "from a backup, or move it away to start a new store")


def check_server(uri: str, within: float = ANSWER_WITHIN) -> None:
    """A TrackingError in one line unless the tracking server at `uri` answers a search of its experiments
    (which reads its database) within `within` s: a read command says so in seconds instead of after
    minutes of MLflow's retries."""
    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search", data=json.dumps({"max_results": 1}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with DIRECT.open(request, timeout=within) as response:
            json.load(response)
    except urllib.error.HTTPError as error:
        raise TrackingError(f"the tracking server at {masked(uri)} answers, but not from its store (HTTP {error.code}): "
                            "is its database up? try again once it is") from None
    except (OSError, ValueError) as error:  # refused, timed out, not an MLflow server
        reason = getattr(error, "reason", error)
        raise TrackingError(f"the tracking server at {masked(uri)} does not answer (no reply in {within:g} s: {reason}); "
                            "start it, or check --tracking-uri") from None
