"""Pipeline outputs on disk: sweep curves, JSON records, model directories, provenance.

Every writer here is atomic: readers (and DVC) see the old file or the complete new one,
never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from custseg.io.data import write_csv_atomic


class StaleInputError(ValueError):
    """An output of an earlier stage is out of step with the config or malformed.

    The message names the file and the stage to rerun (``dvc repro`` reruns it).
    """


#: the final model (MLflow model format) that ``custseg-select`` writes and the report reads
MODEL_DIR = Path("models/segmentation")
#: the selection record (chosen k, run, registry version, segment names) next to it
SELECTION_RECORD = Path("models/selection.json")

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
)


def curve_path(output_dir: str | Path, feature_set: str) -> Path:
    """Where the sweep curve of ``feature_set`` lives: ``<output_dir>/<feature_set>/curve.csv``."""
    return Path(output_dir) / feature_set / "curve.csv"


def write_curve(summary: pd.DataFrame, output_dir: str | Path, feature_set: str) -> Path:
    """Write the per-k metrics of one feature set from a sweep summary table."""
    curve = summary.loc[summary["feature_set"] == feature_set, list(CURVE_COLUMNS)]
    counts = {"k": int, "n_iter": int, "min_cluster_size": int, "max_cluster_size": int}
    curve = curve.sort_values("k").astype(counts)
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


def replace_dir_atomic(path: str | Path, build: Callable[[Path], None]) -> Path:
    """Build a directory with ``build(tmp_dir)`` and swap it in place of ``path``.

    ``build`` receives a not-yet-existing path next to ``path`` to create. On failure the
    old directory is untouched and the partial one is removed.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    target = staging / dest.name
    try:
        build(target)
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        target.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def git_commit(cwd: str | Path = ".") -> str | None:
    """The current git commit (with ``-dirty`` when tracked files changed), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty else head
