"""MLflow tracking: the experiment, a parent run per sweep and a child run per fit."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from custseg.core import plots
from custseg.core.clustering import (
    FitResult,
    centroid_example,
    centroids_in_original_units,
    sample_silhouettes,
)

log = logging.getLogger(__name__)

#: how models are serialised: skops loads without unpickling arbitrary code
MODEL_SERIALIZATION = "skops"

#: what a logged model needs to load and score (skops reads the serialised model); given
#: explicitly because letting MLflow infer it costs seconds per model
MODEL_REQUIREMENTS = tuple(
    f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "scikit-learn", "skops", "pandas", "numpy")
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


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (``kill``, CI time-outs, DVC cancelling) into ``SystemExit(143)``.

    Python's default SIGTERM ends the process without unwinding, which would leave MLflow
    runs RUNNING; as an exception it unwinds through the run context managers, which mark
    the runs FAILED. The previous handler is restored afterwards.
    """

    def _raise(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


@dataclass
class ModelBundle:
    """A fitted pipeline with everything MLflow stores beside it.

    ``input_example`` holds one synthetic row per cluster (centroids), never a customer's
    row; ``metadata`` goes to the MLmodel file (e.g. segment names).
    """

    pipeline: Pipeline
    input_example: pd.DataFrame
    signature: ModelSignature
    metadata: dict[str, Any] | None = None

    @classmethod
    def from_fit(
        cls, result: FitResult, table: pd.DataFrame, metadata: dict[str, Any] | None = None
    ) -> ModelBundle:
        example = centroid_example(table, result.labels, result.feature_set)
        signature = infer_signature(example, result.pipeline.predict(example))
        return cls(result.pipeline, example, signature, metadata)

    def log(self, name: str = "model") -> None:
        """Log as the active run's model."""
        mlflow.sklearn.log_model(
            self.pipeline,
            name=name,
            signature=self.signature,
            input_example=self.input_example,
            pip_requirements=list(MODEL_REQUIREMENTS),
            serialization_format=MODEL_SERIALIZATION,
            metadata=self.metadata,
        )

    def save(self, path: str | Path) -> None:
        """Write as an MLflow model directory at ``path`` (which must not exist)."""
        mlflow.sklearn.save_model(
            self.pipeline,
            str(path),
            signature=self.signature,
            input_example=self.input_example,
            pip_requirements=list(MODEL_REQUIREMENTS),
            serialization_format=MODEL_SERIALIZATION,
            metadata=self.metadata,
        )


def fit_figures(result: FitResult, table: pd.DataFrame, random_state: int = 0) -> dict[str, Figure]:
    """The per-fit plots: clusters in original units (numeric features) and silhouettes."""
    fs, labels = result.feature_set, result.labels
    figures = {}
    if fs.numeric:
        centroids = centroids_in_original_units(table, labels, fs.numeric)
        figures["plots/clusters.png"] = plots.cluster_scatter(
            table[fs.numeric], labels, centroids, title=f"{fs.name}, k={result.k}"
        )
    values, sampled_labels = sample_silhouettes(
        result.transformed, labels, random_state=random_state
    )
    figures["plots/silhouette.png"] = plots.silhouette_diagram(
        values, sampled_labels, title=f"Silhouette: {fs.name}, k={result.k}"
    )
    return figures


def log_fit_run(
    result: FitResult,
    table: pd.DataFrame,
    *,
    run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    experiment_id: str | None = None,
    model_metadata: dict[str, Any] | None = None,
    random_state: int = 0,
) -> str:
    """Log one fit (params, metrics, plots, model) as a run; returns its run id.

    Without ``experiment_id`` the run is nested under the active parent run (in the
    parent's experiment). The run ends FINISHED, or FAILED if logging raises.
    """
    nested = experiment_id is None
    if nested:
        parent = mlflow.active_run()
        if parent is None:
            raise RuntimeError("a nested fit run needs an active parent run (use parent_run)")
        experiment_id = parent.info.experiment_id  # nested runs otherwise go to the default one
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, nested=nested, tags=dict(tags)
    ) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items()})
        for artifact_file, figure in fit_figures(result, table, random_state).items():
            mlflow.log_figure(figure, artifact_file)
        ModelBundle.from_fit(result, table, model_metadata).log()
        return run.info.run_id


def log_sweep_summary(
    *,
    config_yaml: str,
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
    mlflow.log_text(config_yaml, "config.yaml")
    for artifact_file, figure in figures.items():
        mlflow.log_figure(figure, artifact_file)
