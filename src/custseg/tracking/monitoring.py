"""Monitoring runs in MLflow: one run per monitored batch, in the experiment
``<tracking.experiment_name>-monitoring``, with stable metric names so that the UI charts
a series of batches, and the model version tagged with its latest verdict.

Logging never fails a scoring job: :func:`log_monitoring` returns what went wrong as a
note, and the JSON on disk stays the record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from custseg.config import TrackingConfig
from custseg.domain.monitoring.rules import VERDICTS
from custseg.tracking.runs import FINGERPRINT_TAG, process_tags, setup_experiment

log = logging.getLogger(__name__)

#: the suffix of the monitoring experiment's name
EXPERIMENT_SUFFIX = "-monitoring"
#: the version tag with the latest verdict, and the batch it was given for
VERDICT_TAG = "custseg.monitor.verdict"
VERDICT_BATCH_TAG = "custseg.monitor.batch"


def monitoring_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """A report's numbers under stable names: ``drift.<column>.<statistic>``,
    ``psi.<column>``, ``segment.<id>.share``, ``.share_delta``, ``.beyond_p95``,
    ``customers`` and ``verdict_level`` (0 stable, 1 watch, 2 resegment)."""
    metrics: dict[str, float] = {"customers": float(report["customers"])}
    if report["verdict"] in VERDICTS:
        metrics["verdict_level"] = float(VERDICTS.index(report["verdict"]))
    for column, result in report["columns"].items():
        if result["status"] != "compared":
            continue
        metrics[f"drift.{column}.{result['effect']}"] = result["distance"]
        if "p_value" in result:
            metrics[f"drift.{column}.p_value"] = result["p_value"]
        metrics[f"psi.{column}"] = result["psi"]
    for segment, entry in report["segments"].items():
        for key in ("share", "share_delta", "beyond_p95"):
            if entry[key] is not None:
                metrics[f"segment.{segment}.{key}"] = entry[key]
    return {k: float(v) for k, v in metrics.items() if v is not None}


def log_monitoring(
    report: Mapping[str, Any],
    files: Sequence[Path],
    tracking: TrackingConfig,
    version: ModelVersion | None,
) -> list[str]:
    """Log ``report`` as a run of the monitoring experiment (its ``files`` as artifacts)
    and tag ``version`` with the verdict. Returns notes for the user: empty when all was
    logged, else what was not and why (nothing raises)."""
    name = tracking.experiment_name + EXPERIMENT_SUFFIX
    try:
        experiment_id = setup_experiment(tracking.tracking_uri, name, tracking.artifact_location)
        run_id = _log_run(report, files, experiment_id)
    except Exception as exc:  # a store down, a permission: the JSON is still written
        log.debug("monitoring run not logged", exc_info=True)
        return [f"the monitoring run was not logged to {tracking.tracking_uri}: {_short(exc)}"]
    notes = []
    if version is not None:
        try:
            client = MlflowClient()
            client.set_model_version_tag(
                version.name, version.version, VERDICT_TAG, report["verdict"]
            )
            client.set_model_version_tag(
                version.name, version.version, VERDICT_BATCH_TAG, report["batch"]["file"]
            )
        except Exception as exc:
            notes.append(
                f"version {version.version} was not tagged with the verdict: {_short(exc)}"
            )
    log.info("monitoring run %s in experiment %s", run_id, name)
    return notes


def _log_run(report: Mapping[str, Any], files: Sequence[Path], experiment_id: str) -> str:
    model, batch = report["model"], report["batch"]
    tags = {
        **process_tags(),
        FINGERPRINT_TAG: model["fingerprint"],
        "custseg.model_uri": model["uri"],
        "custseg.model_version": str(model["version"] or ""),
        "custseg.batch_sha256": batch["sha256"],
        "custseg.verdict": report["verdict"],
    }
    run_name = f"monitor-{Path(batch['file']).stem}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_metrics(monitoring_metrics(report))
        for path in files:
            mlflow.log_artifact(str(path))
        return run.info.run_id


def _short(exc: Exception) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
