"""The tag vocabulary every layer shares: how runs are told apart and linked in the MLflow store.

Plain names only (no mlflow import), so the reporting layer can read runs by the same words the writer
used to tag them.
"""

from __future__ import annotations

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting of a trial run under its search's parent run
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
ROLE_TAG = "archsearch.role"  # "search" on parent runs, "trial" on nested ones
SEARCH_ROLE, TRIAL_ROLE = "search", "trial"
ENSEMBLE_ROLE = "ensemble"  # a top-level run: the averaged predictions of kept trial models (`archsearch ensemble`)
MEMBERS_TAG = "archsearch.members"  # on an ensemble run: its members' run ids, best first
AXES_TAG = "archsearch.axes"  # on trials: every axis of the space, comma-separated
VARYING_TAG = "archsearch.varying"  # on trials: what differs between the search's trials (the default grouping)
WORKER_TAG = "archsearch.worker"  # on trials trained by a distributed worker: its id
CHIEF_TAG = "archsearch.chief"  # host:port of the chief serving the search, on its parent run
SEARCH_KEY_TAG = "archsearch.search_key"  # what workers match their own space and data against
SOURCE_SEARCH_TAG = "archsearch.source_search"  # on transferred runs: the search their cells came from
SOURCE_TRIAL_TAG = "archsearch.source_run"  # on transferred runs: the trial that found their cell
SOURCE_EXPERIMENT_TAG = "archsearch.source_experiment"
MODEL_TAG = "archsearch.model"  # on a trial whose trained model is kept: the artifact folder (`model`)
MODEL_GROUP_TAG = "archsearch.model_group"  # the group it is the best trial of (`save_models: best`), e.g. "residual=True"
MODEL_REPLICATE_TAG = "archsearch.model_replicate"  # which replicate's weights the model holds
MODEL_ARTIFACT = "model"
BEST_RUN_TAG = "archsearch.best_run"  # on a finished search's parent run: its best trial's run id
BEST_NAME_TAG = "archsearch.best_name"  # ... and that trial's name
REFERENCE_TAG = "archsearch.hypervolume_reference"  # on a two-objective search's parent: the point its hypervolume is measured from
FAILURE_TAG = "failure_reason"  # why a run ended FAILED or KILLED
# The experiment's kind: the MLflow UI's "Machine learning" experiments. MLflow 3.17's UI does not choose its
# view by it (see UI_WORKFLOW in locations.py); earlier 3.x UIs opened the runs table by it, and MLflow's
# newer UI source switches the view to it on opening the experiment. Set on every experiment the Tracker
# creates or opens.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = {EXPERIMENT_KIND_TAG: "custom_model_development"}
# A view of the runs table that MLflow 3.17's UI loads from an experiment tag of this prefix when its address
# carries `viewStateShareKey=<key>`: the columns a search's comparison reads (its axes, accuracy, cost), which
# a new browser would otherwise not show (it shows no metric or param column until the user picks them).
RUNS_VIEW_KEY = "archsearch"
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"
