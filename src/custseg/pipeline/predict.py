"""Entry point ``custseg-predict``: score a CSV of new customers with the champion model.

Run from the project root::

    custseg-predict predict.input=new_customers.csv   # -> scores/new_customers.scored.csv
    custseg-predict predict.input=new_customers.csv predict.output=scored.csv
    custseg-predict predict.input=new.csv predict.model_uri=models:/customer-segmentation/3
    custseg-predict predict.input=new.csv predict.model_uri=models/segmentation.json   # DVC output

The input is validated exactly like the training data (``conf/data``); it may be a CSV or
a Parquet table (``*.parquet``). With ``engine=spark`` it is validated and scored in Spark
and the output is Parquet (the validated columns under their canonical names, then
``segment``, ``segment_name`` and ``persona``, in input order; no ``predict.rejects``). With
``pipeline=transactions`` the input is a transaction log (``conf/transactions``): it is
validated as one, each customer's RFM values are computed as of ``predict.as_of`` (default:
the log's last date) and the output has one row per customer, with those values. The output holds
every input row in input order with every original column exactly as written, plus
``segment`` (the cluster id) and, when the model carries segment names, ``segment_name``.
It is written to a temporary file and moved into place, so it appears only when complete.
With ``predict.rejects=<csv>``, rows that cannot be scored (bad values, or outside the
model's ranges and allowed values) go to that file with their file line and reasons, and
the other rows are scored; without it, one bad row fails the batch and nothing is written.
Without ``predict.output`` it goes to ``predict.output_dir`` (``scores/``, ignored by git),
so scored customers do not land next to the input or in the repository.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig

from custseg.backends import backend_of
from custseg.backends.base import ScoreBatch
from custseg.config import CONF_DIR, ConfigError, DataConfig, Settings, to_settings
from custseg.domain.segment_model import (
    PERSONA_COLUMN,
    SEGMENT_COLUMN,
    SEGMENT_NAME_COLUMN,
    SegmentModel,
)
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import known_keys
from custseg.storage.data import (
    DataValidationError,
    Rejects,
    batch_config,
    is_parquet,
    load_customers,
    load_customers_with_rejects,
    parquet_text,
    parse_csv,
    require_input,
    source_sha256,
    write_csv_atomic,
)
from custseg.storage.outputs import read_segment_model
from custseg.storage.transactions import LogCustomers, log_customers
from custseg.tracking.access import access_refused
from custseg.tracking.registry import (
    ModelNotFoundError,
    PromotionError,
    champion_uri,
    check_model_input,
    load_scoring_model,
    load_segment_names,
    require_store,
    segment_model_of,
)
from custseg.tracking.runs import FINGERPRINT_TAG

log = logging.getLogger(__name__)

#: the columns a rejects file adds before the raw ones: file line, reasons
REJECT_COLUMNS = ("line", "reason")


@dataclass
class PredictOutcome:
    """What one scoring job did.

    Attributes
    ----------
    counts : dict of int to int
        Customers scored per segment id.
    model_uri : str
        The model that scored.
    version : ModelVersion or None
        The registry version behind ``model_uri`` (None for runs, paths, logged models).
    output : Path
        The file written.
    notes : list of str
        Warnings for the user (no segment names; champion not the catalog's).
    rejected : DataFrame or None
        With ``predict.rejects``: the rows set aside (raw columns + ``line``, ``reason``).
    """

    counts: dict[int, int]
    model_uri: str
    version: ModelVersion | None
    output: Path
    notes: list[str] = field(default_factory=list)
    rejected: pd.DataFrame | None = None
    rejects_path: Path | None = None
    #: the batch's monitoring verdict and report (``predict.monitor``), or why none
    monitoring: str | None = None

    def summary(self) -> str:
        """One line: rows scored, model and its registry version (or that it has none),
        output path, customers per segment."""
        per_segment = ", ".join(f"{s}={n}" for s, n in sorted(self.counts.items()))
        if self.version is not None:
            version = f"version {self.version.version}"
        else:  # a run, a model directory, a logged model: no registry version behind it
            version = "no registry version"
        line = (
            f"scored {sum(self.counts.values())} customers with model {self.model_uri} ({version}) "
            f"-> {self.output}; "
            f"customers per segment: {per_segment}"
        )
        if self.rejected is not None:
            line += f"; rejected {len(self.rejected)} rows -> {self.rejects_path}"
        monitoring = [f"monitoring: {self.monitoring}"] if self.monitoring else []
        return "\n".join([line, *monitoring, *(f"note: {n}" for n in self.notes)])


def output_path(settings: Settings) -> Path:
    """``predict.output``, or ``<predict.output_dir>/<input stem>.scored.csv``
    (``.parquet`` with ``engine=spark``)."""
    source = Path(str(settings.predict.input))
    if settings.predict.output:
        return Path(settings.predict.output)
    suffix = backend_of(settings.engine).output_suffix
    return Path(settings.predict.output_dir) / f"{source.stem}.scored{suffix}"


def model_uri(settings: Settings) -> str:
    """``predict.model_uri``, or the registered model at ``tracking.alias``."""
    tracking = settings.tracking
    return settings.predict.model_uri or champion_uri(
        tracking.registered_model_name, tracking.alias
    )


def run_predict(settings: Settings) -> PredictOutcome:
    """Validate ``predict.input``, score it with the model and write ``predict.output``.

    Returns
    -------
    PredictOutcome
        The scored table, the model URI and version, and the output path.

    Raises
    ------
    ConfigError
        If ``predict.input`` is not set or the output would overwrite the input.
    custseg.storage.data.DataValidationError
        If the input breaks the data schema (every problem listed).
    custseg.tracking.registry.ModelNotFoundError
        If the model (registered model, alias, version, store) does not exist.
    ValueError
        If the model cannot score the table, or the input already has a ``segment``
        or ``segment_name`` column (it would be overwritten).

    Nothing is written when any of these is raised, except the rejects file when
    ``predict.rejects`` is set and no row at all can be scored (the ``ValueError`` then
    names it).
    """
    if not settings.predict.input:
        raise ConfigError(
            "predict.input is required: custseg-predict predict.input=new_customers.csv "
            "[predict.output=scored.csv]"
        )
    source = Path(settings.predict.input)
    require_input(source, "predict.input")  # before the model: a typo is the usual miss
    output = output_path(settings)
    if output.resolve() == source.resolve():
        raise ConfigError(f"predict.output={output} would overwrite the input; choose another")

    outcome = _scored(settings, source, output)
    if settings.predict.monitor:
        outcome.monitoring = monitoring_line(settings, outcome.model_uri)
    return outcome


def monitoring_line(settings: Settings, uri: str) -> str:
    """Monitor ``predict.input`` as ``custseg-monitor`` would, with the model that scored
    it: the verdict and the report's path, or why the batch was not monitored (never an
    error: the scores are written)."""
    from custseg.pipeline.monitor import run_monitor

    monitor = dataclasses.replace(
        settings.monitor, input=settings.predict.input, model=uri, as_of=settings.predict.as_of
    )
    try:
        found = run_monitor(dataclasses.replace(settings, monitor=monitor))
    except (ConfigError, DataValidationError, ModelNotFoundError, ValueError, OSError) as exc:
        return f"not monitored: {exc}"
    except Exception as exc:  # a bug in monitoring: the scores still stand
        log.warning("monitoring %s failed", settings.predict.input, exc_info=True)
        return f"not monitored: {type(exc).__name__}: {exc}"
    report = found.report
    why = f" ({report['reasons'][0]['text']})" if report["reasons"] else ""
    notes = "".join(f"; {n}" for n in found.notes)
    return f"{report['verdict']}{why} -> {found.json_path}{notes}"


def _scored(settings: Settings, source: Path, output: Path) -> PredictOutcome:
    """Score ``source`` into ``output`` on the engine, or in memory."""
    if (score_batch := backend_of(settings.engine).score_batch) is not None:
        return _score_in_engine(settings, source, output, score_batch)
    if settings.transactions is not None:
        if settings.predict.rejects:
            raise ConfigError(
                "predict.rejects applies to a customer table; a transaction log is validated "
                "as a whole (every bad line is named): fix the lines, or drop predict.rejects"
            )
        with tempfile.TemporaryDirectory(prefix="custseg-predict-") as tmp:
            customers = log_customers(
                source, settings.transactions, settings.data, settings.predict.as_of
            )
            table_path = Path(tmp) / f"{source.stem}.customers.csv"
            write_csv_atomic(customers.table, table_path)
            outcome = _score(settings, table_path, output)
        outcome.notes.insert(0, _log_note(source, customers))
        return outcome
    return _score(settings, source, output)


def _log_note(source: Path, customers: LogCustomers) -> str:
    """What scoring a transaction log scored: customers as of a day, what was left out."""
    s = customers.summary()
    note = (
        f"{source} is a transaction log: {s['n_transactions']} transactions scored as "
        f"{s['n_customers']} customers on their RFM values as of {s['as_of']}"
    )
    if s["after_as_of"] or s["without_purchase"]:
        note += (
            f" (left out: {s['after_as_of']} transactions after it, "
            f"{s['without_purchase']} customers with no purchase)"
        )
    return note


def _score(settings: Settings, source: Path, output: Path) -> PredictOutcome:
    """Validate the customer table ``source``, score it and write ``output``."""
    data = dataclasses.replace(settings.data, path=str(source))
    rejects_path = Path(settings.predict.rejects) if settings.predict.rejects else None
    if rejects_path is not None and rejects_path.resolve() in (source.resolve(), output.resolve()):
        raise ConfigError(f"predict.rejects={rejects_path} would overwrite the input or output")
    uri = model_uri(settings)
    if uri.startswith(("models:/", "runs:/")):
        require_store(settings.tracking.tracking_uri)
        mlflow.set_tracking_uri(settings.tracking.tracking_uri)
    model, version = load_scoring_model(uri)
    # the model's columns are required, the schema's others validated when present
    data = batch_config(data, _required_columns(model, settings, uri))
    if rejects_path is None:
        table, info = load_customers(data)
        none = np.empty(0, dtype=int)
        rejects = Rejects(none, none, [], none)
    else:
        table, info, rejects = load_customers_with_rejects(data)
    raw = _raw_rows(source, info.sha256, len(table) + len(rejects), settings.data)
    added = [SEGMENT_COLUMN, SEGMENT_NAME_COLUMN, PERSONA_COLUMN]
    added += [*REJECT_COLUMNS] if rejects_path is not None else []
    taken = [c for c in added if c in raw.columns]
    if taken:
        raise ValueError(
            f"{source} already has column(s) {taken}, which the output adds; rename or drop "
            "them (no input column is overwritten)"
        )
    valid = np.setdiff1d(np.arange(len(raw)), rejects.rows)
    if rejects_path is not None:
        table, valid, rejects = _reject_outside_model(model, table, valid, rejects, uri)
    rejected = _rejected_rows(raw, rejects) if rejects_path is not None else None
    if rejected is not None and table.empty:
        write_csv_atomic(rejected, rejects_path)
        raise ValueError(
            f"no row of {source} can be scored: all {len(rejected)} rows are in {rejects_path}"
        )
    try:
        labels = check_model_input(model, table, f"model {uri}")
    except PromotionError as exc:
        raise ValueError(f"cannot score {source}: {exc}") from exc

    scored = raw.iloc[valid].reset_index(drop=True)
    scored[SEGMENT_COLUMN] = labels
    names = load_segment_names(model)
    notes = []
    if names is not None:
        scored[SEGMENT_NAME_COLUMN] = [names.get(int(label), "") for label in labels]
    else:
        notes.append(f"the model carries no segment names: no {SEGMENT_NAME_COLUMN} column")
    if (personas := load_segment_names(model, "personas")) is not None:
        scored[PERSONA_COLUMN] = [personas.get(int(label), "") for label in labels]
    if (note := _catalog_note(settings, version)) is not None:
        notes.append(note)
    write_csv_atomic(scored, output)
    if rejected is not None:
        write_csv_atomic(rejected, rejects_path)
    counts = {int(s): int(n) for s, n in scored[SEGMENT_COLUMN].value_counts().items()}
    return PredictOutcome(counts, uri, version, output, notes, rejected, rejects_path)


def _required_columns(model, settings: Settings, uri: str) -> list[str]:
    """The columns a batch must have: a custseg model's inputs, else the whole schema."""
    try:
        return segment_model_of(model, f"model {uri}").columns
    except PromotionError:  # not a custseg model: its inputs are not known here
        return list(settings.data.columns)


def _score_in_engine(
    settings: Settings, source: Path, output: Path, score_batch: ScoreBatch
) -> PredictOutcome:
    """Score the customer table ``source`` in the engine (``engine=spark``), with the model
    loaded once the engine has validated the table."""
    uri = model_uri(settings)
    loaded: dict[str, int | None] = {}

    def model() -> SegmentModel:
        if uri.startswith(("models:/", "runs:/")):
            require_store(settings.tracking.tracking_uri)
            mlflow.set_tracking_uri(settings.tracking.tracking_uri)
        pyfunc, loaded["version"] = load_scoring_model(uri)
        try:
            return segment_model_of(pyfunc, f"model {uri}")
        except PromotionError as exc:
            raise ValueError(f"cannot score {source}: {exc}") from exc

    counts = score_batch(settings, source, output, model)
    version = loaded["version"]
    notes = [n] if (n := _catalog_note(settings, version)) is not None else []
    return PredictOutcome(counts, uri, version, output, notes)


def _reject_outside_model(
    model, table: pd.DataFrame, valid: np.ndarray, rejects: Rejects, uri: str
) -> tuple[pd.DataFrame, np.ndarray, Rejects]:
    """Move the rows the model refuses (outside its ranges or allowed values, when it
    carries them) from ``table`` to ``rejects``; ``valid`` are the raw rows of ``table``."""
    try:
        segments = segment_model_of(model, f"model {uri}")
    except PromotionError:  # not a custseg model: it checks nothing more
        return table, valid, rejects
    problems = segments.input_problems(table)
    if problems.empty:
        return table, valid, rejects
    positions = problems.index.to_numpy()
    rows = np.concatenate([rejects.rows, valid[positions]])
    lines = np.concatenate([rejects.lines, rejects.kept_lines[positions]])
    reasons = [*rejects.reasons, *(f"the model's schema: {why}" for why in problems)]
    keep = np.setdiff1d(np.arange(len(table)), positions)
    moved = Rejects(rows, lines, reasons, rejects.kept_lines[keep])
    return table.iloc[keep].reset_index(drop=True), valid[keep], moved


def _rejected_rows(raw: pd.DataFrame, rejects: Rejects) -> pd.DataFrame:
    """The rejected rows as written, with their file ``line`` and ``reason``, by line."""
    rejected = raw.iloc[rejects.rows].reset_index(drop=True)
    rejected.insert(0, REJECT_COLUMNS[1], rejects.reasons)
    rejected.insert(0, REJECT_COLUMNS[0], rejects.lines)
    return rejected.sort_values(REJECT_COLUMNS[0], kind="stable").reset_index(drop=True)


def _catalog_note(settings: Settings, version: ModelVersion | None) -> str | None:
    """A warning when the version scoring as the champion is not the catalog's champion."""
    tracking = settings.tracking
    if version is None or tracking.alias not in (version.aliases or []):
        return None
    catalog = read_segment_model(settings.catalog.path, missing_ok=True)
    if catalog is None or version.tags.get(FINGERPRINT_TAG) == catalog.fingerprint:
        return None
    return (
        f"@{tracking.alias} (version {version.version}) is not the champion recorded in "
        f"{settings.catalog.path}: run `make run` (or custseg-publish) to bring the registry "
        "in line, or promote it (custseg promote) to update the catalog"
    )


def _raw_rows(path: Path, sha256: str, n_rows: int, config: DataConfig) -> pd.DataFrame:
    """The input's data rows as text, exactly as written, aligned with the validated table.

    Parsed by the same reader as :func:`~custseg.storage.data.load_customers` (so blank lines
    are dropped the same way); the hash guards against the file changing in between.
    """
    if is_parquet(path):  # its columns as the validation read them (text)
        if source_sha256(path) != sha256:
            raise DataValidationError(str(path), ["the table changed while it was being read"])
        raw = parquet_text(str(path))
    else:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DataValidationError(str(path), ["the file changed while it was being read"])
        raw = parse_csv(str(path), data, config).reset_index(drop=True)
    if len(raw) != n_rows:  # cannot happen with the shared reader; never misalign labels
        raise RuntimeError(f"{path}: read {len(raw)} rows but validated {n_rows}")
    return raw


@known_keys("custseg-predict")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: typed config in, scored CSV and a one-line summary out."""
    quiet_console()
    try:
        outcome = run_predict(to_settings(cfg))
    except (ConfigError, DataValidationError, ModelNotFoundError, ValueError, OSError) as exc:
        print(f"custseg-predict: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except mlflow.exceptions.MlflowException as exc:  # a tracking server's 401 or 403
        if (message := access_refused(exc)) is None:
            raise
        print(f"custseg-predict: error: {message}", file=sys.stderr)
        sys.exit(1)
    print(outcome.summary())


if __name__ == "__main__":
    main()
