"""Entry point ``custseg-publish``: bring the MLflow registry in line with ``models/``.

The last DVC stage (and ``make run`` after ``dvc repro``). Reads the model written by
``custseg-select`` (``models/segmentation.json``) and the segment catalog
(``catalog.path``, the champion, versioned in git), then:

1. registers the model once per fingerprint: an unchanged model reuses its version; a
   new one is logged as a ``final-...`` run (params, metrics, plots, the report) and
   registered through the gate;
2. moves the aliases by one policy:

   - inside ``dvc exp run`` (``DVC_EXP_NAME`` is set): the model gets
     ``@challenger``; ``@champion`` never moves;
   - on the workspace, ``@champion`` is the catalog's model (registered if needed) and
     a model that differs from it gets ``@challenger``; with no catalog yet, the model
     becomes the champion and the catalog is written (commit it);
   - ``custseg promote`` is the one way to make a challenger the champion;

3. writes ``status/registry.json`` (untracked): versions, run ids, aliases and MLflow UI
   links, everything that changes outside git. ``status/published.json`` records the
   fingerprints published (deterministic; DVC's output of this stage).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from custseg.backends import backend_of, open_table
from custseg.backends.base import CustomerTable
from custseg.backends.parallel import fit_limits
from custseg.config import CONF_DIR, Settings, make_data_flag, to_settings
from custseg.domain.features import transforms_label
from custseg.domain.segment_model import SegmentModel
from custseg.errors import SparkScoringError
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.storage.outputs import (
    StaleInputError,
    git_commit,
    read_json,
    read_segment_model,
    write_json_atomic,
    write_segment_model,
)
from custseg.storage.paths import (
    CHANGES_FILE,
    MODEL_FILE,
    PUBLISHED_FILE,
    REFERENCE_FILE,
    REPORT_FILES,
    SELECTION_RECORD,
    STATUS_FILE,
)
from custseg.tracking.registry import (
    PromotionError,
    champion_version,
    find_version,
    gate_and_register,
    registry_permission,
)
from custseg.tracking.registry import set_alias as move_alias
from custseg.tracking.runs import (
    FINGERPRINT_TAG,
    ROLE_TAG,
    dvc_experiment,
    fit_images,
    flat_params,
    interruptible,
    log_fit_run,
    setup_experiment,
    sqlite_path,
    stop_on_sigterm,
)


@dataclass
class Registered:
    """A model and its registry version (``created``: registered by this publish)."""

    model: SegmentModel
    version: ModelVersion
    created: bool


@dataclass
class PublishOutcome:
    """What ``custseg-publish`` did: the model's version, the aliases, the catalog."""

    registered: Registered
    experiment_id: str
    aliases: dict[str, str] = field(default_factory=dict)
    moved: list[str] = field(default_factory=list)
    catalog_written: bool = False
    notes: list[str] = field(default_factory=list)


def run_publish(settings: Settings, experiment: str | None = None) -> PublishOutcome:
    """Register ``models/`` by fingerprint, apply the alias policy, write the status files.

    Parameters
    ----------
    settings : Settings
        Typed configuration (data, tracking, catalog, report).
    experiment : str, optional
        Name of the DVC experiment this runs in (``DVC_EXP_NAME``); None on the workspace.

    Raises
    ------
    StaleInputError
        When ``models/segmentation.json`` was fitted on other data than ``data.path``.
    custseg.tracking.registry.PromotionError
        When the model fails the registration gate (nothing registered, no alias moved).
    """
    model = read_segment_model(MODEL_FILE)
    record = read_json(SELECTION_RECORD)
    with interruptible():  # may validate a large CSV: no store call yet, SIGTERM stops it
        table = open_table(settings)
    info = table.info
    if info.sha256 != model.data_sha256:
        raise StaleInputError(
            f"{MODEL_FILE} was fitted on other data than {info.path} (sha256 "
            f"{model.data_sha256[:12]} vs {info.sha256[:12]}); rerun the pipeline (dvc repro)"
        )
    catalog = read_segment_model(settings.catalog.path, missing_ok=True)
    tracking = settings.tracking
    experiment_id = setup_experiment(
        tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
    )
    with registry_permission(tracking.registered_model_name):
        registered = ensure_registered(model, table, settings, experiment_id, record)
        if registered.created:  # a run's artifacts are written once, by the publish that made it
            _log_report(registered.version.run_id, settings)
        outcome = PublishOutcome(registered, experiment_id)
        _apply_alias_policy(outcome, catalog, table, settings, experiment)
    _write_status(outcome, settings, experiment)
    return outcome


def ensure_registered(
    model: SegmentModel,
    table: CustomerTable,
    settings: Settings,
    experiment_id: str,
    record: dict[str, Any] | None = None,
    source_run_id: str | None = None,
) -> Registered:
    """The registry version of ``model``: found by fingerprint, or logged and registered.

    A new model is scored on ``table`` (the same metrics a sweep logs, on the engine that
    holds the table), logged as a ``final-<feature set>-k<k>`` run with its plots and
    registered through the gate (which scores the rows the driver holds) with the version
    tags (fingerprint, the hash of the data it was fitted on, feature set, k, selection
    method, git commit). Param ``scored_on_sha256`` when ``table`` is other data than the
    model's (e.g. for the catalog's model).
    """
    name = settings.tracking.registered_model_name
    existing = find_version(name, model.fingerprint)
    if existing is not None:
        return Registered(model, existing, created=False)
    info = table.info
    with fit_limits(), interruptible():  # as the sweep scores its fits; nothing logged yet
        scored = table.scores(model, settings.sweep.silhouette_sample_size)
    metrics = scored.metrics
    method = str((record or {}).get("method", "catalog"))
    version_tags = {
        FINGERPRINT_TAG: model.fingerprint,
        "data_sha256": model.data_sha256,
        "git_commit": git_commit() or "unknown",
        "feature_set": model.feature_set,
        "k": str(model.k),
        "selection_method": method,
    }
    params = {
        "feature_set": model.feature_set,
        "features": ",".join(model.columns),
        "k": model.k,
        # as the sweep logs it: "<column>=<kind>,..." or "none"
        "transforms": transforms_label(model.transform_kinds),
        "scaler": model.scaler,
        "selection_method": method,
        # KMeans settings and the engine are known for a model of this config only (not
        # the catalog's)
        **(flat_params("model", asdict(settings.model)) if record is not None else {}),
        **(settings.engine_params() if record is not None else {}),
        "data_sha256": model.data_sha256,
        "n_rows": info.n_rows,
    }
    if info.sha256 != model.data_sha256:
        params["scored_on_sha256"] = info.sha256
    tags = {ROLE_TAG: "final", **version_tags}
    if source_run_id:
        tags["source_run_id"] = source_run_id
    with fit_limits(), interruptible():
        images = fit_images(model, scored.rows, scored.ids, scored.silhouettes, scored.sizes)
    run_id = log_fit_run(
        model,
        images=images,
        metrics=metrics,
        run_name=f"final-{model.feature_set}-k{model.k}",
        params=params,
        tags=tags,
        experiment_id=experiment_id,
        spark_model=backend_of(settings.engine).flavour(model, settings.engine),
        reference=reference_of(model),
    )
    version = gate_and_register(run_id, name, scored.rows, version_tags, "model")
    return Registered(model, version, created=True)


def reference_of(model: SegmentModel) -> dict[str, Any] | None:
    """The reference profile ``custseg-select`` wrote for ``model`` (None for another
    model, e.g. the catalog's champion registered from the catalog)."""
    if not REFERENCE_FILE.is_file():
        return None
    reference = read_json(REFERENCE_FILE)
    return reference if reference.get("fingerprint") == model.fingerprint else None


def _log_report(run_id: str | None, settings: Settings) -> None:
    """Log the report (aggregates only) and the comparison with the champion to the run.

    The segment assignments (one row per customer) stay in DVC's outputs: customer-level
    data never goes to the tracking store.
    """
    if not run_id:
        return
    client = MlflowClient()
    out = Path(settings.report.output_dir)
    for key, file_name in REPORT_FILES.items():
        if key != "assignments" and (out / file_name).is_file():
            client.log_artifact(run_id, str(out / file_name), "report")
    if CHANGES_FILE.is_file():
        client.log_artifact(run_id, str(CHANGES_FILE), "report")
        changes = read_json(CHANGES_FILE)
        if "adjusted_rand" in changes:
            client.log_metric(run_id, "champion_adjusted_rand", float(changes["adjusted_rand"]))
            client.log_metric(run_id, "champion_moved_share", float(changes["moved_share"]))


def _apply_alias_policy(
    outcome: PublishOutcome,
    catalog: SegmentModel | None,
    table: CustomerTable,
    settings: Settings,
    experiment: str | None,
) -> None:
    """Point ``@champion`` and ``@challenger`` as the module docstring says."""
    name = settings.tracking.registered_model_name
    champion_alias = settings.tracking.alias
    challenger_alias = settings.catalog.challenger_alias
    model, version = outcome.registered.model, outcome.registered.version
    holder = champion_version(name, champion_alias)
    is_champion = holder is not None and str(holder.version) == str(version.version)

    def point(alias: str, target: ModelVersion, why: str) -> None:
        current = champion_version(name, alias)
        if current is None or str(current.version) != str(target.version):
            move_alias(name, alias, target, f"custseg-publish: {why}")
            outcome.moved.append(alias)
        outcome.aliases[alias] = str(target.version)

    if experiment:
        if not is_champion:
            point(challenger_alias, version, f"the model of dvc exp run {experiment}")
        outcome.notes.append(
            f"experiment {experiment}: @{champion_alias} does not move inside dvc exp run"
        )
    elif catalog is None:
        if holder is None:  # the project's first model: bootstrap the champion and catalog
            point(champion_alias, version, "the project's first model")
            write_segment_model(model, settings.catalog.path)
            outcome.catalog_written = True
        elif is_champion:  # a bootstrap cut short (kill -9) between the alias and the file
            write_segment_model(model, settings.catalog.path)
            outcome.catalog_written = True
        elif not is_champion:  # a lost catalog moves nothing: promote deliberately
            point(challenger_alias, version, "no catalog: not promoted")
            outcome.notes.append(
                f"{settings.catalog.path} has no champion, but @{champion_alias} exists: "
                f"promote a version (custseg promote) to record it"
            )
    elif catalog.fingerprint == model.fingerprint:
        point(champion_alias, version, f"the champion of {settings.catalog.path}")
    else:  # @champion moves to the catalog's model below
        point(challenger_alias, version, f"differs from {settings.catalog.path}")
        try:
            champion = ensure_registered(catalog, table, settings, outcome.experiment_id)
        except (PromotionError, SparkScoringError, KeyError) as exc:
            outcome.notes.append(f"the catalog's champion cannot be registered here: {exc}")
        else:
            point(champion_alias, champion.version, f"the champion of {settings.catalog.path}")
    if holder is not None and champion_alias not in outcome.aliases:
        outcome.aliases[champion_alias] = str(holder.version)


def _write_status(outcome: PublishOutcome, settings: Settings, experiment: str | None) -> None:
    """``status/registry.json`` (untracked) and ``status/published.json`` (DVC output)."""
    from custseg.tracking.ui import experiment_url, run_url

    version = outcome.registered.version
    model = outcome.registered.model
    ui = settings.mlflow_ui
    status = {
        "model_name": settings.tracking.registered_model_name,
        "version": str(version.version),
        "run_id": version.run_id,
        "fingerprint": model.fingerprint,
        "registered_now": outcome.registered.created,
        "aliases": outcome.aliases,
        "experiment": experiment,
        "tracking_uri": settings.tracking.tracking_uri,
        "experiment_id": outcome.experiment_id,
        "links": {
            "runs": experiment_url(ui, outcome.experiment_id),
            "run": run_url(ui, outcome.experiment_id, version.run_id) if version.run_id else None,
        },
        "git_commit": git_commit(),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(status, STATUS_FILE)
    write_json_atomic(
        {"fingerprint": model.fingerprint, "model_name": settings.tracking.registered_model_name},
        PUBLISHED_FILE,
    )


def _pipeline_flag(settings: Settings) -> str:
    """`` --pipeline transactions`` for the RFM pipeline's commands, else nothing."""
    return f" --pipeline {settings.pipeline}" if settings.pipeline != "mall" else ""


def format_outcome(outcome: PublishOutcome, settings: Settings) -> str:
    """The short summary printed by ``custseg-publish``."""
    from custseg.tracking.ui import experiment_url

    reg = outcome.registered
    name = settings.tracking.registered_model_name
    how = "registered" if reg.created else "already registered"
    aliases = ", ".join(f"@{a} -> version {v}" for a, v in sorted(outcome.aliases.items()))
    lines = [
        f"{name} version {reg.version.version} ({how}, fingerprint {reg.model.fingerprint[:12]}); "
        f"{aliases or 'no alias'}"
    ]
    champion_alias = settings.tracking.alias
    if outcome.aliases.get(champion_alias) != str(reg.version.version):
        lines.append(
            f"  this model is not @{champion_alias}; review reports/segments.html, then "
            f"`custseg promote --version {reg.version.version}{_pipeline_flag(settings)}` "
            f"(updates {settings.catalog.path})"
        )
    if outcome.catalog_written:
        lines.append(f"  wrote {settings.catalog.path} (the champion's segments): commit it")
    lines += [f"  note: {n}" for n in outcome.notes]
    # a local store's UI is started with make ui; a server serves its own
    make_ui = f"make ui{make_data_flag(settings.pipeline)}"
    ui_hint = f" ({make_ui})" if sqlite_path(settings.tracking.tracking_uri) is not None else ""
    lines.append(
        f"  runs: {experiment_url(settings.mlflow_ui, outcome.experiment_id)}{ui_hint}; "
        f"status: {STATUS_FILE}"
    )
    return "\n".join(lines)


@known_keys("custseg-publish")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-publish")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    quiet_console()
    settings = to_settings(cfg)
    with stop_on_sigterm():  # `kill` unwinds, so a run being logged ends FAILED
        outcome = run_publish(settings, dvc_experiment())
    print(format_outcome(outcome, settings))


if __name__ == "__main__":
    main()
