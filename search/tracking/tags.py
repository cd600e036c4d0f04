"""The tag vocabulary every layer shares: how runs are told apart and linked in the MLflow store.

Plain names only (no mlflow import), so the reporting layer can read runs by the same words the writer
used to tag them.
"""

from __future__ import annotations

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting of a trial run under its search's parent run
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
ROLE_TAG = "archsearch.role"  # "search" on parent runs, "trial" on nested ones
SEARCH_ROLE, TRIAL_ROLE = "search", "trial"
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
FAILURE_TAG = "failure_reason"  # why a run ended FAILED or KILLED
# The experiment's kind: the MLflow UI's "Machine learning" experiments. MLflow 3.17's UI does not choose its
# view by it (see UI_WORKFLOW); earlier 3.x UIs opened the runs table by it, and MLflow's newer UI source
# switches the view to it on opening the experiment. Set on every experiment the Tracker creates or opens.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = {EXPERIMENT_KIND_TAG: "custom_model_development"}
# MLflow 3.17's UI chooses between its GenAI view (an experiment opens on "Overview": traces, tokens) and its
# model-training view (an experiment opens on the runs table) by the `workflowType` query parameter of the
# page's address, else by the browser's localStorage key "mlflow.workflowType_v1", which only the sidebar's
# "GenAI / Model training" switch sets (default "genai"); it ignores the experiment's tags. So the addresses
# archsearch prints carry the parameter. The experiments list drops it from its links: an experiment
# clicked there opens in the GenAI view until the user has clicked "Model training" once in that browser.
UI_WORKFLOW = "workflowType=machine_learning"
UI_SWITCH_HINT = ('a new browser opens experiments clicked in MLflow\'s list on its GenAI "Overview": '
                  'click "Model training" at the top of the sidebar once to get the runs table there')


def ui_address(base: str, experiment_id: str | None = None, run_id: str | None = None) -> str:
    """The MLflow UI at `base` (http://host:port): an experiment's runs table (or one of its runs) in the
    model-training view, or without an experiment the experiments list."""
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments"
    run = f"/{run_id}" if run_id else ""
    return f"{base}/#/experiments/{experiment_id}/runs{run}?{UI_WORKFLOW}"
