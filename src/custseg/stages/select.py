"""Entry point ``custseg-select``: choose k, fit the final model, give its segments identity.

Reads the sweep curve of the final feature set (``features`` in the config), picks k with
``selection.method``, refits the pipeline (deterministic for fixed data, config and
library versions), matches its segments to the champion in the segment catalog
(``catalog.path``: matched segments keep their ids and names) and writes the DVC
outputs, which depend only on data, params and code (no run ids, versions or times)::

    models/segmentation.json  the model: scaler, centroids, segment ids and names
    models/selection.json     what was chosen and why, from which data
    models/changes.json       what changed since the catalog's champion
    metrics/selection.json    k and the final model's scores

Nothing is logged or registered here: ``custseg-publish`` (the next stages) does that.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.core.clustering import fit_kmeans
from custseg.core.identity import compare_models, identified_model
from custseg.core.segment_model import SegmentModel
from custseg.core.selection import Selection, select_k
from custseg.io.data import load_customers
from custseg.io.outputs import (
    CHANGES_FILE,
    MODEL_FILE,
    SELECTION_RECORD,
    StaleInputError,
    curve_path,
    read_curve,
    read_segment_model,
    write_json_atomic,
    write_segment_model,
)
from custseg.stages.console import quiet_console
from custseg.stages.errors import exit_on_user_error

log = logging.getLogger(__name__)

SELECTION_METRICS = Path("metrics/selection.json")


@dataclass
class SelectOutcome:
    selection: Selection
    model: SegmentModel
    record: dict
    metrics: dict
    changes: dict


def run_select(settings: Settings) -> SelectOutcome:
    """Choose k, fit, identify segments and write the outputs (paths relative to the project)."""
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
    reference = read_segment_model(settings.catalog.path, missing_ok=True)
    model = identified_model(
        result, table, settings.personas, settings.preprocess.scaler, info.sha256, reference
    )
    changes = compare_models(reference, model, table)
    record = {
        "feature_set": fs.name,
        "features": fs.columns,
        "k": selection.k,
        "method": selection.method,
        "fallback": selection.fallback,
        "picks": selection.picks,
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
        "fingerprint": model.fingerprint,
        "segment_names": {str(i): n for i, n in model.segment_names.items()},
        "catalog": settings.catalog.path,
        "champion": changes["reference"],
    }
    metrics = {"k": selection.k, **{m: round(result.metrics[m], 6) for m in _STABLE_METRICS}}
    if "adjusted_rand" in changes:
        metrics["champion_ari"] = changes["adjusted_rand"]
    write_segment_model(model, MODEL_FILE)
    write_json_atomic(changes, CHANGES_FILE)
    write_json_atomic(record, SELECTION_RECORD)
    write_json_atomic(metrics, SELECTION_METRICS)
    return SelectOutcome(selection, model, record, metrics, changes)


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


#: headline scores in metrics/selection.json (few, so `dvc metrics show` stays narrow; every
#: score of every k is in the sweep curves and MLflow)
_STABLE_METRICS = ("inertia", "silhouette")

_CHAMPION_TEXT = {
    "none": "no champion in the catalog yet",
    "same": "same model as the champion in the catalog",
    "different": "differs from the champion in the catalog",
    "incomparable": "the catalog's champion reads columns this table lacks",
}


def format_outcome(outcome: SelectOutcome, catalog: str) -> str:
    """The one-line summary printed by ``custseg-select``."""
    r, changes = outcome.record, outcome.changes
    picks = ", ".join(f"{c}={k}" for c, k in r["picks"].items())
    text = (
        f"Selected k={r['k']} for {r['feature_set']} by {r['method']} ({picks}); "
        f"{_CHAMPION_TEXT[changes['reference']]} ({catalog})"
    )
    if changes["reference"] == "different":
        text += f": {changes['moved']} of {r['n_rows']} customers change segment"
    return text


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-select")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    quiet_console()
    settings = to_settings(cfg)
    print(format_outcome(run_select(settings), settings.catalog.path))


if __name__ == "__main__":
    main()
