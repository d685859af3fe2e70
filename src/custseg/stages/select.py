"""Entry point ``custseg-select``: choose k, fit the final model, register it as champion.

Reads the sweep curve of the final feature set (``features`` in the config), picks k with
``selection.method``, refits the pipeline (deterministic for fixed data, config and
library versions), logs it as an MLflow run, registers it through the promotion gate
with alias ``tracking.alias`` and writes the DVC outputs::

    models/segmentation/     the MLflow model directory
    models/selection.json    what was chosen, from which data and code, where it is tracked
    metrics/selection.json   k, each criterion's pick and the final model's metrics
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.core.clustering import fit_kmeans
from custseg.core.profiling import describe_segments
from custseg.core.selection import Selection, select_k
from custseg.io.data import load_customers
from custseg.io.outputs import (
    MODEL_DIR,
    SELECTION_RECORD,
    StaleInputError,
    curve_path,
    read_curve,
    replace_dir_atomic,
    write_json_atomic,
)
from custseg.io.outputs import git_commit as current_git_commit
from custseg.io.registry import register_candidate, set_alias
from custseg.io.tracking import (
    ROLE_TAG,
    ModelBundle,
    flat_params,
    log_fit_run,
    setup_experiment,
    stop_on_sigterm,
)
from custseg.stages.errors import exit_on_user_error

log = logging.getLogger(__name__)

SELECTION_METRICS = Path("metrics/selection.json")


@dataclass
class SelectOutcome:
    selection: Selection
    record: dict
    metrics: dict


def run_select(settings: Settings) -> SelectOutcome:
    """Choose k, fit, log, register and write the outputs (paths relative to the project)."""
    table, info = load_customers(settings.data)
    fs = settings.features
    curve = read_curve(settings.sweep.output_dir, fs.name, settings.sweep.ks)
    selection = select_k(curve, settings.selection.method, settings.selection.elbow_sensitivity)
    result = fit_kmeans(
        table,
        fs,
        settings.preprocess.scaler,
        settings.model,
        selection.k,
        settings.sweep.silhouette_sample_size,
    )
    _check_curve_matches_refit(curve, result.metrics["inertia"], selection.k, settings)
    segments = describe_segments(table, result.labels, fs, settings.personas)
    metadata = {"segment_names": {str(i): d.name for i, d in segments.items()}}
    commit = current_git_commit()

    tracking = settings.tracking
    experiment_id = setup_experiment(
        tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
    )
    params = {
        "feature_set": fs.name,
        "features": ",".join(fs.columns),
        "k": selection.k,
        "scaler": settings.preprocess.scaler,
        "selection_method": selection.method,
        **flat_params("model", asdict(settings.model)),
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
    }
    version_tags = {
        "data_sha256": info.sha256,
        "git_commit": commit or "unknown",
        "feature_set": fs.name,
        "k": str(selection.k),
        "selection_method": selection.method,
    }
    run_id = log_fit_run(
        result,
        table,
        run_name=f"final-{fs.name}-k{selection.k}",
        params=params,
        tags={ROLE_TAG: "final", **version_tags},
        experiment_id=experiment_id,
        model_metadata=metadata,
        random_state=settings.model.random_state,
    )
    version, refusal = register_candidate(
        run_id, tracking.registered_model_name, tracking.alias, table, version_tags
    )

    bundle = ModelBundle.from_fit(result, table, metadata)
    replace_dir_atomic(MODEL_DIR, bundle.save)
    record = {
        "feature_set": fs.name,
        "features": fs.columns,
        "k": selection.k,
        "method": selection.method,
        "fallback": selection.fallback,
        "picks": selection.picks,
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": tracking.tracking_uri,
        "model_name": tracking.registered_model_name,
        "model_version": str(version.version),
        "alias": tracking.alias,
        # whether the alias moved to this version, and why not (a worse model on the same
        # data and features keeps the current holder; `custseg promote --force` overrides)
        "alias_moved": refusal is None,
        "alias_kept_because": refusal,
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
        "git_commit": commit,
        "segment_names": metadata["segment_names"],
    }
    metrics = {
        "k": selection.k,
        "picks": {c: k for c, k in selection.picks.items() if k is not None},
        **{m: result.metrics[m] for m in _STABLE_METRICS},
    }
    write_json_atomic(record, SELECTION_RECORD)
    write_json_atomic(metrics, SELECTION_METRICS)
    if refusal is None:  # last, so the alias never points past what models/ describes
        set_alias(tracking.registered_model_name, tracking.alias, version)
    return SelectOutcome(selection, record, metrics)


def _check_curve_matches_refit(
    curve: pd.DataFrame, inertia: float, k: int, settings: Settings
) -> None:
    """Refuse a curve swept on other data or settings than the refit (nothing logged yet).

    The refit of the chosen k uses the same data, scaler and KMeans settings as the sweep,
    so its inertia equals the curve's; a difference means the curve is stale, e.g. swept
    with ``preprocess.scaler=none`` outside DVC.
    """
    swept = float(curve.loc[curve["k"] == k, "inertia"].iloc[0])
    if not math.isclose(swept, inertia, rel_tol=1e-6):
        path = curve_path(settings.sweep.output_dir, settings.features.name)
        raise StaleInputError(
            f"{path} was swept with other data or settings: its inertia at k={k} is "
            f"{swept:.6g}, the refit with the current config gives {inertia:.6g}; rerun the "
            "sweep with this config (dvc repro does)"
        )


#: metrics that are the same on every reproduction (no timings)
_STABLE_METRICS = (
    "inertia",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "min_cluster_size",
    "max_cluster_size",
)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-select")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    # the gate loads a model of a few KB: a download progress bar there is noise
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = to_settings(cfg)
    with stop_on_sigterm():  # `kill` unwinds, so the final run ends FAILED, not RUNNING
        outcome = run_select(settings)
    r = outcome.record
    if r["alias_moved"]:
        alias_line = (
            f"Registered {r['model_name']} version {r['model_version']} as @{r['alias']} "
            f"(run {r['run_id']})"
        )
    else:
        alias_line = (
            f"Registered {r['model_name']} version {r['model_version']} (run {r['run_id']}); "
            f"@{r['alias']} stays: {r['alias_kept_because']}"
        )
    names = ", ".join(f"{i}: {n}" for i, n in r["segment_names"].items())
    print(
        f"Selected k={r['k']} for {r['feature_set']} by {r['method']} "
        f"(picks: {', '.join(f'{c}={k}' for c, k in r['picks'].items())})\n"
        f"{alias_line}\n"
        f"Segments: {names}\n"
        f"Model directory: {MODEL_DIR}"
    )


if __name__ == "__main__":
    main()
