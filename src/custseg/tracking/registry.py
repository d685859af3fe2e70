"""The MLflow Model Registry: gated registration, alias promotion, loading the champion.

Only aliases and tags are used (never the deprecated model stages). Every function works
against the current MLflow tracking URI (set it with :func:`mlflow.set_tracking_uri`, or
with :func:`custseg.tracking.runs.setup_experiment`, before calling).

The *gate* decides what may become a model version: the run exists and is FINISHED, its
model loads with :func:`mlflow.pyfunc.load_model`, it has a column signature, every
signature column is in the customer table with a compatible type, and scoring the table
gives one integer label per row. Nothing is registered when any check fails.
"""

from __future__ import annotations

import contextlib
import difflib
import getpass
import io
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.entities.model_registry.model_version_status import ModelVersionStatus
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, DataType

from custseg.domain.segment_model import SEGMENT_COLUMN, SegmentModel
from custseg.errors import ModelNotFoundError, PromotionError
from custseg.storage.outputs import read_segment_model
from custseg.tracking.runs import FINGERPRINT_TAG, save_segment_model

__all__ = [
    "FORCED_TAG",
    "VERSION_TAG_KEYS",
    "ModelNotFoundError",
    "PromotionError",
    "champion_uri",
    "champion_version",
    "check_model_input",
    "find_version",
    "gate_and_register",
    "load_scoring_model",
    "load_segment_names",
    "promote",
    "register_champion",
    "registry_permission",
    "require_store",
    "rollback",
    "alias_history",
    "resolve_model_version",
    "run_metric",
    "segment_model_of",
]

log = logging.getLogger(__name__)

#: prefix of the audit tags of alias moves on the registered model (see :func:`set_alias`)
AUDIT_PREFIX = "custseg"

#: version tags the select stage sets; ``promote`` copies them from a run's tags or params
#: when it registers a run that has no version yet
VERSION_TAG_KEYS = (
    "fingerprint", "data_sha256", "git_commit", "feature_set", "k", "selection_method"
)  # fmt: skip

#: version tag recording why a promotion needed ``force``
FORCED_TAG = "forced_promotion"

#: how to get a champion when there is none, for error messages
HOW_TO_CREATE = (
    "create it with `dvc repro` (or the select stage, `custseg-select`), "
    "or point an alias at an existing version with `custseg promote --version N`"
)

_READY = ModelVersionStatus.to_string(ModelVersionStatus.READY)
_FINISHED = RunStatus.to_string(RunStatus.FINISHED)
_NUMERIC = {DataType.double, DataType.float, DataType.integer, DataType.long}
_INTEGER = {DataType.integer, DataType.long}


# --------------------------------------------------------------------------- small helpers


def champion_uri(model_name: str, alias: str) -> str:
    """The URI of the version an alias points at: ``models:/{model_name}@{alias}``."""
    return f"models:/{model_name}@{alias}"


def load_segment_names(model: PyFuncModel, key: str = "segment_names") -> dict[int, str] | None:
    """Segment id -> name stored in the model's MLmodel metadata, if any.

    Parameters
    ----------
    model : mlflow.pyfunc.PyFuncModel
        A loaded model; the select stage stores
        ``{"segment_names": {"0": "High income, high spending", ...}}`` as its metadata.
    key : str, default "segment_names"
        ``"personas"`` for the segment personas (models logged since they are stored).

    Returns
    -------
    dict of int to str, or None
        ``None`` when the model has no (or an empty) ``key`` entry.
    """
    metadata = getattr(model.metadata, "metadata", None) or {}
    names = metadata.get(key)
    if not names:
        return None
    return {int(k): str(value) for k, value in dict(names).items()}


@contextlib.contextmanager
def registry_permission(model_name: str) -> Iterator[None]:
    """Turn a tracking server's "permission denied" on ``model_name`` into a
    :class:`PromotionError` that says who lacks which permission and who can grant it."""
    try:
        yield
    except MlflowException as exc:
        on_registry = any(path in exc.message for path in ("/registered-models", "/model-versions"))
        if exc.error_code != "PERMISSION_DENIED" or not on_registry:
            raise  # e.g. a run in an experiment this user may not edit: said as it is
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        grant = f": custseg team add-user {user} --role owner" if user else ""
        raise PromotionError(
            f"{user or 'this user'} may not register versions of {model_name!r} or move its "
            f"aliases on {mlflow.get_tracking_uri()}: that needs EDIT on the registered model "
            f"(the owner role). An owner can do it, or an admin grants it{grant}"
        ) from exc


def require_store(tracking_uri: str) -> None:
    """Fail clearly when a local sqlite tracking store does not exist.

    MLflow would silently create an empty store, and the real problem (running from the
    wrong directory, or before the pipeline ran) would surface as a confusing "model not
    found". Other URIs (servers, databases) are not checked here.

    Raises
    ------
    ModelNotFoundError
        If ``tracking_uri`` is ``sqlite:///<file>`` and the file does not exist.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return
    path = Path(tracking_uri[len(prefix) :].split("?", 1)[0])
    if not path.is_file():
        raise ModelNotFoundError(
            f"no MLflow store at {tracking_uri} ({path.resolve()} does not exist): run from "
            "the project root, or create the store and a champion with `dvc repro` (or the "
            "select stage, `custseg-select`)"
        )


def champion_version(model_name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points at, or ``None`` when the model or the alias is absent."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise


def find_version(model_name: str, fingerprint: str) -> ModelVersion | None:
    """The READY version of ``model_name`` tagged with ``fingerprint`` (the oldest), if any.

    Registration by fingerprint is idempotent: the same model (same description, same
    data) is one version, however often the pipeline runs.
    """
    try:
        versions = MlflowClient().search_model_versions(
            f"name='{model_name}' and tags.{FINGERPRINT_TAG}='{fingerprint}'"
        )
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise
    ready = [v for v in versions if v.status == _READY]
    return min(ready, key=lambda v: int(v.version)) if ready else None


def segment_model_of(model: PyFuncModel, what: str) -> SegmentModel:
    """The :class:`SegmentModel` a loaded custseg model scores with.

    Raises
    ------
    PromotionError
        If the model is not a custseg segmentation model (e.g. logged by an older
        custseg as a plain scikit-learn pipeline).
    """
    try:
        wrapper = model.unwrap_python_model()
    except MlflowException:
        wrapper = None
    # the model runs the copy of custseg.domain.segment_model it ships: same JSON, other class
    segment_model = getattr(wrapper, "segment_model", None)
    if not callable(getattr(segment_model, "to_json", None)):
        raise PromotionError(
            f"{what} is not a custseg segmentation model (no segment model description); "
            "it was probably logged by an older custseg: promote a run of a newer sweep"
        )
    return SegmentModel.from_json(segment_model.to_json())


def run_metric(run_id: str | None, metric: str) -> float | None:
    """The last logged value of ``metric`` in run ``run_id``; ``None`` if absent or NaN."""
    if not run_id:
        return None
    try:
        value = MlflowClient().get_run(run_id).data.metrics.get(metric)
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise
    if value is None or math.isnan(value):
        return None
    return float(value)


def resolve_model_version(model_uri: str) -> ModelVersion | None:
    """The registry version behind ``models:/name@alias`` or ``models:/name/version``.

    Returns ``None`` for any other URI (``runs:/``, a logged-model id, a local path).

    Raises
    ------
    ModelNotFoundError
        If the registered model, the alias or the version does not exist.
    """
    if match := re.fullmatch(r"models:/([^/@]+)@([^/]+)", model_uri):
        name, alias = match.groups()
        version = champion_version(name, alias)
        if version is None:
            raise ModelNotFoundError(
                f"{model_uri} does not exist: {_missing_alias_reason(name, alias)}"
            )
        return version
    if match := re.fullmatch(r"models:/([^/@]+)/(\d+)", model_uri):
        name, number = match.groups()
        try:
            return MlflowClient().get_model_version(name, number)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise ModelNotFoundError(
                    f"{model_uri} does not exist: {_missing_version_reason(name, number)}"
                ) from exc
            raise
    return None


def load_scoring_model(model_uri: str) -> tuple[PyFuncModel, ModelVersion | None]:
    """Load ``model_uri`` as a pyfunc model, with the registry version behind it (if any).

    A path ending in ``.json`` is read as a segment model description (the select
    stage's ``models/segmentation.json``), with no registry involved.

    Raises
    ------
    ModelNotFoundError
        If the URI does not resolve to a loadable model; the message says how to create
        the champion.
    """
    if model_uri.endswith(".json"):  # a segment model description (models/segmentation.json)
        return _load_description(model_uri), None
    version = resolve_model_version(model_uri)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        raise ModelNotFoundError(f"cannot load model {model_uri}: {exc}") from exc
    return model, version


def _load_description(path: str) -> PyFuncModel:
    """A segment model description as a pyfunc model (built in a temporary directory)."""
    try:
        description = read_segment_model(path)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load model {path}: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        save_segment_model(description, Path(tmp) / "model")
        return mlflow.pyfunc.load_model(str(Path(tmp) / "model"))


# -------------------------------------------------------------------------------- the gate


@dataclass
class _Candidate:
    """What passed the gate: the model URI, its run (if any) and the loaded model."""

    model_uri: str
    run_id: str | None
    model: PyFuncModel


def check_model_input(model: PyFuncModel, data: pd.DataFrame, what: str) -> np.ndarray:
    """Check that ``model`` can score ``data`` and return its labels.

    Parameters
    ----------
    model : mlflow.pyfunc.PyFuncModel
        A loaded model with a column-based input signature.
    data : pandas.DataFrame
        A canonical customer table (as :func:`custseg.storage.data.load_customers` returns).
        Columns the signature does not name are ignored.
    what : str
        How to name the model in messages (e.g. ``"run abc123 (runs:/abc123/model)"``).

    Returns
    -------
    numpy.ndarray of int64
        One label per row of ``data``.

    Raises
    ------
    PromotionError
        If the model has no signature or a tensor one, a required signature column is
        missing from ``data`` or has an incompatible type, scoring raises, or the result is
        not one finite integer label per row.
    """
    schema = model.metadata.get_input_schema()
    if schema is None:
        raise PromotionError(
            f"{what} has no input signature; log it with a signature (log_segment_model does)"
        )
    if schema.is_tensor_spec() or not schema.has_input_names():
        raise PromotionError(
            f"{what} has a tensor signature without column names; it must take customer "
            "columns by name"
        )
    problems = []
    for spec in schema.inputs:
        if not isinstance(spec, ColSpec):
            continue
        name = str(spec.name)
        if name not in data.columns:
            if spec.required:
                problems.append(f"column {name!r} ({_type_name(spec)}) is missing")
            continue
        reason = _type_problem(spec, data[name])
        if reason:
            problems.append(f"column {name!r}: {reason}")
    if problems:
        raise PromotionError(
            f"{what} does not match the customer table: {'; '.join(problems)} "
            f"(table columns: {list(map(str, data.columns))})"
        )
    if data.empty:
        raise PromotionError(f"cannot check {what}: the customer table has no rows")
    inputs = [str(n) for n in schema.input_names() if str(n) in data.columns]
    try:
        predictions = model.predict(data[inputs])  # only what it reads: no extra-column warning
    except Exception as exc:  # any failure to score means the model is unusable here
        raise PromotionError(f"{what} fails to score the customer table: {exc}") from exc
    return _labels(predictions, len(data), what)


def _type_name(spec: ColSpec) -> str:
    return spec.type.name if isinstance(spec.type, DataType) else str(spec.type)


def _type_problem(spec: ColSpec, values: pd.Series) -> str | None:
    """Why ``values`` cannot feed a signature column of type ``spec.type`` (None if it can)."""
    kind, shown = spec.type, _type_name(spec)
    dtype = values.dtype
    if kind in _NUMERIC:
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            return f"the model expects numbers ({shown}) but the table holds {dtype}"
        if kind in _INTEGER and not pd.api.types.is_integer_dtype(dtype):
            return f"the model expects whole numbers ({shown}) but the table holds {dtype}"
        return None
    if kind == DataType.string:
        present = values.dropna()
        if pd.api.types.is_string_dtype(dtype) and all(isinstance(v, str) for v in present):
            return None
        return f"the model expects text (string) but the table holds {dtype}"
    if kind == DataType.boolean and not pd.api.types.is_bool_dtype(dtype):
        return f"the model expects booleans but the table holds {dtype}"
    if kind == DataType.datetime and not pd.api.types.is_datetime64_any_dtype(dtype):
        return f"the model expects datetimes but the table holds {dtype}"
    return None  # binary, arrays, objects: left to scoring


def _labels(predictions: Any, n_rows: int, what: str) -> np.ndarray:
    """Predictions as a 1-D int64 array; refuse anything but one integer label per row.

    A custseg model returns ``segment`` and ``segment_name`` columns; other models one
    label per row (an older custseg's, scikit-learn's).
    """
    if isinstance(predictions, pd.DataFrame):
        if SEGMENT_COLUMN in predictions.columns:
            predictions = predictions[[SEGMENT_COLUMN]]
        if predictions.shape[1] != 1:
            raise PromotionError(
                f"{what} returned {predictions.shape[1]} columns per row, expected one label"
            )
        predictions = predictions.iloc[:, 0]
    array = np.asarray(predictions)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != n_rows:
        raise PromotionError(
            f"{what} returned predictions of shape {array.shape} for {n_rows} rows; "
            "expected one label per row"
        )
    try:
        numbers = array.astype(float)
    except (TypeError, ValueError):
        raise PromotionError(f"{what} returned non-numeric labels ({array.dtype})") from None
    if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
        raise PromotionError(f"{what} returned labels that are not whole numbers")
    return numbers.astype(np.int64)


def _gate(model_uri: str, run_id: str | None, data: pd.DataFrame | None, what: str) -> _Candidate:
    """Run every check of the gate on ``model_uri``; raise :class:`PromotionError` if one fails.

    ``run_id`` None skips the run check (a version registered from a local path). ``data``
    None skips the table checks; the model is then scored on its own input example.
    """
    client = MlflowClient()
    if run_id is not None:
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise PromotionError(f"{what}: run {run_id} does not exist") from exc
            raise
        status = run.info.status
        if status != _FINISHED:
            raise PromotionError(
                f"{what}: run {run_id} is {status}, not FINISHED; only a finished run is "
                "registered or promoted"
            )
        if run.info.lifecycle_stage == "deleted":
            raise PromotionError(f"{what}: run {run_id} is deleted")
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # missing artifacts, unpickling, flavour errors: all refuse
        raise PromotionError(f"{what}: no loadable model at {model_uri}: {exc}") from exc
    if data is not None:
        check_model_input(model, data, what)
    else:
        if model.metadata.get_input_schema() is None:
            raise PromotionError(f"{what} has no input signature")
        example = model.input_example
        if isinstance(example, pd.DataFrame) and not example.empty:
            check_model_input(model, example, f"{what} (on its input example)")
    return _Candidate(model_uri, run_id, model)


def _register(
    candidate: _Candidate, model_name: str, tags: Mapping[str, str], what: str
) -> ModelVersion:
    """Create a READY model version of a candidate that passed the gate."""
    # A model logged in MLflow 3 lives under its logged-model id; registering that id keeps
    # the run lineage and avoids resolving ``runs:/`` again.
    source = f"models:/{candidate.model.model_id}" if candidate.model.model_id else None
    source = source or candidate.model_uri
    # register_model prints "Successfully registered ..." with print(): keep it at DEBUG
    # (MLflow's warnings go through logging and are not caught here)
    with contextlib.redirect_stderr(io.StringIO()) as printed:
        version = mlflow.register_model(
            source, model_name, tags={str(k): str(v) for k, v in tags.items()}
        )
    log.debug("%s", printed.getvalue().strip())
    if version.status != _READY:
        raise PromotionError(
            f"{what}: version {version.version} of {model_name!r} is {version.status}, "
            f"not {_READY}: {version.status_message or 'no reason given'}"
        )
    return version


def register_champion(
    run_id: str,
    model_name: str,
    alias: str,
    data: pd.DataFrame,
    tags: Mapping[str, str],
    artifact_path: str = "model",
) -> ModelVersion:
    """Register the model of a run through the gate and point ``alias`` at it.

    Parameters
    ----------
    run_id : str
        The run that logged the model.
    model_name : str
        Registered model name (created if absent), e.g. ``"customer-segmentation"``.
    alias : str
        Alias to set on the new version, e.g. ``"champion"``.
    data : pandas.DataFrame
        The canonical customer table the model must score (one label per row).
    tags : mapping of str to str
        Version tags: data hash, git commit, feature set, k, selection method.
    artifact_path : str, default "model"
        Name the model was logged under in the run.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
        The new version (status READY, with its tags and the alias).

    Raises
    ------
    PromotionError
        If the run does not exist or is not FINISHED, its model does not load, has no
        column signature, needs a column the table lacks or of another type, or fails to
        score the table. Nothing is registered then.
    """
    version = gate_and_register(run_id, model_name, data, tags, artifact_path)
    set_alias(model_name, alias, version, "registered through the gate")
    return MlflowClient().get_model_version(model_name, str(version.version))


def gate_and_register(
    run_id: str, model_name: str, data: pd.DataFrame, tags: Mapping[str, str], artifact_path: str
) -> ModelVersion:
    """Register the model a run logged under ``artifact_path`` if it passes the gate."""
    model_uri = f"runs:/{run_id}/{artifact_path}"
    what = f"run {run_id} ({model_uri})"
    return _register(_gate(model_uri, run_id, data, what), model_name, tags, what)


def set_alias(model_name: str, alias: str, version: ModelVersion | str, why: str) -> None:
    """Point ``alias`` of ``model_name`` at ``version``, leaving an audit trail.

    The one way custseg moves an alias. Each move adds a tag to the registered model,
    ``custseg.alias_move.<UTC time>``, holding the JSON record ``{alias, from, to, by, at,
    why}``: who moved which alias when, why and from which version (in the MLflow UI and
    :func:`alias_history`; ``custseg promote --rollback`` reads it).
    """
    number = str(getattr(version, "version", version))
    client = MlflowClient()
    previous = champion_version(model_name, alias)
    client.set_registered_model_alias(model_name, alias, number)
    _record_move(client, model_name, alias, previous, number, why)
    log.info("moved %s@%s to version %s (%s)", model_name, alias, number, why)


def _record_move(
    client: MlflowClient,
    model_name: str,
    alias: str,
    previous: ModelVersion | None,
    to: str | None,
    why: str,
) -> None:
    """Add the audit-trail tag of one alias move (``to`` None: the alias was removed)."""
    when = datetime.now(UTC)
    record = {
        "alias": alias,
        "from": str(previous.version) if previous is not None else None,
        "to": to,
        "by": _who(),
        "at": when.isoformat(timespec="microseconds"),
        "why": why,
    }
    key = f"{AUDIT_PREFIX}.alias_move.{when:%Y%m%dT%H%M%S.%fZ}"
    client.set_registered_model_tag(model_name, key, json.dumps(record))


def remove_alias(model_name: str, alias: str, why: str) -> ModelVersion | None:
    """Delete ``alias`` of ``model_name`` (if set), leaving the same audit trail as
    :func:`set_alias` (``"to": null``); the version it pointed at, or None."""
    previous = champion_version(model_name, alias)
    if previous is None:
        return None
    client = MlflowClient()
    client.delete_registered_model_alias(model_name, alias)
    _record_move(client, model_name, alias, previous, None, why)
    log.info("removed %s@%s from version %s (%s)", model_name, alias, previous.version, why)
    return previous


def _who() -> str:
    """Who moves an alias: the tracking server's user, else this machine's."""
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()


def alias_history(model_name: str, alias: str | None = None) -> list[dict[str, Any]]:
    """The alias moves recorded by :func:`set_alias`, oldest first (of ``alias`` only, if given)."""
    tags = MlflowClient().get_registered_model(model_name).tags or {}
    moves = [
        json.loads(value)
        for key, value in sorted(tags.items())
        if key.startswith(f"{AUDIT_PREFIX}.alias_move.")
    ]
    return [m for m in moves if alias is None or m["alias"] == alias]


def previous_holder(model_name: str, alias: str) -> tuple[ModelVersion, str]:
    """The version ``alias`` points at and the number of the one it held before.

    Raises
    ------
    PromotionError
        If the alias does not exist or its version records no previous holder.
    """
    current = champion_version(model_name, alias)
    if current is None:
        raise PromotionError(f"cannot roll back: {_missing_alias_reason(model_name, alias)}")
    moves = [m for m in alias_history(model_name, alias) if m["to"] == str(current.version)]
    if not moves or moves[-1]["from"] is None:
        raise PromotionError(
            f"cannot roll back {model_name}@{alias}: no earlier holder of the alias is "
            f"recorded before version {current.version} (it was the first, or moved there "
            "before custseg kept a trail)"
        )
    return current, str(moves[-1]["from"])


def rollback(
    model_name: str,
    alias: str,
    data: pd.DataFrame | None = None,
    to: str | None = None,
    *,
    data_sha256: str | None = None,
    force: bool = False,
) -> ModelVersion:
    """Point ``alias`` back at the version it held before its last move.

    The previous version must still be READY and pass the gate (it loads, and scores
    ``data`` when given); no metric comparison: it held the alias before. ``to``: the
    version the caller expects (refused if the alias moved meanwhile). A second rollback
    undoes the first (the last move's ``from`` is then the version rolled back from).
    With ``data_sha256`` (the current table's hash), a version trained on other data is
    refused unless ``force``: rolling back would score today's customers with a model of
    another table.

    Raises
    ------
    PromotionError
        If the alias does not exist, its version records no previous one, or that
        version is gone, fails the gate or (without ``force``) was trained on other data.
    """
    current, previous = previous_holder(model_name, alias)
    if to is not None and previous != str(to):  # moved meanwhile (another owner)
        raise PromotionError(
            f"{model_name}@{alias} moved meanwhile (its previous holder is now version "
            f"{previous}, not {to}): look at it again, then roll back"
        )
    target = _version_to_promote(MlflowClient(), model_name, previous, None)
    assert target is not None
    if target.status != _READY:
        raise PromotionError(f"cannot roll back to version {previous}: it is {target.status}")
    what = f"version {previous} of {model_name!r}"
    trained_on = target.tags.get("data_sha256")
    other_data = data_sha256 is not None and trained_on not in (None, data_sha256)
    if other_data and not force:
        raise PromotionError(
            f"cannot roll {model_name}@{alias} back to {what}: it was trained on other data "
            f"(sha256 {str(trained_on)[:12]}, the customer table now {data_sha256[:12]}); use "
            "--force to roll back anyway"
        )
    _gate(f"models:/{model_name}/{previous}", target.run_id, data, what)
    why = f"rollback from version {current.version}" + (
        ", forced: other data" if other_data else ""
    )
    set_alias(model_name, alias, previous, why)
    return MlflowClient().get_model_version(model_name, previous)


# ------------------------------------------------------------------------------ promotion


def promote(
    model_name: str,
    alias: str,
    *,
    version: str | None = None,
    run_id: str | None = None,
    metric: str = "silhouette",
    higher_is_better: bool = True,
    force: bool = False,
    data: pd.DataFrame | None = None,
    data_sha256: str | None = None,
) -> ModelVersion:
    """Move ``alias`` to a version (or to a run's model), refusing a worse one.

    Give exactly one of ``version`` and ``run_id``. With ``run_id``, the newest version
    registered from that run is used; a run without a version is registered first,
    through the same gate as :func:`register_champion` (with its tags copied from the
    run's tags or params, see :data:`VERSION_TAG_KEYS`).

    The candidate always passes the gate (run FINISHED, model loads, column signature).
    With ``data`` the signature is also checked against the table and the table scored;
    without it (``None``) those two checks use the model's own input example instead, so
    pass the customer table whenever it is at hand.

    Parameters
    ----------
    model_name, alias : str
        The registered model and the alias to move (e.g. ``"champion"``).
    version : str, optional
        The version number to promote.
    run_id : str, optional
        The run whose model to promote.
    metric : str, default "silhouette"
        Run metric compared between the candidate and the current holder of the alias.
    higher_is_better : bool, default True
        Direction of ``metric`` (False for e.g. ``davies_bouldin``).
    force : bool, default False
        Promote even when the candidate is worse or a metric is missing; the reason is
        kept in the version tag ``forced_promotion``.
    data : pandas.DataFrame, optional
        The canonical customer table for the gate's signature and scoring checks.
    data_sha256 : str, optional
        Hash of the current customer table. A candidate trained on it (tag
        ``data_sha256``) may replace a holder trained on other data with the same feature
        set without a metric comparison (their metrics are not comparable; a retrain on
        new data is the routine case); without it, such a move needs ``force``.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
        The version the alias now points at (unchanged if it already did).

    Raises
    ------
    ValueError
        If not exactly one of ``version`` and ``run_id`` is given.
    PromotionError
        If the version or run does not exist or fails the gate, or (without ``force``)
        the candidate is worse on ``metric`` or either side lacks the metric.
    """
    if (version is None) == (run_id is None):
        raise ValueError("give exactly one of version and run_id")
    client = MlflowClient()
    current = champion_version(model_name, alias)

    existing = _version_to_promote(client, model_name, version, run_id)
    if existing is not None:
        if existing.status != _READY:
            raise PromotionError(
                f"version {existing.version} of {model_name!r} is {existing.status}, not READY"
            )
        candidate_run = existing.run_id
        what = f"version {existing.version} of {model_name!r}"
        if candidate_run:
            what += f" (run {candidate_run})"
        if current is not None and str(current.version) == str(existing.version):
            log.info("%s@%s already points at version %s", model_name, alias, existing.version)
            return existing
        _gate(f"models:/{model_name}/{existing.version}", candidate_run, data, what)
    else:
        assert run_id is not None
        candidate_run = run_id
        what = f"run {run_id}"
        gated = _gate(f"runs:/{run_id}/model", run_id, data, what)

    candidate_tags = (
        existing.tags if existing is not None else _tags_from_run(client, candidate_run)
    )
    retrained = _retrained(current, candidate_tags, data_sha256)
    if retrained:
        reason = None  # newer data: the metrics are not comparable and the newer model wins
    else:
        reason = _incomparable(current, candidate_tags, model_name, alias) or _refusal(
            current, candidate_run, what, model_name, alias, metric, higher_is_better
        )
    if reason and not force:
        raise PromotionError(
            f"cannot move {model_name}@{alias} to {what}: {reason}; use --force "
            "(force=True in Python) to promote anyway"
        )

    if existing is None:
        existing = _register(gated, model_name, candidate_tags, what)
    number = str(existing.version)
    if reason:
        client.set_model_version_tag(model_name, number, FORCED_TAG, reason)
    why = f"promoted, forced: {reason}" if reason else f"promoted: not worse on {metric}"
    if retrained:
        why = "promoted: trained on newer data"
    set_alias(model_name, alias, number, why)
    return client.get_model_version(model_name, number)


def _version_to_promote(
    client: MlflowClient, model_name: str, version: str | None, run_id: str | None
) -> ModelVersion | None:
    """The existing version to promote; ``None`` when ``run_id`` has no version yet."""
    if version is not None:
        try:
            return client.get_model_version(model_name, str(version))
        except MlflowException as exc:
            if _is_not_found(exc):
                raise PromotionError(
                    f"cannot promote: {_missing_version_reason(model_name, str(version))}"
                ) from exc
            raise
    versions = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    if not versions:
        return None
    return max(versions, key=lambda v: int(v.version))


def _refusal(
    current: ModelVersion | None,
    candidate_run: str | None,
    what: str,
    model_name: str,
    alias: str,
    metric: str,
    higher_is_better: bool,
) -> str | None:
    """Why the candidate should not replace the current holder of the alias (None: fine)."""
    if current is None:
        return None
    holder = f"{model_name}@{alias} (version {current.version}"
    holder += f", run {current.run_id})" if current.run_id else ", no run)"
    new_value = run_metric(candidate_run, metric)
    old_value = run_metric(current.run_id, metric)
    missing = [side for side, value in ((what, new_value), (holder, old_value)) if value is None]
    if missing:
        return (
            f"metric {metric!r} is missing for {' and '.join(missing)}, so the two cannot be "
            "compared (choose another metric)"
        )
    assert new_value is not None and old_value is not None
    worse = new_value < old_value if higher_is_better else new_value > old_value
    if worse:
        direction = "higher" if higher_is_better else "lower"
        return (
            f"{metric}={new_value:.6g} is worse than {old_value:.6g} of {holder} "
            f"({direction} is better)"
        )
    return None


def _retrained(
    current: ModelVersion | None, candidate_tags: Mapping[str, str], data_sha256: str | None
) -> bool:
    """Whether the candidate is a model of the current data replacing one of older data."""
    if current is None or data_sha256 is None:
        return False
    old_data, new_data = current.tags.get("data_sha256"), candidate_tags.get("data_sha256")
    old_fs, new_fs = current.tags.get("feature_set"), candidate_tags.get("feature_set")
    return new_data == data_sha256 and old_data not in (None, data_sha256) and old_fs == new_fs


def _incomparable(
    current: ModelVersion | None, candidate_tags: Mapping[str, str], model_name: str, alias: str
) -> str | None:
    """Why the candidate's metrics cannot be compared with the holder's (None: they can)."""
    if current is None:
        return None
    for key, what in (("data_sha256", "data"), ("feature_set", "feature set")):
        old, new = current.tags.get(key), candidate_tags.get(key)
        if old and new and old != new:
            return (
                f"it was trained on another {what} ({key} {new[:12]} vs {old[:12]} of "
                f"{model_name}@{alias} version {current.version}), so their metrics are not "
                "comparable"
            )
    return None


def _tags_from_run(client: MlflowClient, run_id: str) -> dict[str, str]:
    """The version tags of :data:`VERSION_TAG_KEYS` found in a run's tags or params."""
    data = client.get_run(run_id).data
    tags = {}
    for key in VERSION_TAG_KEYS:
        value = data.tags.get(key, data.params.get(key))
        if value is not None:
            tags[key] = str(value)
    return tags


# ------------------------------------------------------------------------------- messages


def _is_not_found(exc: MlflowException) -> bool:
    # a missing alias is reported as INVALID_PARAMETER_VALUE, a missing model or version
    # as RESOURCE_DOES_NOT_EXIST
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _registered_model_exists(name: str) -> bool:
    try:
        MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if _is_not_found(exc):
            return False
        raise
    return True


def _missing_alias_reason(name: str, alias: str) -> str:
    """Why ``name@alias`` does not resolve, and what to do: a near-miss of an existing
    alias is a typo; a model without aliases is created by the pipeline."""
    if not _registered_model_exists(name):
        return (
            f"there is no registered model {name!r} in {mlflow.get_tracking_uri()}; {HOW_TO_CREATE}"
        )
    aliases = MlflowClient().get_registered_model(name).aliases or {}
    known = ", ".join(f"@{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
    reason = f"registered model {name!r} has no alias {alias!r} (aliases: {known})"
    if close := difflib.get_close_matches(alias, list(aliases), n=1, cutoff=0.6):
        return f"{reason}; did you mean @{close[0]}?"
    if aliases:
        return f"{reason}; point it at a version with `custseg promote --alias {alias} --version N`"
    return f"{reason}; {HOW_TO_CREATE}"


def _missing_version_reason(name: str, number: str) -> str:
    if not _registered_model_exists(name):
        return f"there is no registered model {name!r} in {mlflow.get_tracking_uri()}"
    versions = MlflowClient().search_model_versions(f"name='{name}'")
    known = ", ".join(sorted((str(v.version) for v in versions), key=int)) or "none"
    return f"registered model {name!r} has no version {number} (versions: {known})"
