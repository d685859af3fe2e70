"""Entry point ``custseg-report``: segment profiles, names and the report for the final model.

Run from the project root after ``custseg-select``::

    custseg-report
    custseg-report report.mlflow_ui=http://mlflow.example.com personas.level_threshold=0.4

Reads the customer table, the model ``models/segmentation.json``, the selection record
``models/selection.json``, what changed since the champion (``models/changes.json``),
the segment catalog and the sweep curve of the selected feature set; writes (all or
nothing, and the same bytes for the same inputs)::

    reports/segments.html             self-contained report (opens offline)
    reports/segments.md               summary for pull requests
    reports/segment_assignments.csv   customer id, segment, segment name
    reports/segment_sizes.csv         size and share per segment (dvc plots)
    metrics/segments.json             segment count, smallest and largest share

``custseg-publish`` logs the report to the model's MLflow run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from custseg.backends import open_table
from custseg.config import CONF_DIR, Settings, to_settings
from custseg.domain.features import FeatureSet
from custseg.domain.profiling.naming import (
    Earlier,
    SegmentDescription,
    level_statistic,
    name_contradictions,
    name_segments,
)
from custseg.domain.profiling.profiles import SegmentProfiles
from custseg.domain.profiling.rules import NamingRules
from custseg.domain.segment_model import SegmentModel
from custseg.domain.selection import CRITERION_LABELS, ordered_picks
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.reporting import figures as plots
from custseg.reporting.report import (
    ReportInputs,
    ReportPaths,
    read_curve_file,
    read_selection,
    render_html,
    render_markdown,
    segment_metrics,
    segment_sizes,
    write_report,
)
from custseg.storage.outputs import StaleInputError, curve_path, read_json, read_segment_model
from custseg.storage.paths import CHANGES_FILE, MODEL_FILE, SELECTION_RECORD

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
        Segment of every customer the driver holds: every customer of a table in memory,
        the seeded sample of one Spark holds.
    """

    paths: ReportPaths
    profiles: SegmentProfiles
    descriptions: dict[int, SegmentDescription]
    labels: np.ndarray
    selection: dict
    changes: dict


def run_report(
    settings: Settings,
    model_file: str | Path = MODEL_FILE,
    selection_path: str | Path = SELECTION_RECORD,
    changes_path: str | Path = CHANGES_FILE,
) -> ReportOutcome:
    """Profile and name the segments of the selected model and write the report.

    Parameters
    ----------
    settings : Settings
        Typed configuration (data, personas, report, sweep output dir, tracking URI).
    model_file : path, default ``models/segmentation.json``
        The model written by ``custseg-select``.
    selection_path : path, default ``models/selection.json``
        Record written by ``custseg-select``.
    changes_path : path, default ``models/changes.json``
        Comparison with the catalog's champion written by ``custseg-select``.

    Returns
    -------
    ReportOutcome

    Raises
    ------
    FileNotFoundError
        When an input of an earlier stage is missing (the message says which stage).
    custseg.storage.data.DataValidationError
        When the customer table breaks its schema.
    """
    selection = read_selection(selection_path)
    table = open_table(settings)
    model = read_segment_model(model_file)
    changes = read_json(changes_path)
    champion = read_segment_model(settings.catalog.path, missing_ok=True)
    curve = read_curve_file(curve_path(settings.sweep.output_dir, selection["feature_set"]))

    feature_set = _feature_set(model, table.columns)
    numeric, categorical = table.profile_columns(feature_set, settings.data.not_profiled)
    profiles = table.profiles(model, numeric, categorical)
    names = model.segment_names  # given by custseg-select, read from these numbers
    if lies := name_contradictions(profiles, names, settings.personas):
        raise StaleInputError(
            f"{model_file}: segment names contradict the numbers of this table ("
            + "; ".join(lies)
            + "); rerun custseg-select on it (dvc repro does)"
        )
    descriptions = model_descriptions(model, profiles, settings.personas, feature_set.columns)

    picks = dict(selection.get("picks") or {})
    figures = {
        # the shaded "mid" band is the names' only where names read standardised means
        "profiles": plots.profile_chart(profiles, names, threshold=_mid_band(settings.personas)),
        "elbow": plots.elbow_plot(
            curve["k"].astype(int).tolist(),
            curve["inertia"].tolist(),
            int(selection["k"]),
            # readable criterion names in the picks strip ("Calinski-Harabasz: 9")
            {CRITERION_LABELS.get(c, c): k for c, k in ordered_picks(picks).items()},
            title=f"Elbow method: {feature_set.name}",
        ),
    }
    if "stability" in curve and curve["stability"].notna().any():
        figures["stability"] = plots.stability_plot(
            curve, int(selection["k"]), (selection.get("trust") or {}).get("unstable_jaccard")
        )
    rows, labels = table.drawn(model)  # every customer, or Spark's seeded sample
    if feature_set.numeric:
        figures["scatter"] = plots.cluster_scatter(
            rows[feature_set.numeric],
            labels,
            profiles.wide("mean")[feature_set.numeric].rename_axis("cluster"),
            labels_text=names,
            title=f"Customer segments ({feature_set.name}, k = {selection['k']})",
            sizes=profiles.sizes["size"].to_dict(),
        )
    inputs = ReportInputs(
        selection=selection,
        data=table.info,
        profiles=profiles,
        descriptions=descriptions,
        figures=figures,
        changes=changes,
        champion_names=champion.segment_names if champion is not None else {},
        catalog=settings.catalog.path,
        statistic=level_statistic(settings.personas),
    )
    html = render_html(inputs)
    markdown = render_markdown(inputs)
    paths = write_report(
        settings.report.output_dir,
        settings.report.metrics_file,
        html,
        markdown,
        lambda path: table.write_assignments(model, settings.data.id_column, path),
        segment_metrics(profiles, selection),
        segment_sizes(profiles, descriptions),
    )
    return ReportOutcome(paths, profiles, descriptions, labels, selection, changes)


def _mid_band(rules: NamingRules) -> float | None:
    return rules.level_threshold if level_statistic(rules) == "mean" else None


def model_descriptions(
    model: SegmentModel, profiles: SegmentProfiles, rules: NamingRules, columns: Sequence[str]
) -> dict[int, SegmentDescription]:
    """Each segment as ``model`` names it (its names and personas, given by
    custseg-select), with the persona's description and recommendation and the levels
    and scores of ``profiles``. A model stored before personas were gets them derived.

    Raises
    ------
    StaleInputError
        When a persona of the model is not in ``rules`` (the rules changed since
        custseg-select gave them).
    """
    unknown = sorted({p for p in model.personas if p and not rules.has_persona(p)})
    if unknown:
        raise StaleInputError(
            f"the model's persona(s) {unknown} are not in the persona table "
            "(personas.personas); rerun custseg-select with these rules (dvc repro does)"
        )
    earlier = {
        seg: Earlier(levels, model.segment_personas.get(seg, ""))
        for seg, levels in model.segment_levels.items()
    }
    derived = name_segments(profiles, rules, columns, earlier)
    personas = model.segment_personas
    out = {}
    for seg, d in derived.items():
        persona = personas.get(seg, d.persona)
        rule = rules.persona_rule(persona, d.levels, d.scores)
        out[seg] = dataclasses.replace(
            d,
            name=model.segment_names[seg],
            persona=persona,
            description=rule.description,
            recommendation=rule.recommendation,
            was_persona="",
        )
    return out


def _feature_set(model: SegmentModel, columns: Sequence[str]) -> FeatureSet:
    """The clustering columns of the model; all must be among the table's ``columns``."""
    missing = [c for c in model.columns if c not in columns]
    if missing:
        raise StaleInputError(
            f"the model uses column(s) {missing} that the customer table lacks; "
            "rerun custseg-select on this table (dvc repro does)"
        )
    return FeatureSet(
        name=model.feature_set,
        numeric=list(model.numeric),
        categorical=list(model.categorical),
        transforms=model.transform_kinds,
    )


def format_outcome(outcome: ReportOutcome) -> str:
    """The summary printed to the terminal."""
    lines = [f"Segments (k={outcome.selection['k']}, {outcome.selection['feature_set']}):"]
    for seg, d in outcome.descriptions.items():
        size = int(outcome.profiles.sizes.at[seg, "size"])
        lines.append(f"  {seg}: {d.name} [{d.persona}], {size} customers")
    p = outcome.paths
    lines.append(f"Report: {p.html}, {p.markdown}, {p.assignments}; metrics: {p.metrics}")
    return "\n".join(lines)


@known_keys("custseg-report")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: typed config in, report out."""
    quiet_console()
    settings = to_settings(cfg)
    print(format_outcome(run_report(settings)))


if __name__ == "__main__":
    main()
