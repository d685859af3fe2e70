"""Pipeline outputs on disk: sweep curves, JSON records, model directories, provenance.

Every writer here is atomic: readers (and DVC) see the old file or the complete new one,
never a half-written one.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from custseg.domain.segment_model import SegmentModel, round_significant
from custseg.storage.data import write_csv_atomic
from custseg.storage.paths import CURVE_FILE, SWEEP_MODELS_FILE


class StaleInputError(ValueError):
    """An output of an earlier stage is out of step with the config or malformed.

    The message names the file and the stage to rerun (``dvc repro`` reruns it).
    """


#: files whose changes make provenance ``-dirty`` (source, config, params, data pointer,
#: catalog); outputs that DVC rewrites during a run do not
SOURCE_PATHS = (
    "src", "conf", "dvc.yaml", "pyproject.toml", "requirements.lock", "data.dvc", "catalog"
)  # fmt: skip

#: per-k columns of a sweep curve; deterministic for fixed data, config and library
#: versions (no run ids, no timings), so DVC sees identical outputs on reproduction
CURVE_COLUMNS = (
    "k",
    "inertia",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "n_iter",
    "min_cluster_size",
    "max_cluster_size",
    "stability",
    "stability_std",
    "stability_resamples",
    "min_jaccard",
    "gap",
    "gap_se",
    "votes",
)
#: curve columns that are counts (the others are scores, stored rounded)
_COUNT_COLUMNS = (
    "k", "n_iter", "min_cluster_size", "max_cluster_size", "stability_resamples", "votes"
)  # fmt: skip


def curve_path(output_dir: str | Path, feature_set: str) -> Path:
    """Where the sweep curve of ``feature_set`` lives: ``<output_dir>/<feature_set>/curve.csv``."""
    return Path(output_dir) / feature_set / CURVE_FILE


def curve_frame(summary: pd.DataFrame, feature_set: str) -> pd.DataFrame:
    """The curve of one feature set, from a sweep summary, exactly as it is written.

    Scores of parallel sums (inertia) differ in their last bits with the thread count:
    rounded, the curve is the same file on every machine, and the sweep chooses k from
    the same numbers as ``custseg-select`` reading the file.
    """
    columns = [c for c in CURVE_COLUMNS if c in summary.columns]
    curve = summary.loc[summary["feature_set"] == feature_set, columns].sort_values("k")
    counts = [c for c in _COUNT_COLUMNS if c in columns]
    curve = curve.astype(dict.fromkeys(counts, int))
    floats = [c for c in columns if c not in counts]
    curve[floats] = curve[floats].map(round_significant)
    return curve.reset_index(drop=True)


def write_curve(summary: pd.DataFrame, output_dir: str | Path, feature_set: str) -> Path:
    """Write the per-k metrics of one feature set from a sweep summary table (with the
    ``votes`` of its selection)."""
    curve = curve_frame(summary, feature_set)
    missing = [c for c in CURVE_COLUMNS if c not in curve.columns]
    if missing:
        raise ValueError(f"the sweep summary lacks curve column(s) {missing}")
    path = curve_path(output_dir, feature_set)
    write_csv_atomic(curve, path)
    return path


def read_curve(output_dir: str | Path, feature_set: str, ks: list[int]) -> pd.DataFrame:
    """Read the sweep curve of ``feature_set`` and check it covers exactly ``ks``.

    Raises
    ------
    FileNotFoundError
        When the sweep of that feature set has not been run.
    StaleInputError
        When the curve is for another k range or lacks columns (a stale sweep).
    """
    path = curve_path(output_dir, feature_set)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the sweep of {feature_set!r} first "
            f"(dvc repro, or custseg-sweep sweep.feature_sets=[{feature_set}])"
        )
    curve = pd.read_csv(path)
    missing = [c for c in CURVE_COLUMNS if c not in curve.columns]
    if missing:
        raise StaleInputError(f"{path} lacks columns {missing}; rerun the sweep")
    if sorted(curve["k"].tolist()) != list(ks):
        raise StaleInputError(
            f"{path} covers k={sorted(curve['k'].tolist())} but the config asks for k={list(ks)}; "
            "rerun the sweep (dvc repro does)"
        )
    return curve


def models_path(output_dir: str | Path, feature_set: str) -> Path:
    """Where the sweep's models of ``feature_set`` live: ``<output_dir>/<fs>/models.json``."""
    return Path(output_dir) / feature_set / SWEEP_MODELS_FILE


def write_sweep_models(
    models: list[SegmentModel],
    fitted_with: dict[str, Any],
    output_dir: str | Path,
    jaccard: dict[int, dict[int, float]],
) -> Path:
    """Write the fitted models of one feature set (one per k) with the settings they used.

    ``fitted_with`` (scaler, KMeans settings, data hash) lets ``custseg-select`` take the
    chosen k's model instead of refitting it, and refuse models fitted otherwise.
    ``jaccard`` is k -> segment id -> the segment's Jaccard stability.
    """
    feature_set = models[0].feature_set
    data = {
        "fitted_with": fitted_with,
        "models": {str(m.k): m.to_dict() for m in sorted(models, key=lambda m: m.k)},
        "jaccard": {
            str(k): {str(i): _finite(v) for i, v in sorted(per_segment.items())}
            for k, per_segment in sorted(jaccard.items())
        },
    }
    path = models_path(output_dir, feature_set)
    write_json_atomic(data, path)
    return path


def _finite(value: float) -> float | None:
    """``value`` rounded for a tracked file, or None (JSON null) when NaN."""
    return None if value != value else round_significant(value)


def read_sweep_model(
    output_dir: str | Path, feature_set: str, k: int, fitted_with: dict[str, Any]
) -> tuple[SegmentModel, dict[int, float | None]]:
    """The sweep's model of ``feature_set`` at ``k``, checked against ``fitted_with``, and
    each of its segments' Jaccard stability (segment id -> value, None if unknown).

    Raises
    ------
    FileNotFoundError
        When the sweep of that feature set has not been run.
    StaleInputError
        When the models were fitted with other settings or data, or lack ``k``.
    """
    path = models_path(output_dir, feature_set)
    data = read_json(path, f"run the sweep of {feature_set!r} first (dvc repro does)")
    swept = data.get("fitted_with", {})
    if swept != fitted_with:
        changed = sorted(
            key for key in {*swept, *fitted_with} if swept.get(key) != fitted_with.get(key)
        )
        raise StaleInputError(
            f"{path} was fitted with other settings or data ({', '.join(changed)} differ "
            "from the current config); rerun the sweep (dvc repro does)"
        )
    try:
        model = SegmentModel.from_dict(data["models"][str(k)])
        jaccard = {int(i): v for i, v in data["jaccard"][str(k)].items()}
        return model, {s: jaccard.get(s) for s in model.segments}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StaleInputError(f"{path} has no valid model for k={k}; rerun the sweep") from exc


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and :func:`os.replace`."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(data: Any, path: str | Path) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable bytes for DVC)."""
    write_text_atomic(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


def read_segment_model(path: str | Path, missing_ok: bool = False) -> SegmentModel | None:
    """Read a :class:`SegmentModel` description (the model file or the catalog).

    An empty object (``{}``) is an empty catalog: no champion yet.

    Raises
    ------
    FileNotFoundError
        When the file is absent (unless ``missing_ok``, which returns None).
    StaleInputError
        When it is not a valid description (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return None
        raise FileNotFoundError(
            f"{path} not found: run the select stage first (dvc repro, or custseg-select)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data == {} and missing_ok:
            return None
        return SegmentModel.from_dict(data)
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise StaleInputError(f"{path} is not a valid segment model description: {exc}") from exc


def read_json(
    path: str | Path, how_to_make: str = "run custseg-select first (or dvc repro)"
) -> dict[str, Any]:
    """Read a JSON record written by an earlier stage (``how_to_make`` it, if absent).

    Raises
    ------
    FileNotFoundError
        When it is absent (the message names the stage: ``dvc repro`` reruns it).
    StaleInputError
        When it is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {how_to_make}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StaleInputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StaleInputError(f"{path} is not a JSON object; rerun the stage that writes it")
    return data


def write_segment_model(model: SegmentModel, path: str | Path) -> None:
    """Write ``model``'s canonical JSON atomically (same model, same bytes)."""
    write_text_atomic(model.to_json(), path)


def git_commit(cwd: str | Path = ".") -> str | None:
    """The current git commit, or None outside git.

    ``-dirty`` is appended when tracked files under :data:`SOURCE_PATHS` differ from the
    commit; outputs that DVC removes and rewrites while the pipeline runs do not count.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty else head
