"""The server that trial processes are forked from (multiprocessing's forkserver).

It imports TensorFlow and this package once, so a trial process starts in milliseconds. Started before
the search process imports TensorFlow itself, the two imports run side by side on two cores. This module
imports neither, so it can be started first.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver

# A trial process first re-runs its parent's main module (multiprocessing's rule for processes that are not
# plain forks): the `archsearch` command, whose imports are light, or a script that calls `run_search`,
# which imports MLflow (over a second). With that already loaded in the server, the re-run costs next to
# nothing. (The CLI itself is left out: it imports only what each command needs.)
# Named, not imported: this module is imported before TensorFlow, and below the layer it preloads.
PRELOAD = ["search.engine.trial_process", "search.orchestration.run"]


def process_context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_trial_server() -> None:
    """Start the server now without waiting for its imports; the first trial waits for them if it must."""
    process_context()
    forkserver.ensure_running()
