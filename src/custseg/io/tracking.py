"""MLflow tracking: the experiment, a parent run per sweep and a child run per fit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

#: what a logged model needs to load and score; given explicitly because letting MLflow
#: infer it costs seconds per model
MODEL_REQUIREMENTS = tuple(
    f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "scikit-learn", "pandas", "numpy", "cloudpickle")
)

ROLE_TAG = "custseg.role"


def setup_experiment(tracking_uri: str, experiment_name: str, artifact_location: str) -> str:
    """Point MLflow at ``tracking_uri`` and return the id of ``experiment_name``.

    Creates the store and the experiment if needed (once, before any parallel work: two
    processes creating a fresh sqlite store at once fail on its schema migration). A
    relative ``artifact_location`` is taken from the current directory.
    """
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise MlflowException(
                f"experiment {experiment_name!r} is deleted in {tracking_uri}; restore it "
                "(mlflow experiments restore) or choose another tracking.experiment_name"
            )
        return experiment.experiment_id
    location = artifact_location
    if "://" not in location:
        location = Path(location).resolve().as_uri()
    try:
        return client.create_experiment(experiment_name, artifact_location=location)
    except MlflowException:  # created meanwhile by another process
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise
        return experiment.experiment_id


def fail_stale_runs(experiment_id: str, parent_run_id: str | None = None) -> int:
    """Mark RUNNING runs left by a killed process as FAILED; return how many.

    With ``parent_run_id`` only that run and its children are closed.
    """
    client = MlflowClient()
    query = "attributes.status = 'RUNNING'"
    if parent_run_id:
        query += f" and tags.mlflow.parentRunId = '{parent_run_id}'"
    runs = client.search_runs([experiment_id], query, run_view_type=ViewType.ACTIVE_ONLY)
    ids = [r.info.run_id for r in runs]
    if parent_run_id:
        ids.append(parent_run_id)
    for run_id in ids:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
    return len(ids)


@contextmanager
def parent_run(experiment_id: str, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """Start the parent run of a sweep; yields its id.

    Ends FINISHED on success. On any exception (or Ctrl-C) the run and any child still
    open are marked FAILED, so nothing is left RUNNING, and the exception propagates.
    """
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags={ROLE_TAG: "sweep", **tags}
    ) as run:
        try:
            yield run.info.run_id
        except BaseException:
            while (active := mlflow.active_run()) and active.info.run_id != run.info.run_id:
                mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            raise


def flat_params(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": 1}`` with prefix ``"model"`` -> ``{"model.a": 1}``."""
    return {f"{prefix}.{key}": value for key, value in values.items()}


def log_child_run(
    *,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    figures: Mapping[str, Figure],
    pipeline: Pipeline,
    input_example: pd.DataFrame,
    predictions: Any,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log one fit as a nested run of the active parent; returns the child run id.

    The fitted pipeline is logged as the run's model (``name="model"``) with a signature
    inferred from ``input_example`` and ``predictions``; ``input_example`` must hold no
    customer's raw row (pass cluster centroids instead).
    """
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("log_child_run needs an active parent run (use parent_run)")
    with mlflow.start_run(
        experiment_id=parent.info.experiment_id,  # nested runs otherwise go to the default one
        run_name=run_name,
        nested=True,
        tags={ROLE_TAG: "fit", **(tags or {})},
    ) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for artifact_file, figure in figures.items():
            mlflow.log_figure(figure, artifact_file)
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(input_example, predictions),
            input_example=input_example,
            pip_requirements=list(MODEL_REQUIREMENTS),
        )
        return run.info.run_id


def log_sweep_summary(
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    summary: pd.DataFrame,
    picks: Mapping[str, Mapping[str, int | None]],
    figures: Mapping[str, Figure],
    tags: Mapping[str, str],
) -> None:
    """Log the sweep-level results on the active parent run."""
    mlflow.log_params(dict(params))
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.set_tags(dict(tags))
    mlflow.log_table(summary, "sweep_summary.json")
    mlflow.log_text(summary.to_csv(index=False), "sweep_summary.csv")
    mlflow.log_text(json.dumps(picks, indent=2, sort_keys=True), "criteria_picks.json")
    for artifact_file, figure in figures.items():
        mlflow.log_figure(figure, artifact_file)
