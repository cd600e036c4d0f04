"""archsearch from Python: architecture search over CNN design axes, every trial a nested MLflow run.

    import archsearch
    space = archsearch.load_space("spaces/vgg_depth.yaml")
    result = archsearch.run("spaces/vgg_depth.yaml", on_trial=lambda trial, status, metrics: print(trial, status))
    frame = archsearch.trials("vgg_depth")
    table = archsearch.compare("vgg_depth", baseline="config=D").table
    model = archsearch.best_model("vgg_depth")

See the README, "From Python". Errors raise `ArchsearchError` (user errors: `UserError`, one-line message).
"""

from importlib.metadata import PackageNotFoundError, version

from search.api import best_model, compare, ensemble, export_model, load_space, report, run, trials
from search.errors import ArchsearchError, UserError
from search.reporting.tables import render

try:
    __version__ = version("archsearch")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "unknown"

__all__ = [
    "ArchsearchError",
    "UserError",
    "__version__",
    "best_model",
    "compare",
    "ensemble",
    "export_model",
    "load_space",
    "render",
    "report",
    "run",
    "trials",
]
