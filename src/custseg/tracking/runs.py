"""MLflow tracking: the experiment, a parent run per sweep and a child run per fit."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from custseg.domain.clustering import SilhouetteSample, centroids_in_original_units
from custseg.domain.segment_model import ARTIFACT_KEY, REFERENCE_KEY, SegmentModel
from custseg.errors import SparkScoringError
from custseg.tracking.ui import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: what a logged model needs to load and score (its code is numpy and pandas only);
#: given explicitly because letting MLflow infer it costs seconds per model
MODEL_REQUIREMENTS = tuple(f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "pandas", "numpy"))

ROLE_TAG = "custseg.role"
#: tags of the process that opened a run: a RUNNING run whose process is gone was killed
HOST_TAG, PID_TAG, PROCESS_START_TAG = "custseg.host", "custseg.pid", "custseg.process_start"
#: why a run was marked KILLED by a later job
STALE_TAG = "custseg.stale"
#: run (and model version) tag holding :attr:`SegmentModel.fingerprint`
FINGERPRINT_TAG = "fingerprint"

#: the models-from-code file and the scoring module shipped with every model (located,
#: not imported: the code file registers a model with MLflow when it runs)
_PYFUNC_CODE = Path(str(find_spec("custseg.tracking.pyfunc_model").origin))
_SEGMENT_MODEL_CODE = Path(str(find_spec("custseg.domain.segment_model").origin))


def setup_experiment(tracking_uri: str, experiment_name: str, artifact_location: str | None) -> str:
    """Point MLflow at ``tracking_uri`` and return the id of ``experiment_name``.

    Creates the store and the experiment if needed (once, before any parallel work: two
    processes creating a fresh sqlite store at once fail on its schema migration). A
    relative ``artifact_location`` is taken from the current directory; ``None`` leaves
    it to the server (proxied artifacts). The experiment is
    tagged ``mlflow.experimentKind=custom_model_development`` (also an existing one that
    lacks the tag); the MLflow 3.17 UI still needs the link of
    :func:`custseg.tracking.ui.experiment_url` to open it on its runs.
    """
    mlflow.set_tracking_uri(tracking_uri)
    with store_lock(tracking_uri):
        client = MlflowClient()
        experiment_id = _experiment_id(client, tracking_uri, experiment_name, artifact_location)
    if killed := close_stale_runs(client, experiment_id):
        log.warning(
            "marked %d run(s) KILLED: the process that opened them on this host ended without "
            "closing them (kill -9, a crash, a power cut): %s",
            len(killed),
            ", ".join(killed),
        )
    return experiment_id


#: set by DVC for the stages of ``dvc exp run``: the experiment's name
EXPERIMENT_ENV = "DVC_EXP_NAME"
#: the tag of every run logged inside ``dvc exp run``: the DVC experiment's name
DVC_EXP_TAG = "custseg.dvc_exp"


def dvc_experiment() -> str | None:
    """The name DVC gives the experiment this process runs in, or None on the workspace."""
    return os.environ.get(EXPERIMENT_ENV) or None


def process_tags() -> dict[str, str]:
    """Host, process id and process start time of this process (to tell a run left
    RUNNING by a dead process from one still open by a live process), and inside ``dvc
    exp run`` the experiment's name (:data:`DVC_EXP_TAG`), to find its runs in MLflow."""
    pid = os.getpid()
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PROCESS_START_TAG: _started(pid)}
    if (experiment := dvc_experiment()) is not None:
        tags[DVC_EXP_TAG] = experiment
    return tags


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc; "" elsewhere): a
    reused process id has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime


def _process_gone(tags: Mapping[str, str]) -> bool:
    """Whether the process named by a run's tags has ended; False when unsure (another
    host, or no tags: a teammate's or another tool's run is never touched)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    started = tags.get(PROCESS_START_TAG, "")
    return bool(started) and _started(pid) not in ("", started)


def close_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment_id`` whose process (on this host) has
    ended, tagged with why; returns their ids. Runs of live processes are left alone."""
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    killed = []
    for run in running:
        if not _process_gone(run.data.tags):
            continue
        client.set_tag(
            run.info.run_id,
            STALE_TAG,
            f"process {run.data.tags[PID_TAG]} on {run.data.tags[HOST_TAG]} ended without "
            f"closing this run; marked KILLED by process {os.getpid()}",
        )
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        killed.append(run.info.run_id)
    return killed


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """For a local sqlite store: hold an exclusive lock while the store is created or
    migrated (MLflow's schema migration fails when two processes run it at once), and
    switch a new store to write-ahead logging, so readers (``mlflow ui``, a teammate's
    query) never block a writer ("database is locked"). Other stores: no-op.

    The lock is a file in the temporary directory named after the database's path (not
    next to it: the project stays free of it; read-only, so any user may take it).
    """
    db = sqlite_path(tracking_uri)
    if db is None:
        yield
        return
    import fcntl
    import hashlib

    db.parent.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(str(db).encode("utf-8")).hexdigest()[:16]
    fd = os.open(
        Path(tempfile.gettempdir()) / f"custseg-store-{key}.lock", os.O_RDONLY | os.O_CREAT, 0o644
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
        _write_ahead_logging(db)
    finally:
        os.close(fd)  # releases the lock


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for other stores)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or tracking_uri == prefix + ":memory:":
        return None
    return Path(tracking_uri.removeprefix(prefix)).resolve()


def _write_ahead_logging(db: Path) -> None:
    """Switch ``db`` to WAL mode (persistent in the file; a no-op when already on)."""
    import sqlite3

    with sqlite3.connect(db, timeout=30) as conn:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")


def _experiment_id(
    client: MlflowClient, tracking_uri: str, experiment_name: str, artifact_location: str | None
) -> str:
    """Id of ``experiment_name``, created (and tagged) if needed."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise MlflowException(
                f"experiment {experiment_name!r} is deleted in {tracking_uri}; restore it "
                "(mlflow experiments restore) or choose another tracking.experiment_name"
            )
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before custseg tagged them
            client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )
        return experiment.experiment_id
    location = artifact_location  # None: the server's (proxied artifacts)
    if location is not None and "://" not in location:
        location = Path(location).resolve().as_uri()
    try:
        return client.create_experiment(
            experiment_name,
            artifact_location=location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    except MlflowException:  # created meanwhile by another process
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise
        return experiment.experiment_id


#: SIGTERM bookkeeping of :func:`stop_on_sigterm` (one signal handler per process)
_SIGTERM = {"pending": 0, "interruptible": False}


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (``kill``, CI time-outs, DVC cancelling) into ``SystemExit(143)``.

    Python's default SIGTERM ends the process without unwinding, which would leave MLflow
    runs RUNNING. Here it unwinds through the run context managers, which mark the runs
    FAILED; but never in the middle of a call to the tracking store (a SQLite transaction
    cut in half leaves the store locked for the clean-up): the signal takes effect at the
    next :func:`checkpoint`, at once inside :func:`interruptible` blocks (waiting for
    workers), and at the latest when the block ends. The previous handler is restored.
    """

    def _on_sigterm(signum: int, frame: object) -> None:
        if _SIGTERM["interruptible"]:
            raise SystemExit(128 + signum)
        _SIGTERM["pending"] = signum

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
        checkpoint()
    finally:
        signal.signal(signal.SIGTERM, previous)
        _SIGTERM.update(pending=0, interruptible=False)


def checkpoint() -> None:
    """Raise ``SystemExit(143)`` here if a SIGTERM arrived since (a safe point to stop)."""
    if signum := _SIGTERM["pending"]:
        _SIGTERM["pending"] = 0
        raise SystemExit(128 + signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """A block with no store call (e.g. waiting for workers): SIGTERM stops it at once."""
    checkpoint()
    _SIGTERM["interruptible"] = True
    try:
        yield
    finally:
        _SIGTERM["interruptible"] = False


def log_failed_fit_run(
    *, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str], traceback: str
) -> str:
    """Log a fit that raised as a FAILED child of the active parent run; returns its id.

    The run has the fit's params and ``tags`` (which say why), and the traceback as
    ``error.txt``, so the failure is in the MLflow UI next to the fits that worked.
    """
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("a nested fit run needs an active parent run (use parent_run)")
    tags = {**process_tags(), **tags}
    with mlflow.start_run(
        experiment_id=parent.info.experiment_id, run_name=run_name, nested=True, tags=tags
    ) as run:
        mlflow.log_params(dict(params))
        mlflow.log_text(traceback, "error.txt")
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
    checkpoint()
    return run.info.run_id


@contextmanager
def parent_run(experiment_id: str, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """Start the parent run of a sweep; yields its id.

    Ends FINISHED on success. On any exception (or Ctrl-C) the run and any child still
    open are marked FAILED, so nothing is left RUNNING, and the exception propagates.
    """
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags={ROLE_TAG: "sweep", **process_tags(), **tags},
    ) as run:
        try:
            yield run.info.run_id
            checkpoint()  # a SIGTERM during the last store calls still fails the parent
        except BaseException:
            while (active := mlflow.active_run()) and active.info.run_id != run.info.run_id:
                mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            raise


def flat_params(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": 1}`` with prefix ``"model"`` -> ``{"model.a": 1}``."""
    return {f"{prefix}.{key}": value for key, value in values.items()}


def log_segment_model(
    model: SegmentModel,
    name: str = "model",
    pip_requirements: list[str] | None = list(MODEL_REQUIREMENTS),  # noqa: B006 (read only)
    spark_model: Any = None,
    reference: Mapping[str, Any] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log ``model`` as the active run's MLflow model (pyfunc from code, no pickle).

    The model directory holds the JSON description (artifact ``segment_model``), the
    scoring code (:mod:`custseg.tracking.pyfunc_model` and :mod:`custseg.domain.segment_model`),
    a column signature, one synthetic row per segment as input example (never a
    customer's row) and, as metadata, the segment names and the model's fingerprint.
    ``pip_requirements=None`` lets MLflow infer them (seconds per model; for benchmarks).
    With ``spark_model`` (a Spark ML ``PipelineModel`` scoring the same segments:
    :func:`custseg.backends.spark.scoring.scoring_pipeline`) the directory also has MLflow's
    ``spark`` flavour: ``mlflow.spark.load_model`` scores a large table in Spark, while
    ``mlflow.pyfunc.load_model`` still loads the light pyfunc, without Spark. With
    ``reference`` (the model's reference profile) the directory has it as artifact
    ``reference_profile``, which ``custseg-monitor`` compares batches with.
    Returns MLflow's description of the logged model (its ``model_id`` links metrics).
    """
    with _pyfunc_arguments(model, pip_requirements, reference) as arguments:
        if spark_model is None:
            return mlflow.pyfunc.log_model(name=name, **arguments)
        metadata = arguments.pop("metadata")
        flavour = _PyfuncWithSpark(spark_model)
        return mlflow.models.Model.log(
            artifact_path=None, name=name, flavor=flavour, metadata=metadata, **arguments
        )


class _PyfuncWithSpark:
    """A flavour module for ``mlflow.models.Model.log``: the light pyfunc model, and the
    Spark ML pipeline saved beside it as MLflow's ``spark`` flavour (``sparkml/``), on
    any master (:func:`custseg.backends.spark.scoring.save_pipeline`)."""

    __name__ = "custseg.pyfunc+spark"
    _DATA = "sparkml"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def save_model(self, path: str, mlflow_model: mlflow.models.Model, **kwargs: Any) -> None:
        # not mlflow.spark.save_model: it imports pyspark.ml.connect, which ends the
        # process (sys.exit(0)) when __main__ has no file (python -c, pytest-xdist)
        import pyspark

        from custseg.backends.spark.scoring import save_pipeline

        mlflow.pyfunc.save_model(path, mlflow_model=mlflow_model, **kwargs)
        try:
            save_pipeline(self.pipeline, Path(path, self._DATA))
        except SparkScoringError as exc:  # the model is whole without: its pyfunc scores
            log.warning("the model has no Spark flavour (its pyfunc scores alike): %s", exc)
            return
        mlflow_model.add_flavor(
            "spark",
            pyspark_version=pyspark.__version__,
            model_data=self._DATA,
            model_class=f"{type(self.pipeline).__module__}.{type(self.pipeline).__name__}",
        )
        mlflow_model.save(os.path.join(path, "MLmodel"))


def save_segment_model(model: SegmentModel, path: str | Path) -> None:
    """Write ``model`` as an MLflow model directory at ``path`` (as :func:`log_segment_model`)."""
    with _pyfunc_arguments(model, list(MODEL_REQUIREMENTS)) as arguments:
        mlflow.pyfunc.save_model(str(path), **arguments)


@contextmanager
def _pyfunc_arguments(
    model: SegmentModel,
    pip_requirements: list[str] | None,
    reference: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    example = model.input_example()
    with warnings.catch_warnings():  # "integer columns cannot represent missing values":
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        signature = infer_signature(example, model.score(example))  # ids are never missing
    with tempfile.TemporaryDirectory() as tmp:
        description = Path(tmp) / "segment_model.json"
        description.write_text(model.to_json(), encoding="utf-8")
        artifacts = {ARTIFACT_KEY: str(description)}
        if reference is not None:
            profile = Path(tmp) / "reference_profile.json"
            profile.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n", "utf-8")
            artifacts[REFERENCE_KEY] = str(profile)
        yield {
            "python_model": str(_PYFUNC_CODE),
            "artifacts": artifacts,
            "code_paths": [str(_SEGMENT_MODEL_CODE)],
            "signature": signature,
            "input_example": example,
            "pip_requirements": pip_requirements,
            "metadata": model_metadata(model),
        }


def model_metadata(model: SegmentModel) -> dict[str, Any]:
    """What a logged model carries in its MLmodel file: names and personas (by id; no
    personas key for a model without them) and fingerprint."""
    metadata = {
        "segment_names": {str(i): n for i, n in model.segment_names.items()},
        "fingerprint": model.fingerprint,
        "feature_set": model.feature_set,
    }
    if model.personas:
        metadata["personas"] = {str(i): p for i, p in model.segment_personas.items()}
    return metadata


def fit_figures(
    model: SegmentModel,
    table: pd.DataFrame,
    labels: np.ndarray,
    silhouettes: SilhouetteSample,
    sizes: Mapping[int, int] | None = None,
) -> dict[str, Figure]:
    """The per-fit plots: segments in original units (numeric features) and silhouettes.

    ``labels`` are the segment ids of ``table``'s rows; ``silhouettes`` the sample the
    fit's silhouette score came from; ``sizes`` the customers per segment when ``table``
    is a sample of them (:func:`~custseg.reporting.figures.cluster_scatter`).
    """
    from custseg.reporting import figures as plots  # matplotlib: only where a run's plots are drawn

    figures = {}
    title = f"{model.feature_set}, k={model.k}"
    if model.numeric:
        centroids = centroids_in_original_units(table, labels, model.numeric)
        figures["plots/clusters.png"] = plots.cluster_scatter(
            table[model.numeric],
            labels,
            centroids,
            labels_text=model.segment_names,
            title=title,
            sizes=sizes,
        )
    figures["plots/silhouette.png"] = plots.silhouette_diagram(
        silhouettes.values, np.asarray(labels)[silhouettes.rows], title=f"Silhouette: {title}"
    )
    return figures


def render_png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes (rendered once, wherever it is cheapest, then logged)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fit_images(
    model: SegmentModel,
    table: pd.DataFrame,
    labels: np.ndarray,
    silhouettes: SilhouetteSample,
    sizes: Mapping[int, int] | None = None,
) -> dict[str, bytes]:
    """:func:`fit_figures` rendered: artifact path -> PNG bytes (small, picklable)."""
    figures = fit_figures(model, table, labels, silhouettes, sizes)
    return {path: render_png(figure) for path, figure in figures.items()}


def log_fit_run(
    model: SegmentModel,
    *,
    images: Mapping[str, bytes],
    metrics: Mapping[str, float],
    run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    experiment_id: str | None = None,
    spark_model: Any = None,
    reference: Mapping[str, Any] | None = None,
) -> str:
    """Log one model (params, metrics, plots, the model) as a run; returns its run id.

    ``images`` are the run's plots as rendered by :func:`fit_images` (artifact path ->
    PNG bytes). Without ``experiment_id`` the run is nested under the active parent run
    (in the parent's experiment). The metrics are linked to the logged model, so the
    model's page in the MLflow UI shows them too. ``spark_model`` and ``reference``: the
    Spark flavour and the reference profile logged with the model
    (:func:`log_segment_model`). The run ends FINISHED, or FAILED if logging raises.
    """
    nested = experiment_id is None
    if nested:
        parent = mlflow.active_run()
        if parent is None:
            raise RuntimeError("a nested fit run needs an active parent run (use parent_run)")
        experiment_id = parent.info.experiment_id  # nested runs otherwise go to the default one
    tags = {FINGERPRINT_TAG: model.fingerprint, **process_tags(), **tags}
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, nested=nested, tags=tags
    ) as run:
        mlflow.log_params(dict(params))
        _log_files(images)
        checkpoint()  # a SIGTERM ends the run FAILED between two store calls
        # the model first, then its metrics with its id: one batch instead of MLflow
        # re-reading every metric's history to link it to the model
        model_info = log_segment_model(model, spark_model=spark_model, reference=reference)
        checkpoint()
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, model_id=model_info.model_id)
        checkpoint()
    if _SIGTERM["pending"]:  # arrived while the run was being ended: it was still open
        MlflowClient().set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        checkpoint()
    return run.info.run_id


def _log_files(files: Mapping[str, bytes]) -> None:
    """Log ``artifact path -> bytes`` to the active run in one upload."""
    if not files:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for artifact_path, data in files.items():
            target = Path(tmp) / artifact_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        mlflow.log_artifacts(tmp)


def log_sweep_summary(
    *,
    config_yaml: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    summary: pd.DataFrame,
    picks: Mapping[str, Mapping[str, int | None]],
    figures: Mapping[str, Figure],
    tags: Mapping[str, str],
) -> None:
    """Log the sweep-level results on the active parent run."""
    mlflow.log_params(dict(params))
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.set_tags(dict(tags))
    mlflow.log_table(summary, "sweep_summary.json")
    mlflow.log_text(summary.to_csv(index=False), "sweep_summary.csv")
    mlflow.log_text(json.dumps(picks, indent=2, sort_keys=True), "criteria_picks.json")
    mlflow.log_text(config_yaml, "config.yaml")
    for artifact_file, figure in figures.items():
        mlflow.log_figure(figure, artifact_file)
