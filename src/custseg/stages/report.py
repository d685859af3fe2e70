"""Entry point ``custseg-report``: segment profiles, names and the report for the final model.

Run from the project root after ``custseg-select``::

    custseg-report
    custseg-report report.mlflow_ui=http://mlflow.example.com personas.level_threshold=0.4

Reads the customer table, the model directory ``models/segmentation``, the selection
record ``models/selection.json`` and the sweep curve of the selected feature set; writes
(all or nothing)::

    reports/segments.html             self-contained report (opens offline)
    reports/segments.md               summary for pull requests
    reports/segment_assignments.csv   customer id, segment, segment name
    metrics/segments.json             per-segment sizes and shares (dvc metrics)

and logs the first three as artifacts under ``report/`` of the selected MLflow run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.core import plots
from custseg.core.clustering import centroids_in_original_units
from custseg.core.features import FeatureSet
from custseg.core.profiling import (
    SegmentDescription,
    SegmentProfiles,
    name_segments,
    profile_columns,
    profile_segments,
)
from custseg.io.data import load_customers
from custseg.io.outputs import MODEL_DIR, SELECTION_RECORD, StaleInputError, curve_path
from custseg.io.report import (
    ReportInputs,
    ReportPaths,
    assignments_table,
    load_model_dir,
    log_report_artifacts,
    read_curve_file,
    read_selection,
    render_html,
    render_markdown,
    segment_metrics,
    write_report,
)
from custseg.stages.errors import exit_on_user_error

log = logging.getLogger(__name__)


@dataclass
class ReportOutcome:
    """What ``custseg-report`` produced.

    Attributes
    ----------
    paths : ReportPaths
        The written files.
    descriptions : dict of int to SegmentDescription
        Name, persona and recommendation per segment.
    labels : ndarray
        Segment of every training customer.
    logged : bool
        Whether the files were logged to the selected MLflow run.
    """

    paths: ReportPaths
    profiles: SegmentProfiles
    descriptions: dict[int, SegmentDescription]
    labels: np.ndarray
    selection: dict
    logged: bool


def run_report(
    settings: Settings,
    model_dir: str | Path = MODEL_DIR,
    selection_path: str | Path = SELECTION_RECORD,
) -> ReportOutcome:
    """Profile and name the segments of the selected model and write the report.

    Parameters
    ----------
    settings : Settings
        Typed configuration (data, personas, report, sweep output dir, tracking URI).
    model_dir : path, default ``models/segmentation``
        MLflow model directory of the fitted pipeline.
    selection_path : path, default ``models/selection.json``
        Record written by ``custseg-select``.

    Returns
    -------
    ReportOutcome

    Raises
    ------
    FileNotFoundError
        When an input of an earlier stage is missing (the message says which stage).
    custseg.io.data.DataValidationError
        When the customer table breaks its schema.
    """
    selection = read_selection(selection_path)
    table, info = load_customers(settings.data)
    pipeline = load_model_dir(model_dir)
    curve = read_curve_file(curve_path(settings.sweep.output_dir, selection["feature_set"]))

    feature_set = _feature_set(selection, table)
    labels = np.asarray(pipeline.predict(table)).astype(np.int64)
    id_column = settings.data.id_column
    numeric, categorical = profile_columns(
        table, feature_set, exclude=[id_column] if id_column else []
    )
    profiles = profile_segments(table, labels, numeric, categorical)
    descriptions = name_segments(profiles, settings.personas, feature_set.columns)
    names = {seg: d.name for seg, d in descriptions.items()}

    figures = {
        "profiles": plots.profile_chart(
            profiles, names, threshold=settings.personas.level_threshold
        ),
        "elbow": plots.elbow_plot(
            curve["k"].astype(int).tolist(),
            curve["inertia"].tolist(),
            int(selection["k"]),
            # readable criterion names in the picks strip ("Calinski-Harabasz: 9")
            {
                plots.METRIC_INFO.get(c, (c,))[0]: v
                for c, v in (selection.get("picks") or {}).items()
            },
            title=f"Elbow method: {feature_set.name}",
        ),
    }
    if feature_set.numeric:
        centroids = centroids_in_original_units(table, labels, feature_set.numeric)
        figures["scatter"] = plots.cluster_scatter(
            table[feature_set.numeric],
            labels,
            centroids,
            labels_text=names,
            title=f"Customer segments ({feature_set.name}, k = {selection['k']})",
        )
    inputs = ReportInputs(
        selection=selection,
        data=info,
        profiles=profiles,
        descriptions=descriptions,
        figures=figures,
        mlflow_ui=settings.report.mlflow_ui,
    )
    html = render_html(inputs)
    markdown = render_markdown(inputs)
    ids = table[id_column].tolist() if id_column else None
    assignments = assignments_table(ids, labels, names, id_column or "row")
    paths = write_report(
        settings.report.output_dir,
        settings.report.metrics_file,
        html,
        markdown,
        assignments,
        segment_metrics(profiles),
    )
    logged = log_report_artifacts(
        settings.tracking.tracking_uri, str(selection["run_id"]), paths.artifacts
    )
    return ReportOutcome(paths, profiles, descriptions, labels, selection, logged)


def _feature_set(selection: dict, table) -> FeatureSet:
    """The clustering columns of the selected model, split by the table's dtypes."""
    features = [str(c) for c in selection["features"]]
    missing = [c for c in features if c not in table.columns]
    if missing:
        raise StaleInputError(
            f"the model uses column(s) {missing} that the customer table lacks; "
            "rerun custseg-select on this table (dvc repro does)"
        )
    numeric = [c for c in features if c in table.select_dtypes(include="number").columns]
    categorical = [c for c in features if c not in numeric]
    return FeatureSet(name=str(selection["feature_set"]), numeric=numeric, categorical=categorical)


def format_outcome(outcome: ReportOutcome) -> str:
    """The summary printed to the terminal."""
    lines = [f"Segments (k={outcome.selection['k']}, {outcome.selection['feature_set']}):"]
    for seg, d in outcome.descriptions.items():
        size = int(outcome.profiles.sizes.at[seg, "size"])
        lines.append(f"  {seg}: {d.name} [{d.persona}], {size} customers")
    p = outcome.paths
    lines.append(f"Report: {p.html}, {p.markdown}, {p.assignments}; metrics: {p.metrics}")
    if outcome.logged:
        lines.append(f"Logged to MLflow run {outcome.selection['run_id']} under report/")
    else:
        lines.append("Not logged to MLflow (run not found; see the warning above)")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: typed config in, report out."""
    settings = to_settings(cfg)
    print(format_outcome(run_report(settings)))


if __name__ == "__main__":
    main()
