"""Entry point ``custseg-sweep``: fit every feature set x k, log each fit to MLflow, choose k.

Run from the project root::

    custseg-sweep                                   # 4 feature sets x k=2..10 = 36 runs
    custseg-sweep sweep.feature_sets=[all] sweep.k_max=12 preprocess.scaler=minmax
"""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from custseg.backends import backend_of
from custseg.backends.parallel import ordered_map, shared
from custseg.config import CONF_DIR, ConfigError, Settings, settings_to_yaml, to_settings
from custseg.domain.algorithms import refit_for
from custseg.domain.clustering import (
    FitResult,
    SilhouetteSample,
    fit_model,
    fit_warnings,
)
from custseg.domain.features import FeatureSet
from custseg.domain.identity import identify
from custseg.domain.segment_model import SegmentModel
from custseg.domain.selection import Selection, select_k, votes
from custseg.domain.stability import Trust, sample_rows, seed_agreement, trust
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import FitsFailedError, exit_on_user_error, known_keys
from custseg.reporting import figures as plots
from custseg.storage.data import DataInfo
from custseg.storage.outputs import curve_frame, write_curve, write_sweep_models
from custseg.tracking.runs import (
    ROLE_TAG,
    dvc_experiment,
    fit_images,
    flat_params,
    interruptible,
    log_failed_fit_run,
    log_fit_run,
    log_sweep_summary,
    parent_run,
    setup_experiment,
    sqlite_path,
    stop_on_sigterm,
)
from custseg.tracking.ui import experiment_url

log = logging.getLogger(__name__)


@dataclass
class SweepOutcome:
    """What one sweep produced.

    Attributes
    ----------
    summary : DataFrame
        One row per child run: ``feature_set, k, run_id`` and every metric.
    selections : dict
        Feature set name -> its :class:`~custseg.domain.selection.Selection`.
    final_feature_set : str
        The feature set of the final model (``features`` in the config).
    selected_run_id : str
        The child run of the final feature set at its selected k.
    """

    experiment_id: str
    parent_run_id: str
    summary: pd.DataFrame
    selections: dict[str, Selection]
    final_feature_set: str
    selected_run_id: str

    @property
    def selected_k(self) -> int:
        return self.selections[self.final_feature_set].k


def run_sweep(settings: Settings, progress: bool = True) -> SweepOutcome:
    """Load and validate the data, then fit, log and select for every feature set.

    The fits (with their named segments and rendered plots) run on the engine of
    ``engine.name`` (:func:`~custseg.backends.backend_of`): scikit-learn on ``sweep.n_jobs`` processes, or
    Spark from this process, while this one logs each finished fit to MLflow, in a fixed
    order.
    ``progress`` shows a progress bar on stderr, and only when stderr is a terminal (never
    in a log file, a pipe or DVC's output).

    Raises
    ------
    custseg.storage.data.DataValidationError
        Before any run is started, when the table breaks its schema.
    """
    with interruptible():  # may validate a large CSV: no store call yet, SIGTERM stops it
        engine = backend_of(settings.engine).sweep(settings)
    table, info = engine.table, engine.info
    feature_sets = settings.swept_feature_sets()
    ks = settings.sweep.ks
    if ks[-1] > info.n_rows:
        raise ConfigError(
            f"sweep.k_max={ks[-1]} exceeds the {info.n_rows} customers in {info.path}"
        )
    tasks = [(fs, k) for fs in feature_sets for k in ks]
    shared_values = {
        "table": table,
        "settings": settings,
        "data_sha256": info.sha256,
        "fit": engine.fit,
    }
    # enter the pool first: workers fork before MLflow or tqdm start threads, and fit
    # while the tracking store opens
    with ordered_map(_fit_one, tasks, engine.n_jobs, shared_values) as fits:
        tracking = settings.tracking
        experiment_id = setup_experiment(
            tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
        )
        scope = feature_sets[0].name if len(feature_sets) == 1 else f"{len(feature_sets)}sets"
        # inside `dvc exp run`, the experiment's name, so the UI's parents say which
        run_name = f"sweep-{scope}-{dvc_experiment() or f'{datetime.now(UTC):%Y%m%d-%H%M%S}'}"
        with (
            parent_run(experiment_id, run_name, _data_tags(info)) as parent_run_id,
            tqdm(  # disable=None: tqdm draws only on a terminal
                total=len(tasks), desc="sweep", unit="fit", disable=None if progress else True
            ) as bar,
        ):
            rows = []
            fitted: dict[str, list[FitOutcome]] = {fs.name: [] for fs in feature_sets}
            failures: list[str] = []
            while True:
                with interruptible():  # waiting for a worker: SIGTERM stops at once
                    fit = next(fits, None)
                if fit is None:
                    break
                if isinstance(fit, FitFailure):  # logged FAILED; the other fits go on
                    failures.append(_log_failure(fit, settings, info))
                    bar.update()
                    continue
                run_id = _log_fit(fit, settings, info)
                name = fit.feature_set.name
                for warning in fit.warnings:
                    log.warning("fit %s k=%d: %s (run %s)", name, fit.k, warning, run_id)
                fitted[name].append(fit)
                rows.append({"feature_set": name, "k": fit.k, "run_id": run_id, **fit.metrics})
                bar.set_postfix_str(f"{name} k={fit.k}")
                bar.update()
            if failures:  # the parent ends FAILED; no curve or model is written
                raise FitsFailedError(failures, len(tasks), parent_run_id)
            summary = pd.DataFrame(rows)
            selections = {  # from the curves as written: custseg-select sees the same
                fs.name: select_k(
                    curve_frame(summary, fs.name),
                    settings.selection.method,
                    settings.selection.elbow_sensitivity,
                    settings.selection.k,
                )
                for fs in feature_sets
            }
            for name, selection in selections.items():  # how many criteria pick each k
                rows_of = summary["feature_set"] == name
                summary.loc[rows_of, "votes"] = votes(selection.picks, summary.loc[rows_of, "k"])
            final = settings.features.name
            selected_run_id = _run_of(summary, final, selections[final].k)
            chosen = next(f for f in fitted[final] if f.k == selections[final].k)
            seed_aris = _seed_agreement(chosen.model, table, settings)
            _log_parent(settings, info, summary, selections, selected_run_id, seed_aris)
    fitted_with = settings.fitted_with(info.sha256)
    for feature_set in feature_sets:
        write_curve(summary, settings.sweep.output_dir, feature_set.name)
        fits = fitted[feature_set.name]
        write_sweep_models(
            [f.model for f in fits],
            fitted_with,
            settings.sweep.output_dir,
            jaccard={f.k: f.jaccard for f in fits},
        )
    return SweepOutcome(experiment_id, parent_run_id, summary, selections, final, selected_run_id)


@dataclass
class FitOutcome:
    """One fit as a worker returns it: small and picklable (no table, no pipeline).

    Attributes
    ----------
    metrics : dict
        The fit's scores with its stability and gap (one value each).
    jaccard : dict
        Segment id -> mean Jaccard stability of that segment.
    warnings : list of str
        What is wrong with the fit (:func:`~custseg.domain.clustering.fit_warnings`).
    sizes : dict, optional
        Segment id -> its customers in the whole table, when the fit's rows are a sample
        of it (``FitResult.sizes``); None when they are every customer.
    """

    feature_set: FeatureSet
    k: int
    metrics: dict[str, float]
    jaccard: dict[int, float]
    warnings: list[str]
    model: SegmentModel
    images: dict[str, bytes]
    sizes: dict[int, int] | None = None


@dataclass
class FitFailure:
    """A fit that raised, as a worker returns it: what failed, why, and the traceback."""

    feature_set: FeatureSet
    k: int
    error: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.feature_set.name} k={self.k}: {self.error}"


def _fit_one(feature_set: FeatureSet, k: int) -> FitOutcome | FitFailure:
    """Fit one (feature set, k), name its segments, estimate its stability and gap, and
    render its plots (in a worker); a fit that raises comes back as a :class:`FitFailure`.

    Segment ids are in canonical order (no catalog here: that is the select stage's).
    """
    table: pd.DataFrame = shared("table")
    settings: Settings = shared("settings")
    try:
        result = shared("fit")(table, feature_set, k, settings)
        fit, ids, silhouettes = trusted_fit(result, table, settings, shared("data_sha256"))
        fit.images = fit_images(fit.model, table, ids, silhouettes, fit.sizes)
    except Exception as exc:  # one fit's failure must not lose the others
        error = f"{type(exc).__name__}: {exc}"
        return FitFailure(feature_set, k, error, traceback.format_exc())
    return fit


def _log_failure(failure: FitFailure, settings: Settings, info: DataInfo) -> str:
    """Log a failed fit as a FAILED child run (error tag, traceback artifact); returns
    the line that names it."""
    fs = failure.feature_set
    run_id = log_failed_fit_run(
        run_name=child_run_name(fs.name, failure.k),
        params=_fit_params(fs, failure.k, settings, info),
        # a tag holds at most a few thousand characters; the traceback is in error.txt
        tags={ROLE_TAG: "fit", "feature_set": fs.name, "fit_error": failure.error[:1000]},
        traceback=failure.traceback,
    )
    log.error("fit %s k=%d failed: %s (run %s)", fs.name, failure.k, failure.error, run_id)
    return f"{failure} (run {run_id})"


def fit_and_trust(
    table: pd.DataFrame, feature_set: FeatureSet, k: int, settings: Settings, data_sha256: str = ""
) -> tuple[FitOutcome, np.ndarray, SilhouetteSample]:
    """Fit, name, score and estimate the stability and gap of one (feature set, k) with
    scikit-learn.

    Returns the fit without images, the segment id of every customer and the silhouette
    sample (what the plots need).
    """
    preprocess = settings.preprocess
    result = fit_model(
        table,
        feature_set,
        preprocess.scaler,
        settings.model,
        k,
        settings.sweep.silhouette_sample_size,
        preprocess.categorical_weight,
    )
    return trusted_fit(result, table, settings, data_sha256)


def trusted_fit(
    result: FitResult, table: pd.DataFrame, settings: Settings, data_sha256: str = ""
) -> tuple[FitOutcome, np.ndarray, SilhouetteSample]:
    """Name the segments of a fit of ``table`` (the engine's, whichever) and estimate its
    stability and gap: the one path from a fit to a :class:`FitOutcome`.

    ``table`` holds the rows ``result`` labels (the whole table, or the Spark engine's
    driver-side sample). Returns the fit without images, the segment id of every row of
    ``table`` and the silhouette sample.
    """
    feature_set, k, scaler = result.feature_set, result.k, settings.preprocess.scaler
    # the schema's ranges and allowed values go with the model: scoring checks them
    schema = settings.data.input_schema(feature_set.numeric, feature_set.categorical)
    model, ids_of = identify(
        result,
        table,
        settings.personas,
        scaler,
        data_sha256,
        settings.data.not_profiled,
        **schema,
    )
    rows = model.nearest(table)[0]
    params = settings.selection.trust
    refit = refit_for(settings.model, model, params.n_init)
    found = trust(result.transformed, rows, k, params, refit)
    metrics = result.metrics | trust_metrics(found)
    jaccard = {model.segments[i]: float(j) for i, j in enumerate(found.jaccard)}
    warnings = fit_warnings(result.metrics, settings.model.max_iter)
    sizes = None
    if result.sizes is not None:  # labels are a sample's: the plots count every customer
        sizes = {ids_of[c]: int(n) for c, n in enumerate(result.sizes) if n}
    fit = FitOutcome(feature_set, k, metrics, jaccard, warnings, model, {}, sizes)
    return fit, np.asarray(model.segments)[rows], result.silhouettes


def trust_metrics(found: Trust) -> dict[str, float]:
    """The one-value metrics of :class:`~custseg.domain.stability.Trust` (child runs, curve)."""
    return {
        "stability": found.stability,
        "stability_std": found.stability_std,
        "min_jaccard": found.min_jaccard,
        "gap": found.gap,
        "gap_se": found.gap_se,
        "stability_resamples": found.resamples,
    }


def _seed_agreement(model: SegmentModel, table: pd.DataFrame, settings: Settings) -> list[float]:
    """ARI of the chosen model with refits of its k from ``selection.seed_checks`` other
    seeds, with the model's KMeans settings, on the stability sample."""
    n = settings.selection.seed_checks
    if n == 0:
        return []
    params = settings.selection.trust
    rows = sample_rows(len(table), params.sample_size, params.random_state)
    sample = table.iloc[rows]
    seeds = [settings.model.random_state + i for i in range(1, n + 1)]
    refit = refit_for(settings.model, model, settings.model.n_init)
    return seed_agreement(model.transform(sample), model.nearest(sample)[0], model.k, seeds, refit)


def _data_tags(info: DataInfo) -> dict[str, str]:
    return {"data.path": info.path, "data.sha256": info.sha256}


def _run_of(summary: pd.DataFrame, feature_set: str, k: int) -> str:
    row = summary[(summary["feature_set"] == feature_set) & (summary["k"] == k)]
    return str(row["run_id"].iloc[0])


def _fit_params(feature_set: FeatureSet, k: int, settings: Settings, info: DataInfo) -> dict:
    return {
        "feature_set": feature_set.name,
        "features": ",".join(feature_set.columns),
        "transforms": feature_set.transforms_label,
        "k": k,
        "scaler": settings.preprocess.scaler,
        "categorical_weight": settings.preprocess.categorical_weight,
        **flat_params("model", asdict(settings.model)),
        **settings.engine_params(),
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
    }


def _log_fit(fit: FitOutcome, settings: Settings, info: DataInfo) -> str:
    """Log one fit as a child run of the active parent; returns its run id."""
    fs = fit.feature_set
    per_segment = {f"jaccard_segment_{i}": j for i, j in fit.jaccard.items()}
    return log_fit_run(
        fit.model,
        images=fit.images,
        metrics=fit.metrics | per_segment,
        run_name=child_run_name(fs.name, fit.k),
        params=_fit_params(fs, fit.k, settings, info),
        tags={
            ROLE_TAG: "fit",
            "feature_set": fs.name,
            "fit_health": "; ".join(fit.warnings) or "ok",
        },
    )


def _log_parent(
    settings: Settings,
    info: DataInfo,
    summary: pd.DataFrame,
    selections: dict[str, Selection],
    selected_run_id: str,
    seed_aris: list[float],
) -> None:
    final = settings.features.name
    figures = {}
    for name, selection in selections.items():
        curve = summary[summary["feature_set"] == name].sort_values("k")
        figures[f"plots/elbow_{name}.png"] = plots.elbow_plot(
            curve["k"].tolist(),
            curve["inertia"].tolist(),
            selection.k,
            selection.picks,
            title=f"Elbow method: {name}",
        )
    # feature sets side by side only on scale-free criteria (inertia and Calinski-Harabasz
    # grow with the number of columns: each set's own are in its elbow plot and curve)
    figures["plots/metrics_vs_k.png"] = plots.metrics_vs_k_plot(
        summary, plots.COMPARABLE_METRICS, selected_k=selections[final].k
    )
    final_selection = selections[final]
    metrics = {"selected_k": final_selection.k}
    metrics |= {f"selected_k.{name}": sel.k for name, sel in selections.items()}
    metrics |= {f"{c}_k": k for c, k in final_selection.picks.items() if k is not None}
    if seed_aris:  # the chosen k refitted with other seeds: 1 = the same segments
        metrics |= {"seed_ari_min": min(seed_aris), "seed_ari_mean": float(np.mean(seed_aris))}
    params = {
        "feature_sets": ",".join(selections),
        "final_feature_set": final,
        "k_min": settings.sweep.k_min,
        "k_max": settings.sweep.k_max,
        "scaler": settings.preprocess.scaler,
        "selection_method": settings.selection.method,
        **flat_params("model", asdict(settings.model)),
        **flat_params("trust", asdict(settings.selection.trust)),
        **settings.engine_params(),
        "seed_checks": settings.selection.seed_checks,
        "data_sha256": info.sha256,
        "n_rows": info.n_rows,
    }
    tags = {"selected_run_id": selected_run_id, "selection_method": settings.selection.method}
    if final_selection.fallback:
        tags["selection_fallback"] = final_selection.fallback
    log_sweep_summary(
        config_yaml=settings_to_yaml(settings),
        params=params,
        metrics=metrics,
        summary=summary,
        picks={name: sel.picks for name, sel in selections.items()},
        figures=figures,
        tags=tags,
    )


def child_run_name(feature_set: str, k: int) -> str:
    """A fit's run name, k first (``"k5 income_spending"``): the UI cuts long names."""
    return f"k{k} {feature_set}"


def format_summary(outcome: SweepOutcome, settings: Settings) -> str:
    """The end-of-run summary printed to the terminal."""
    lines = [
        f"Sweep finished: {len(outcome.summary)} runs (parent run {outcome.parent_run_id})",
        "",
    ]
    lines.append(f"{'feature set':<22}{'selected k':>11}   picks by criterion")
    for name, selection in outcome.selections.items():
        several = len(outcome.selections) > 1
        marker = "  <- final model" if several and name == outcome.final_feature_set else ""
        lines.append(f"{name:<22}{selection.k:>11}   {selection.picks_text()}{marker}")
        if selection.fallback:
            lines.append(f"{'':<22}{'':>11}   note: {selection.fallback}")
    tracking = settings.tracking
    final = outcome.selections[outcome.final_feature_set]
    lines += [
        "",
        f"Selected run: {outcome.selected_run_id} ({outcome.final_feature_set}, k={outcome.selected_k},"
        f" {final.fallback or 'by ' + final.method})",
        f"Compare runs: {experiment_url(settings.mlflow_ui, outcome.experiment_id)}",
        f"  (experiment {tracking.experiment_name!r}; expand parent run {outcome.parent_run_id})",
    ]
    if sqlite_path(tracking.tracking_uri) is not None:  # a server serves its own UI
        lines.append(
            "  start the UI first, from this directory: make ui"
            f"  (or .venv/bin/mlflow ui --backend-store-uri {tracking.tracking_uri})"
        )
    return "\n".join(lines)


def format_brief(outcome: SweepOutcome) -> str:
    """One line per feature set: runs, selected k, what each criterion picks."""
    return "\n".join(
        f"Swept {name}: {int((outcome.summary['feature_set'] == name).sum())} runs, k={sel.k} "
        f"({sel.picks_text()})"
        for name, sel in outcome.selections.items()
    )


@known_keys("custseg-sweep")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-sweep")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: typed config in, sweep run, summary out."""
    quiet_console()
    settings = to_settings(cfg)
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    with stop_on_sigterm():
        outcome = run_sweep(settings)
    # inside `dvc repro` (DVC_STAGE is set) one line per sweep; the publish stage links the UI
    in_pipeline = bool(os.environ.get("DVC_STAGE"))
    print(format_brief(outcome) if in_pipeline else format_summary(outcome, settings))


if __name__ == "__main__":
    main()
