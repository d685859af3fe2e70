"""Entry point ``custseg-select``: choose k, fit the final model, give its segments identity.

Reads the sweep curve of the final feature set (``features`` in the config), picks k with
``selection.method``, takes the sweep's model of that k (no refit), gives its segments
their stable ids through the customers they share with the champion's in the segment
catalog (``catalog.path``; :mod:`custseg.domain.identity`), names them from their numbers
and writes the DVC outputs, which depend only on data, params and code (no run ids,
versions or times)::

    models/segmentation.json  the model: scaler, centroids, segment ids, names, personas
    models/selection.json     what was chosen and why, from which data
    models/changes.json       what changed since the catalog's champion
    models/reference.json     the model's reference profile (custseg-monitor's baseline)
    metrics/selection.json    k and the final model's scores

Nothing is logged or registered here: ``custseg-publish`` (the next stages) does that.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import hydra
import pandas as pd
from omegaconf import DictConfig

from custseg.backends import open_table
from custseg.backends.base import CustomerTable
from custseg.config import CONF_DIR, Settings, to_settings
from custseg.domain.algorithms import algorithm_name
from custseg.domain.features import FeatureSet
from custseg.domain.identity import Identity, carry_identity, model_changes, moving
from custseg.domain.monitoring.reference import ReferenceParams, model_reference
from custseg.domain.segment_model import SegmentModel
from custseg.domain.selection import FORCED, Selection, select_k
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.storage.outputs import (
    StaleInputError,
    curve_path,
    read_curve,
    read_segment_model,
    read_sweep_model,
    write_json_atomic,
    write_segment_model,
)
from custseg.storage.paths import (
    CHANGES_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    SELECTION_METRICS,
    SELECTION_RECORD,
)

log = logging.getLogger(__name__)


@dataclass
class SelectOutcome:
    selection: Selection
    model: SegmentModel
    record: dict
    metrics: dict
    changes: dict


def run_select(settings: Settings) -> SelectOutcome:
    """Choose k, take its model, identify segments and write the outputs (paths relative to the project)."""
    table = open_table(settings)
    info = table.info
    fs = settings.features
    curve = read_curve(settings.sweep.output_dir, fs.name, settings.sweep.ks)
    chosen = settings.selection
    selection = select_k(curve, chosen.method, chosen.elbow_sensitivity, chosen.k)
    swept, swept_jaccard = read_sweep_model(
        settings.sweep.output_dir, fs.name, selection.k, settings.fitted_with(info.sha256)
    )
    _check_feature_set(swept, fs)
    _check_curve(curve, table.inertia(swept), selection.k, settings)
    reference = read_segment_model(settings.catalog.path, missing_ok=True)
    # the customers per (champion segment, swept segment), counted once (a pass over the
    # whole table): identity reads them, and under the stable ids they are the changes'
    counts = cache(lambda: table.transitions(reference, swept))
    identity = identify_segments(table, swept, reference, settings, counts)
    model = identity.model
    jaccard = {identity.ids[s]: j for s, j in swept_jaccard.items()}
    changes = model_changes(
        reference, model, table.columns, lambda: counts().rename(columns=identity.ids)
    )
    changes["identity"] = identity.record(settings.identity.min_overlap)
    scores = curve.loc[curve["k"] == selection.k].iloc[0]
    record = {
        "feature_set": fs.name,
        "features": fs.columns,
        "k": selection.k,
        "model": algorithm_name(settings.model, fs),
        "method": selection.method,
        "fallback": selection.fallback,
        "picks": selection.picks,
        "unpicked": selection.unpicked,
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
        "fingerprint": model.fingerprint,
        "segment_names": {str(i): n for i, n in model.segment_names.items()},
        "personas": {str(i): p for i, p in model.segment_personas.items()},
        "catalog": settings.catalog.path,
        "champion": changes["reference"],
        "trust": trust_record(scores, jaccard, settings),
    }
    metrics = {"k": selection.k, **{m: _rounded(scores[m]) for m in _STABLE_METRICS}}
    if "adjusted_rand" in changes:
        metrics["champion_ari"] = changes["adjusted_rand"]
    profile = reference_profile(table, model, settings, _rounded(scores["silhouette"]))
    write_segment_model(model, MODEL_FILE)
    write_json_atomic(profile, REFERENCE_FILE)
    write_json_atomic(changes, CHANGES_FILE)
    write_json_atomic(record, SELECTION_RECORD)
    write_json_atomic(metrics, SELECTION_METRICS)
    return SelectOutcome(selection, model, record, metrics, changes)


def identify_segments(
    table: CustomerTable,
    model: SegmentModel,
    reference: SegmentModel | None,
    settings: Settings,
    counts: Callable[[], pd.DataFrame] | None = None,
) -> Identity:
    """``model``'s segments with stable ids (by the customers of ``table`` they share with
    ``reference``'s), names read from their profiles on ``table``, and personas: the one
    path for select and ``custseg promote``, on either engine. ``counts`` gives
    ``table.transitions(reference, model)`` (counted here when not given)."""
    numeric, categorical = table.profile_columns(_feature_set(model), settings.data.not_profiled)
    return carry_identity(
        model,
        table.profiles(model, numeric, categorical),
        settings.personas,
        reference,
        counts or (lambda: table.transitions(reference, model)),
        settings.identity.min_overlap,
        settings.catalog.fresh,
    )


def reference_profile(
    table: CustomerTable, model: SegmentModel, settings: Settings, silhouette: float | None
) -> dict:
    """``model``'s reference profile on ``table``: the customers the driver holds (every
    one, or the engine's seeded sample), the segment sizes over the whole table."""
    rows, _ = table.drawn(model)
    numeric, categorical = table.profile_columns(_feature_set(model), settings.data.not_profiled)
    reference = settings.monitor.reference
    return model_reference(
        model,
        rows,
        table.sizes(model),
        numeric=numeric,
        categorical=categorical,
        silhouette=silhouette,
        params=ReferenceParams(
            sample_size=reference.sample_size,
            bins=reference.bins,
            seed=settings.model.random_state,
        ),
    )


def _feature_set(model: SegmentModel) -> FeatureSet:
    """The feature set ``model`` reads."""
    return FeatureSet(
        name=model.feature_set,
        numeric=list(model.numeric),
        categorical=list(model.categorical),
        transforms=model.transform_kinds,
    )


def _check_feature_set(model: SegmentModel, feature_set: FeatureSet) -> None:
    """Refuse a swept model of other columns or transforms than the config's feature set
    (e.g. edited outside DVC after the sweep)."""
    if (model.numeric, model.categorical) != (feature_set.numeric, feature_set.categorical):
        raise StaleInputError(
            f"the sweep's {feature_set.name!r} models use columns {model.columns}, the config "
            f"{feature_set.columns}; rerun the sweep (dvc repro does)"
        )
    swept = model.transform_kinds
    if swept != feature_set.active_transforms:
        raise StaleInputError(
            f"the sweep's {feature_set.name!r} models use transforms {swept or 'none'}, the "
            f"config {feature_set.active_transforms or 'none'}; rerun the sweep (dvc repro does)"
        )


def _check_curve(curve: pd.DataFrame, inertia: float, k: int, settings: Settings) -> None:
    """Refuse a curve and models of two different sweeps (e.g. one rerun outside DVC):
    the model's inertia on the table is the curve's at its k."""
    swept = float(curve.loc[curve["k"] == k, "inertia"].iloc[0])
    if not math.isclose(swept, inertia, rel_tol=1e-6):
        path = curve_path(settings.sweep.output_dir, settings.features.name)
        raise StaleInputError(
            f"{path} and the sweep's models differ (inertia at k={k}: {swept:.6g} in the "
            f"curve, {inertia:.6g} for the model); rerun the sweep (dvc repro does)"
        )


def trust_record(scores: pd.Series, jaccard: dict[int, float | None], settings: Settings) -> dict:
    """How far the chosen segments are trusted: the k's stability (mean ARI of resampled
    refits), each segment's Jaccard, and the segments below ``selection.unstable_jaccard``."""
    threshold = settings.selection.unstable_jaccard
    return {
        "stability": _rounded(scores["stability"]),
        "resamples": int(scores["stability_resamples"]),
        "resampling": settings.selection.trust.resampling,
        "jaccard": {str(s): None if j is None else round(j, 6) for s, j in sorted(jaccard.items())},
        "unstable_jaccard": threshold,
        "unstable": sorted(s for s, j in jaccard.items() if j is not None and j < threshold),
    }


def _rounded(value: float) -> float | None:
    """A score for a JSON output: 6 decimals, None (null) when undefined."""
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


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
    how = "forced by selection.k; the criteria:" if r["method"] == FORCED else f"by {r['method']}"
    text = (
        f"Selected k={r['k']} for {r['feature_set']} {how} "
        f"({outcome.selection.picks_text()}); "
        f"{_CHAMPION_TEXT[changes['reference']]} ({catalog})"
    )
    if changes["reference"] == "different":
        text += f": {moving(changes['moved'])} (of {r['n_rows']:,})"
    if fresh := (changes.get("identity") or {}).get("fresh"):
        text += f"; first model of this data, new segment ids ({fresh})"
    return text


@known_keys("custseg-select")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-select")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    quiet_console()
    settings = to_settings(cfg)
    print(format_outcome(run_select(settings), settings.catalog.path))


if __name__ == "__main__":
    main()
