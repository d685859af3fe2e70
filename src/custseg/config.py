"""Typed configuration: the Hydra ``DictConfig`` is converted once, at the entry point.

Everything below the entry points receives these dataclasses (or plain values taken from
them) and never touches omegaconf.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.monitoring.rules import VERDICTS, DriftRules
from custseg.domain.profiling.rules import NamingRules
from custseg.domain.selection import METHODS
from custseg.domain.stability import TrustParams


def project_conf_dir() -> Path:
    """The Hydra config directory of the project the command runs in.

    Commands run from a project root (where ``data/``, ``mlflow.db`` and ``dvc.yaml`` are)
    or a pipeline folder inside it (``transactions/``), so the nearest ``conf/`` at or
    above the working directory wins; otherwise the ``conf/`` of the repository custseg
    is installed from. This keeps a scratch clone or a ``dvc exp run`` workspace on its
    own configs.
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / "config.yaml").is_file():
            return folder / "conf"
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            break  # the project root: never another project's conf/ above it
    return Path(__file__).resolve().parents[2] / "conf"


#: the config directory the entry points compose from (see :func:`project_conf_dir`)
CONF_DIR = project_conf_dir()

COLUMN_KINDS = ("id", "numeric", "categorical")


@dataclass
class ColumnSpec:
    """How one canonical column is read from the raw file and what values it may hold.

    Parameters
    ----------
    source : str
        Column name in the raw CSV (e.g. ``"Annual Income (k$)"``).
    kind : {"id", "numeric", "categorical"}
        ``id`` values must be unique and present; ``numeric`` must parse as numbers;
        ``categorical`` must be one of ``allowed`` (when given).
    min, max : float, optional
        Inclusive bounds for numeric columns.
    allowed : list of str, optional
        Allowed values of a categorical column. A value that equals one of them up to
        surrounding spaces and letter case is read as it (``" FEMALE "`` -> ``"Female"``).
    aliases : dict of str to str, optional
        Other spellings of allowed values, compared the same way (``{f: Female}``).
    """

    source: str = "???"
    kind: str = "numeric"
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    aliases: dict[str, str] | None = None


@dataclass
class DataConfig:
    """Where the customer table is and how its raw columns map to canonical names."""

    path: str = "data/customers.csv"
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    #: how the CSV is written: field delimiter, decimal mark of numbers, thousands
    #: separator in numbers (None: none), text encoding
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None
    encoding: str = "utf-8"
    #: the validated table as Parquet, written by ``custseg-validate`` for later stages
    validated: str = "validated/customers.parquet"

    @property
    def id_column(self) -> str | None:
        """The canonical name of the id column, if the schema has one."""
        return next((n for n, c in self.columns.items() if c.kind == "id"), None)

    @property
    def not_profiled(self) -> list[str]:
        """Columns no segment profile describes: the id column, if any."""
        return [self.id_column] if self.id_column else []

    def input_schema(self, numeric: list[str], categorical: list[str]) -> dict[str, dict]:
        """What a model of these input columns checks before scoring: ``limits`` (``[min,
        max]`` of each bounded numeric schema column) and ``allowed`` (values of each
        categorical schema column that lists them); keyword arguments of
        :func:`~custseg.domain.identity.identify`."""
        specs = {c: self.columns[c] for c in [*numeric, *categorical] if c in self.columns}
        return {
            "limits": {
                c: [specs[c].min, specs[c].max]
                for c in numeric
                if c in specs and (specs[c].min, specs[c].max) != (None, None)
            },
            "allowed": {
                c: [str(v) for v in specs[c].allowed]
                for c in categorical
                if c in specs and specs[c].allowed is not None
            },
        }


@dataclass(kw_only=True)
class PreprocessConfig:
    """How columns are encoded before clustering.

    Parameters
    ----------
    scaler : str
        Scaler of the numeric columns (:data:`~custseg.domain.features.SCALERS`).
    categorical_weight : float
        Distance between two categories of a categorical column, in typical (RMS) standard
        deviations of the scaled numeric columns: the same under every scaler
        (:func:`~custseg.domain.features.categorical_scale`).
    """

    scaler: str
    categorical_weight: float


@dataclass(kw_only=True)
class SweepConfig:
    """The k range and which feature sets one sweep fits."""

    k_min: int
    k_max: int
    feature_sets: list[str]
    silhouette_sample_size: int
    output_dir: str
    n_jobs: int | None = None

    @property
    def ks(self) -> list[int]:
        return list(range(self.k_min, self.k_max + 1))


@dataclass(kw_only=True)
class SelectionConfig:
    """How k is chosen and how far its segments are trusted.

    Parameters
    ----------
    method : str
        A criterion of :data:`custseg.domain.selection.CRITERIA` or ``"consensus"`` (their
        vote; see :mod:`custseg.domain.selection`).
    k : int, optional
        A k chosen by hand instead (within the swept range); None: by ``method``.
    trust : TrustParams
        How stability and the gap statistic are estimated (on a bounded sample).
    unstable_jaccard : float
        Segments whose mean Jaccard stability is below this are flagged unstable.
    seed_checks : int
        Refits of the chosen k with other seeds, compared with the model (0: none).
    """

    method: str
    k: int | None
    elbow_sensitivity: float
    trust: TrustParams
    unstable_jaccard: float
    seed_checks: int


@dataclass(kw_only=True)
class TrackingConfig:
    """Where runs and models go (``conf/tracking/``).

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking URI: ``sqlite:///mlflow.db`` (one person), or a team server's
        ``http(s)://`` URL (``tracking=server``, from ``MLFLOW_TRACKING_URI``).
    artifact_location : str, optional
        Artifact root of the experiment when this creates it (relative: to the project
        root); ``None``: the server's (proxied artifacts).
    experiment_name, registered_model_name, alias : str
        The experiment, the registered model and the alias of its champion.
    ui_port : int, optional
        Where ``make ui`` serves the local store's UI on 127.0.0.1 (each pipeline its
        own); ``None`` for a server, which serves its own.
    """

    tracking_uri: str
    artifact_location: str | None
    experiment_name: str
    registered_model_name: str
    alias: str
    ui_port: int | None

    @property
    def local_ui(self) -> str:
        """``make ui``'s base URL for this store."""
        return f"http://127.0.0.1:{self.ui_port}"


@dataclass(kw_only=True)
class CatalogConfig:
    """The segment catalog: the promoted champion's segment model, versioned in git.

    Parameters
    ----------
    path : str
        JSON description (:class:`~custseg.domain.segment_model.SegmentModel`) of the
        champion. New models keep the ids and names of the segments that match it;
        ``custseg promote`` rewrites it. Edit a name there to rename a segment.
    challenger_alias : str
        Registry alias of a model that differs from the catalog's (an experiment, or a
        workspace run not yet promoted); ``@champion`` never moves to it by itself.
    fresh : bool
        Start a new catalog: carry no segment id over from the champion (new ids
        continue above its largest), as for a new data source.
    """

    path: str
    challenger_alias: str
    fresh: bool


@dataclass(kw_only=True)
class IdentityConfig:
    """When a new model's segment continues one of the champion's
    (:mod:`custseg.domain.identity`).

    Parameters
    ----------
    min_overlap : float
        Jaccard overlap of customers (shared / in either) a new segment needs with a
        champion's segment to keep its id; in (0, 1].
    """

    min_overlap: float


@dataclass(kw_only=True)
class ReportConfig:
    """Where ``custseg-report`` writes and how it links to the MLflow UI.

    Parameters
    ----------
    output_dir : str
        Directory of ``segments.html``, ``segments.md`` and ``segment_assignments.csv``.
    metrics_file : str
        Smallest and largest segment share as JSON (``dvc metrics``).
    mlflow_ui : str, optional
        Base URL of the MLflow UI for the links the sweep and ``custseg-publish`` print and
        ``status/registry.json`` holds (see :mod:`custseg.tracking.ui`); the report itself
        holds no link (run ids are not versioned inputs). ``None``: the tracking server
        itself for an ``http(s)://`` tracking URI, else ``make ui``'s
        ``http://127.0.0.1:5000`` (see :attr:`Settings.mlflow_ui`).
    """

    output_dir: str
    metrics_file: str
    mlflow_ui: str | None = None


@dataclass(kw_only=True)
class PredictConfig:
    """What ``custseg-predict`` scores, with which model, and where the result goes.

    Parameters
    ----------
    input : str, optional
        CSV (or Parquet table) of customers to score, in the training schema
        (``data.columns``). Required by ``custseg-predict``; optional so that every other
        job composes without it.
    output : str, optional
        CSV to write (Parquet with ``engine=spark``); ``None`` means
        ``<output_dir>/<input stem>.scored.csv`` (``.parquet``).
    output_dir : str
        Directory of the default output (relative to the project root, ignored by git so
        that scored customer data stays out of the repository).
    model_uri : str, optional
        Any MLflow model URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``, a
        model directory); ``None`` means ``models:/{tracking.registered_model_name}@{tracking.alias}``.
    rejects : str, optional
        CSV for the rows that cannot be scored (bad values, or outside the model's
        ranges), each with its file line and reasons; the other rows are scored. ``None``:
        one bad row fails the whole batch and nothing is written.
    as_of : str, optional
        With a transaction log (``pipeline=transactions``): the day its RFM values
        describe (``YYYY-MM-DD``); ``None`` means the log's last date, so each customer
        gets the segment of their behaviour up to the end of the log.
    monitor : bool
        Also judge the batch's drift as ``custseg-monitor`` does (``monitor.*``: the
        report's folder, the rules); a failure to monitor never fails the scoring.
    """

    input: str | None = None
    output: str | None = None
    output_dir: str
    model_uri: str | None = None
    rejects: str | None = None
    as_of: str | None = None
    monitor: bool


@dataclass(kw_only=True)
class ReferenceConfig:
    """How the reference profile kept with a model is drawn (``monitor.reference``):
    ``sample_size`` training customers for the exact tests, ``bins`` quantile bins per
    numeric column."""

    sample_size: int
    bins: int


@dataclass(kw_only=True)
class MonitorConfig:
    """What ``custseg-monitor`` checks, against which model, and when it fails.

    Parameters
    ----------
    input : str, optional
        CSV (or Parquet table) of customers; required by ``custseg-monitor``.
    model : str, optional
        Any MLflow model URI or ``models/segmentation.json``; ``None`` means
        ``models:/{tracking.registered_model_name}@{tracking.alias}``.
    output_dir : str
        Where ``<input stem>.json`` and ``.html`` are written (ignored by git).
    as_of : str, optional
        With ``pipeline=transactions``: the day the log's RFM values describe.
    fail_on : {"watch", "resegment"}, optional
        Exit 3 when the verdict is at least this; ``None``: exit 0 whatever it is.
    reference : ReferenceConfig
        The reference profile's sample and bins.
    rules : DriftRules
        The verdict's thresholds.
    """

    input: str | None = None
    model: str | None = None
    output_dir: str
    as_of: str | None = None
    fail_on: str | None = None
    reference: ReferenceConfig
    rules: DriftRules


@dataclass(kw_only=True)
class TransactionsConfig:
    """A transaction log and how the RFM customer table is derived from it
    (``conf/transactions/``; set by ``pipeline=transactions``).

    The headers name the log's columns as they are written; ``order_id`` None means the
    log has none (every purchase line is an order). ``as_of`` is the day the RFM values
    describe, fixed in config (never "today") so a rerun gives the same table. The CSV
    format keys mean what they mean in :class:`DataConfig`.
    """

    path: str
    customer_id: str
    date: str
    amount: str
    order_id: str | None
    date_format: str
    as_of: str
    delimiter: str
    decimal: str
    thousands: str | None = None
    encoding: str


#: the clustering engines of ``conf/engine/`` (``engine.name``)
ENGINES = ("sklearn", "spark")
#: Spark settings that :class:`EngineConfig` owns: never set through ``engine.conf``
_OWNED_SPARK_KEYS = {
    "spark.master": "engine.master",
    "spark.driver.memory": "engine.driver_memory",
    "spark.sql.shuffle.partitions": "engine.partitions",
}


@dataclass(kw_only=True)
class EngineConfig:
    """Where the fits run (``conf/engine/``).

    Parameters
    ----------
    name : {"sklearn", "spark"}
        ``sklearn``: scikit-learn on this machine, the table in memory. ``spark``: Spark
        MLlib on ``master`` (see :mod:`custseg.backends.spark.engine`).
    master : str, optional
        Spark's settings (``conf/engine/spark.yaml``; None with scikit-learn). Master URL: ``local[*]`` (every core of this machine), ``local[2]``, or a
        cluster's (``spark://host:7077``, ``yarn``, ``k8s://...``).
    driver_memory : str, optional
        Heap of the driver JVM in Spark's notation (``4g``, ``512m``).
    partitions : int, optional
        Partitions the table is split into before fitting (and the shuffle partitions):
        Spark's KMeans depends on the partitioning, so it is pinned.
    conf : dict of str to str
        Any other Spark setting (``spark.executor.memory: 8g``).
    """

    name: str
    master: str | None = None
    driver_memory: str | None = None
    partitions: int | None = None
    conf: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """What is out of range, one phrase per key (empty when valid)."""
        import re

        if self.name not in ENGINES:
            return [f"name={self.name!r}; choose one of {ENGINES}"]
        spark = [("master", self.master), ("driver_memory", self.driver_memory)]
        spark.append(("partitions", self.partitions))
        unset = [key for key, value in spark if value is None] if self.name == "spark" else []
        found = [f"{key} is required by engine=spark (conf/engine/spark.yaml)" for key in unset]
        if self.master is not None and not self.master.strip():
            found.append("master is empty; e.g. local[*] or spark://host:7077")
        memory = self.driver_memory
        if memory is not None and not re.fullmatch(r"[1-9][0-9]*[kmgt]?", memory.strip().lower()):
            found.append(f"driver_memory={memory!r}: give a size such as 4g or 512m")
        if self.partitions is not None and self.partitions < 1:
            found.append(f"partitions={self.partitions} must be >= 1")
        found += [
            f"conf.{key}: set {owner} instead"
            for key, owner in _OWNED_SPARK_KEYS.items()
            if key in self.conf
        ]
        return found


@dataclass(kw_only=True)
class Settings:
    """The whole typed configuration of one custseg job."""

    data: DataConfig
    features: FeatureSet
    feature_catalog: dict[str, FeatureSet]
    preprocess: PreprocessConfig
    model: ModelParams
    sweep: SweepConfig
    selection: SelectionConfig
    tracking: TrackingConfig
    personas: NamingRules
    report: ReportConfig
    catalog: CatalogConfig
    identity: IdentityConfig
    predict: PredictConfig
    monitor: MonitorConfig
    #: the transaction log the customer table is derived from (None: the customer table
    #: is the data itself, as for the Mall table)
    transactions: TransactionsConfig | None = None
    #: which pipeline the config describes (conf/pipeline/): mall or transactions
    pipeline: str
    #: where the fits run (conf/engine/): scikit-learn (default) or Spark
    engine: EngineConfig

    def fitted_with(self, data_sha256: str) -> dict[str, Any]:
        """What a swept model depends on beyond its feature set: encoding, model settings,
        data, the naming rules its segment names came from and how its stability was
        estimated (plain JSON values)."""
        import json

        record = {
            "scaler": self.preprocess.scaler,
            "categorical_weight": self.preprocess.categorical_weight,
            "model": asdict(self.model),
            "data_sha256": data_sha256,
            "personas": asdict(self.personas),
            "trust": asdict(self.selection.trust),
        }
        if self.engine.name != "sklearn":  # absent for the default: its records stay as they were
            record["engine"] = {
                "name": self.engine.name,
                "partitions": self.engine.partitions,
                # segment names and the criteria in Python come from a sample this large
                "driver_sample_size": self.sweep.silhouette_sample_size,
            }
        return json.loads(json.dumps(record))

    def engine_params(self) -> dict[str, Any]:
        """The run parameters of the engine: ``engine`` always, and Spark's settings."""
        engine = self.engine
        if engine.name == "sklearn":
            return {"engine": engine.name}
        return {
            "engine": engine.name,
            "engine.master": engine.master,
            "engine.partitions": engine.partitions,
            "engine.driver_memory": engine.driver_memory,
            "engine.driver_sample_size": self.sweep.silhouette_sample_size,
        }

    @property
    def mlflow_ui(self) -> str:
        """Base URL of the MLflow UI: ``report.mlflow_ui``, else the tracking server (an
        ``http(s)://`` tracking URI serves the UI), else ``make ui``'s."""
        if self.report.mlflow_ui:
            return self.report.mlflow_ui
        uri = self.tracking.tracking_uri
        return uri if uri.startswith(("http://", "https://")) else self.tracking.local_ui

    def swept_feature_sets(self) -> list[FeatureSet]:
        """Feature sets of the sweep, in config order; the final model's set is always in."""
        catalog = dict(self.feature_catalog)
        catalog[self.features.name] = self.features  # command-line edits of `features` win
        names = list(self.sweep.feature_sets) or [self.features.name]
        if self.features.name not in names:
            names.append(self.features.name)
        unknown = [n for n in names if n not in catalog]
        if unknown:
            raise ConfigError(
                f"sweep.feature_sets names unknown feature set(s) {unknown}; "
                f"known: {sorted(catalog)} (one file each in conf/features/)"
            )
        return [catalog[n] for n in names]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def settings_to_yaml(settings: Settings) -> str:
    """The fully resolved configuration as YAML (logged with runs for provenance)."""
    return OmegaConf.to_yaml(OmegaConf.structured(settings))


def compose_settings(overrides: list[str] | None = None) -> Settings:
    """The project's configuration composed outside ``@hydra.main`` (CLI commands, scripts).

    Parameters
    ----------
    overrides : list of str, optional
        Hydra overrides, e.g. ``["data.path=other.csv"]``.
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_settings(compose(config_name="config", overrides=overrides or []))


def unknown_key(arguments: list[str]) -> str | None:
    """Why a command line sets a key the configuration does not have, with the close
    ones, or None (Hydra itself would only say "To append to your config use +key").

    Only ``a.b=value`` overrides are checked (not ``+a.b``, ``~a.b``, ``hydra.*`` or the
    choice of a config group such as ``engine=spark``, which Hydra names when unknown);
    they are looked up in the config composed with the command line's group choices.
    """
    from hydra import compose, initialize_config_dir

    pairs = [
        a.split("=", 1)[0] for a in arguments if "=" in a and not a.startswith(("+", "~", "-"))
    ]
    dotted = [k for k in pairs if "." in k and not k.startswith(("hydra.", "hydra/"))]
    if not dotted:
        return None
    groups = [
        a for a in arguments if "=" in a and "." not in a.split("=", 1)[0] and a[0] not in "+~-"
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=groups)
    for key in dotted:
        if problem := _missing_part(cfg, key):
            return problem
    return None


def _missing_part(cfg: DictConfig, key: str) -> str | None:
    """Why the dotted ``key`` is not in ``cfg`` (its first missing part and the close
    keys beside it), or None."""
    import difflib

    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i])
        if not isinstance(node, DictConfig):
            return f"unknown key {key!r}: {where} is a value, not a group of keys"
        if part not in node:
            names = [str(k) for k in node]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.6)
            prefix = f"{where}." if where else ""
            hint = (
                f"did you mean {' or '.join(prefix + c for c in close)}?"
                if close
                else f"{where or 'the config'} has {', '.join(names)}"
            )
            return f"unknown key {key!r}: {hint} (conf/ lists every key with its default)"
        node = node[part]
    return None


def to_settings(cfg: DictConfig | dict[str, Any]) -> Settings:
    """Validate a composed Hydra config and convert it to :class:`Settings`.

    Raises
    ------
    ConfigError
        When a key is unknown, has the wrong type, or a value is out of range.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Settings), cfg)
        settings = OmegaConf.to_object(merged)
    except Exception as exc:  # omegaconf raises several types; all mean a bad config
        if "MLFLOW_TRACKING_URI" in str(exc):  # tracking=server, and the variable unset
            raise ConfigError(
                "tracking=server needs MLFLOW_TRACKING_URI (the team server's URL, e.g. "
                "http://127.0.0.1:5055 from `make server`), with MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD; or unset CUSTSEG_TRACKING for the local store"
            ) from exc
        raise ConfigError(f"invalid configuration: {exc}") from exc
    assert isinstance(settings, Settings)
    _check(settings)
    return settings


def _spelling_problem(spec: ColumnSpec) -> str | None:
    """Why ``allowed`` and ``aliases`` cannot normalise values unambiguously, if they can't."""
    if spec.aliases and (spec.kind != "categorical" or spec.allowed is None):
        return "aliases need a categorical column with allowed values"
    allowed = [str(a) for a in spec.allowed or []]
    folded = [a.casefold() for a in allowed]
    if len(set(folded)) < len(folded):
        return f"allowed values {allowed} differ only in letter case"
    for alias, value in (spec.aliases or {}).items():
        if str(value) not in allowed:
            return f"alias {alias!r} -> {value!r}: {value!r} is not an allowed value {allowed}"
        if (
            str(alias).strip().casefold() in folded
            and str(alias).strip().casefold() != str(value).casefold()
        ):
            return f"alias {alias!r} is itself another allowed value"
    return None


def make_data_flag(pipeline: str) -> str:
    """The ``make`` argument that runs ``pipeline`` (`` DATA=transactions``; none for mall)."""
    return "" if pipeline == "mall" else f" DATA={pipeline}"


def _check_day(key: str, value: str) -> None:
    import datetime

    try:
        datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"{key}={value!r} is not a date; give the day RFM describes as YYYY-MM-DD"
        ) from None


def _check_transactions(t: TransactionsConfig, predict: PredictConfig, as_of: str | None) -> None:
    """The log's settings; ``as_of``: ``monitor.as_of``."""
    _check_day("transactions.as_of", t.as_of)
    for key, value in (("predict.as_of", predict.as_of), ("monitor.as_of", as_of)):
        if value is not None:
            _check_day(key, value)
    if "%" not in t.date_format:
        raise ConfigError(
            f"transactions.date_format={t.date_format!r} has no strftime code; e.g. "
            "'%Y-%m-%d' or '%d/%m/%Y'"
        )


def _check_engine(s: Settings) -> None:
    """The engine's own values, and what the Spark engine cannot fit (yet)."""
    if problems := s.engine.problems():
        raise ConfigError("; ".join(f"engine.{p}" for p in problems))
    if s.engine.name != "spark":
        return
    if s.model.name != "kmeans":
        raise ConfigError(f"engine=spark fits model=kmeans only, not model={s.model.name}")
    if s.preprocess.scaler != "standard":
        raise ConfigError(
            f"engine=spark scales with preprocess.scaler=standard only, not {s.preprocess.scaler!r}"
        )
    for fs in s.swept_feature_sets():
        if fs.active_transforms:
            raise ConfigError(
                f"engine=spark clusters untransformed columns only; feature set {fs.name!r} "
                f"has transforms {fs.active_transforms}: leave it out of sweep.feature_sets "
                "(and features), or fit it with engine=sklearn (make run ENGINE=sklearn)"
            )


def _monitor_problems(m: MonitorConfig) -> list[str]:
    """What is out of range in ``monitor``."""
    problems = []
    if m.fail_on is not None and m.fail_on not in VERDICTS[1:]:
        problems.append(f"fail_on={m.fail_on!r}: choose {' or '.join(VERDICTS[1:])}, or null")
    if m.reference.sample_size < 2 or m.reference.bins < 2:
        problems.append("reference.sample_size and reference.bins must be >= 2")
    r = m.rules
    if not 0 < r.alpha < 1 or not 0 < r.resegment_columns_share <= 1:
        problems.append("rules.alpha must be in (0, 1) and rules.resegment_columns_share in (0, 1]")
    if r.psi_watch > r.psi_resegment or r.share_points_watch > r.share_points_resegment:
        problems.append("rules: a watch threshold cannot exceed its resegment threshold")
    if r.min_rows < 1:
        problems.append(f"rules.min_rows={r.min_rows} must be >= 1")
    return problems


def _check(s: Settings) -> None:
    from custseg.domain.features import SCALERS

    if problems := s.personas.problems():
        raise ConfigError("; ".join(f"personas.{p}" for p in problems))
    if not 0 < s.identity.min_overlap <= 1:
        raise ConfigError(f"identity.min_overlap={s.identity.min_overlap} must be in (0, 1]")
    if s.preprocess.scaler not in SCALERS:
        raise ConfigError(f"preprocess.scaler={s.preprocess.scaler!r}; choose one of {SCALERS}")
    if s.selection.method not in METHODS:
        raise ConfigError(f"selection.method={s.selection.method!r}; choose one of {METHODS}")
    if problems := s.selection.trust.problems():
        raise ConfigError("; ".join(f"selection.trust.{p}" for p in problems))
    if not 0 <= s.selection.unstable_jaccard <= 1 or s.selection.seed_checks < 0:
        raise ConfigError(
            "selection.unstable_jaccard must be in [0, 1] and selection.seed_checks >= 0"
        )
    forced = s.selection.k
    if forced is not None and not s.sweep.k_min <= forced <= s.sweep.k_max:
        raise ConfigError(
            f"selection.k={forced} is outside the swept k = {s.sweep.k_min}..{s.sweep.k_max}: "
            "choose a k in the range, or widen sweep.k_min / sweep.k_max"
        )
    if not 2 <= s.sweep.k_min <= s.sweep.k_max:
        raise ConfigError(
            f"need 2 <= sweep.k_min <= sweep.k_max, got k_min={s.sweep.k_min}, "
            f"k_max={s.sweep.k_max}"
        )
    if problems := s.model.problems():
        raise ConfigError("; ".join(f"model.{p}" for p in problems))
    if s.preprocess.categorical_weight < 0:
        raise ConfigError(
            f"preprocess.categorical_weight={s.preprocess.categorical_weight} must be >= 0"
        )
    if s.preprocess.categorical_weight == 0:
        only = [fs.name for fs in s.swept_feature_sets() if fs.categorical and not fs.numeric]
        if only:
            raise ConfigError(
                f"preprocess.categorical_weight=0 leaves nothing to cluster in feature set(s) "
                f"{only}, which have only categorical columns"
            )
    if s.sweep.n_jobs is not None and s.sweep.n_jobs < 1:
        raise ConfigError(
            f"sweep.n_jobs={s.sweep.n_jobs}: give a number of processes >= 1, or null for one "
            "per core"
        )
    local = not s.tracking.tracking_uri.startswith(("http://", "https://"))
    if local and not (s.tracking.ui_port and 0 < s.tracking.ui_port < 65536):
        raise ConfigError(
            f"tracking.ui_port={s.tracking.ui_port}: a local store needs the port `make ui` "
            "serves its UI on (1-65535)"
        )
    if problems := _monitor_problems(s.monitor):
        raise ConfigError("; ".join(f"monitor.{p}" for p in problems))
    if s.transactions is not None:
        _check_transactions(s.transactions, s.predict, s.monitor.as_of)
    _check_engine(s)
    for name, spec in s.data.columns.items():
        if spec.kind not in COLUMN_KINDS:
            raise ConfigError(
                f"data.columns.{name}.kind={spec.kind!r}; choose one of {COLUMN_KINDS}"
            )
        if problem := _spelling_problem(spec):
            raise ConfigError(f"data.columns.{name}: {problem}")
    known = set(s.data.columns)
    for fs in s.swept_feature_sets():
        if problems := fs.problems():
            raise ConfigError("; ".join(f"feature set {fs.name!r}: {p}" for p in problems))
        missing = [c for c in fs.columns if c not in known]
        if missing:
            raise ConfigError(
                f"feature set {fs.name!r} uses {missing}, which data.columns does not define"
            )
        if s.model.name == "kprototypes" and fs.categorical and not fs.numeric:
            raise ConfigError(
                f"model=kprototypes needs a numeric column; feature set {fs.name!r} has only "
                f"categorical ones {fs.categorical}"
            )
        wrong = [c for c in fs.numeric if s.data.columns[c].kind != "numeric"]
        wrong += [c for c in fs.categorical if s.data.columns[c].kind != "categorical"]
        if wrong:
            raise ConfigError(f"feature set {fs.name!r}: columns {wrong} have the wrong kind")
