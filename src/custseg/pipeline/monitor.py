"""Entry point ``custseg-monitor``: are a batch's customers still like the ones the model
was trained on? Which named segment moved, and should marketing ask for a new segmentation?

Run from the project root::

    custseg-monitor monitor.input=new_customers.csv           # against @champion
    custseg-monitor monitor.input=new.csv monitor.fail_on=resegment   # exit 3 for schedulers
    custseg-monitor monitor.input=new.csv monitor.model=models/segmentation.json
    custseg-monitor pipeline=transactions monitor.input=orders.csv monitor.as_of=2026-06-30

The batch is validated as the training data (``conf/data``), but may lack the columns the
model does not read; rows that break the schema or the model's ranges are refused and
counted, the others scored with the model and compared with the reference profile
registered with it (``models/reference.json``). Writes ``<monitor.output_dir>/<input
stem>.json`` (the same bytes for the same model and batch) and a self-contained
``.html`` page next to it, logs a run to the ``<experiment>-monitoring`` experiment and
tags the model version with the verdict (a failure to log only warns). The verdict's
rules are in :mod:`custseg.domain.monitoring.verdict` and ``docs/monitoring.md``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import mlflow
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig

from custseg.backends import backend_of
from custseg.config import CONF_DIR, ConfigError, Settings, to_settings
from custseg.domain.monitoring.batch import BatchCounts
from custseg.domain.monitoring.reference import REFERENCE_FORMAT
from custseg.domain.monitoring.rules import INSUFFICIENT, VERDICTS
from custseg.domain.monitoring.verdict import assess
from custseg.domain.segment_model import SegmentModel
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.reporting.monitoring import monitoring_html
from custseg.storage.data import require_input, source_sha256, write_csv_atomic
from custseg.storage.outputs import write_json_atomic, write_text_atomic
from custseg.storage.paths import MODEL_FILE, REFERENCE_FILE
from custseg.storage.transactions import log_customers
from custseg.tracking.monitoring import log_monitoring
from custseg.tracking.registry import (
    ModelNotFoundError,
    PromotionError,
    champion_uri,
    load_scoring_model,
    require_store,
    segment_model_of,
)

#: the exit status of a verdict at or above ``monitor.fail_on``
FAIL_STATUS = 3


@dataclass
class MonitorOutcome:
    """What one monitoring job found and wrote."""

    report: dict[str, Any]
    json_path: Path
    html_path: Path
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines: the verdict and why, then both paths."""
        r = self.report
        refused = r["quality"]["refused"]["rows"]
        lines = [
            f"{r['batch']['file']}: {r['verdict']} ({r['customers']} customers"
            f"{f', {refused} rows refused' if refused else ''}, model "
            f"{r['model']['uri']}{_version_text(r['model']['version'])})"
        ]
        lines += [f"  {reason['level']}: {reason['text']}" for reason in r["reasons"]]
        lines.append(f"report: {self.json_path} and {self.html_path}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def failed(self, fail_on: str | None) -> bool:
        """Whether the verdict reaches ``fail_on`` (never for ``insufficient``)."""
        verdict = self.report["verdict"]
        if fail_on is None or verdict == INSUFFICIENT:
            return False
        return VERDICTS.index(verdict) >= VERDICTS.index(fail_on)


def _version_text(version: str | None) -> str:
    return f", version {version}" if version else ""


def model_uri(settings: Settings) -> str:
    """``monitor.model``, or the registered model at ``tracking.alias``."""
    tracking = settings.tracking
    return settings.monitor.model or champion_uri(tracking.registered_model_name, tracking.alias)


def monitored_model(
    uri: str, settings: Settings
) -> tuple[SegmentModel, ModelVersion | None, dict[str, Any]]:
    """The model at ``uri``, its registry version and its reference profile.

    Raises
    ------
    ModelNotFoundError
        If the model does not resolve, or has no reference profile (registered before
        custseg kept one), or one of another model.
    """
    if uri.startswith(("models:/", "runs:/")):
        require_store(settings.tracking.tracking_uri)
        mlflow.set_tracking_uri(settings.tracking.tracking_uri)
    pyfunc, version = load_scoring_model(uri)
    try:
        model = segment_model_of(pyfunc, f"model {uri}")
    except PromotionError as exc:
        raise ModelNotFoundError(str(exc)) from exc
    if uri.endswith(".json"):  # a description: its profile is the file beside it
        beside = Path(uri).with_name(REFERENCE_FILE.name)
        text = beside.read_text(encoding="utf-8") if beside.is_file() else None
    else:
        text = getattr(pyfunc.unwrap_python_model(), "reference", None)
    if text is None:
        raise ModelNotFoundError(
            f"model {uri} has no reference profile (it was registered before custseg kept one "
            "with each model, or from the catalog without its training data), so there is "
            f"nothing to compare a batch with: pass monitor.model={MODEL_FILE} (the model "
            "`make run` fitted on this data, its profile beside it), or promote a version "
            "registered with one (custseg promote)"
        )
    reference = _checked_reference(text, model, uri)
    return model, version, reference


def _checked_reference(text: str, model: SegmentModel, uri: str) -> dict[str, Any]:
    reference = json.loads(text)
    if reference.get("format") != REFERENCE_FORMAT:
        raise ModelNotFoundError(
            f"model {uri}'s reference profile has format {reference.get('format')!r}; this "
            f"custseg reads format {REFERENCE_FORMAT}: update custseg or re-register the model"
        )
    if reference.get("fingerprint") != model.fingerprint:
        raise ModelNotFoundError(
            f"the reference profile beside {uri} describes another model (fingerprint "
            f"{str(reference.get('fingerprint'))[:12]}, the model's {model.fingerprint[:12]}): "
            "rerun the pipeline (dvc repro) so both come from one selection"
        )
    return reference


def count_batch(
    settings: Settings, source: Path, model: SegmentModel, reference: dict[str, Any]
) -> tuple[BatchCounts, str, dict[str, Any]]:
    """The batch's counts on the engine, the source's hash, and what was refused; a
    transaction log is first turned into its customers as of ``monitor.as_of``."""
    count = backend_of(settings.engine).count_batch
    if settings.transactions is None:
        return count(settings, source, model, reference)
    with tempfile.TemporaryDirectory(prefix="custseg-monitor-") as tmp:
        customers = log_customers(
            source, settings.transactions, settings.data, settings.monitor.as_of
        )
        table_path = Path(tmp) / f"{source.stem}.customers.csv"
        write_csv_atomic(customers.table, table_path)
        counts, _, refused = count(settings, table_path, model, reference)
    return counts, source_sha256(source), refused


#: a batch with at least this share of its rows refused is at least ``watch``
REFUSED_WATCH_SHARE = 0.05


def with_refusals(report: dict[str, Any], refused: dict[str, Any], min_rows: int) -> dict[str, Any]:
    """``report`` with the rows refused: in ``quality``, and, when they are at least
    :data:`REFUSED_WATCH_SHARE` of a batch of at least ``min_rows`` rows, a ``watch``
    reason first (refusals are drift too: values the training customers never had), also
    when too few rows are left to judge the rest."""
    report["quality"]["refused"] = refused
    total = report["customers"] + refused["rows"]
    if total < min_rows or refused["rows"] < REFUSED_WATCH_SHARE * total:
        return report
    reason = {
        "level": "watch",
        "text": f"{refused['rows']} of {total} rows ({refused['rows'] / total:.0%}) were refused "
        "(values the schema or the model does not accept: quality.refused)",
    }
    report["reasons"] = [reason, *report["reasons"]]
    if report["verdict"] in ("stable", INSUFFICIENT):
        report["verdict"] = "watch"
    return report


def output_paths(settings: Settings) -> tuple[Path, Path]:
    """``<monitor.output_dir>/<input stem>.json`` and ``.html``."""
    stem = Path(str(settings.monitor.input)).stem
    folder = Path(settings.monitor.output_dir)
    return folder / f"{stem}.json", folder / f"{stem}.html"


def run_monitor(settings: Settings) -> MonitorOutcome:
    """Score ``monitor.input`` with the model, judge its drift, write and log the report.

    Raises
    ------
    ConfigError
        If ``monitor.input`` is not set.
    custseg.storage.data.DataValidationError
        If the batch cannot be read as the schema's table (a missing model column, an
        unreadable file); bad rows are refused and counted instead.
    ModelNotFoundError
        If the model does not resolve or has no reference profile.
    """
    if not settings.monitor.input:
        raise ConfigError(
            "monitor.input is required: custseg-monitor monitor.input=new_customers.csv"
        )
    source = Path(settings.monitor.input)
    require_input(source, "monitor.input")
    uri = model_uri(settings)
    model, version, reference = monitored_model(uri, settings)
    counts, sha256, refused = count_batch(settings, source, model, reference)
    rules = settings.monitor.rules
    report = with_refusals(assess(reference, counts, rules), refused, rules.min_rows)
    report["batch"] = {"file": str(source), "sha256": sha256}
    report["model"] = {
        "uri": uri,
        "version": None if version is None else str(version.version),
        "fingerprint": model.fingerprint,
    }
    json_path, html_path = output_paths(settings)
    write_json_atomic(report, json_path)
    write_text_atomic(monitoring_html(report), html_path)
    notes = log_monitoring(report, [json_path, html_path], settings.tracking, version)
    return MonitorOutcome(report, json_path, html_path, notes)


@known_keys("custseg-monitor")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-monitor")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: the summary on stdout; exit 3 when ``monitor.fail_on`` is reached."""
    quiet_console()
    settings = to_settings(cfg)
    outcome = run_monitor(settings)
    print(outcome.summary())
    if outcome.failed(settings.monitor.fail_on):
        sys.exit(FAIL_STATUS)


if __name__ == "__main__":
    main()
