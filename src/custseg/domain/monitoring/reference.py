"""The reference profile a model is monitored against: what its training customers
looked like, kept with the model so that monitoring never needs the training table.

Per column: missing values, mean and spread, quantile bins (for PSI) or category
counts; a seeded sample of at most ``sample_size`` customers (their columns and segment
ids, never their ids) for the exact tests; per segment: its count, share, name and the
quantiles of its customers' distance to their centroid; the training silhouette.
Every float is rounded to 10 significant digits, so the same model and table give the
same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custseg.domain.segment_model import SegmentModel

#: the JSON layout's version; monitoring refuses another
REFERENCE_FORMAT = 1
#: the distance quantiles kept per segment (``p95`` is the "no longer fits" line)
DISTANCE_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True, kw_only=True)
class ReferenceParams:
    """How a reference profile is drawn.

    Parameters
    ----------
    sample_size : int
        Customers kept for the exact tests (all of them when the table is smaller).
    bins : int
        Quantile bins per numeric column (PSI).
    seed : int
        Seed of the sample.
    """

    sample_size: int
    bins: int
    seed: int


def _round(value: float) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else float(f"{value:.10g}")


def numeric_values(column: pd.Series) -> np.ndarray:
    """A column as float64, missing (``NaN``, ``pd.NA``, text) as NaN."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def category_values(column: pd.Series) -> pd.Series:
    """A column's present values as text (missing dropped)."""
    return column.dropna().astype(str)


def _numeric_entry(column: pd.Series, bins: int) -> dict[str, Any]:
    values = numeric_values(column)
    present = np.sort(values[~np.isnan(values)])
    entry: dict[str, Any] = {
        "kind": "numeric",
        "n": len(present),
        "missing": int(len(values) - len(present)),
    }
    if len(present) == 0:
        return entry | {"mean": None, "std": None, "distinct": 0, "edges": [], "bin_counts": [0]}
    probs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(present, probs, method="inverted_cdf"))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return entry | {
        "mean": _round(present.mean()),
        "std": _round(present.std()),
        "distinct": int(len(np.unique(present))),
        "edges": [_round(e) for e in edges],
        "bin_counts": counts.tolist(),
    }


def _categorical_entry(column: pd.Series) -> dict[str, Any]:
    present = category_values(column)
    counts = present.value_counts()
    return {
        "kind": "categorical",
        "n": len(present),
        "missing": int(len(column) - len(present)),
        "counts": {str(v): int(counts[v]) for v in sorted(counts.index)},
    }


def _sample(
    rows: pd.DataFrame, ids: np.ndarray, columns: Sequence[str], params: ReferenceParams
) -> dict[str, list]:
    """A seeded sample of rows (all when there are fewer): segment ids and columns."""
    n = len(rows)
    if n > params.sample_size:
        rng = np.random.default_rng(params.seed)
        picked = np.sort(rng.choice(n, size=params.sample_size, replace=False))
    else:
        picked = np.arange(n)
    sample: dict[str, list] = {"segment": [int(s) for s in ids[picked]]}
    part = rows.iloc[picked]
    for column in columns:
        values = part[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            sample[column] = [_round(v) for v in numeric_values(values)]
        else:
            sample[column] = [None if pd.isna(v) else str(v) for v in values]
    return sample


def _distance_quantiles(distances: np.ndarray) -> dict[str, float | None]:
    """The quantiles of a segment's distances, and the share strictly beyond ``p95``
    (about 5%, more in a small segment: what a batch's share is compared with)."""
    if len(distances) == 0:
        return dict.fromkeys([*DISTANCE_QUANTILES, "beyond_p95"])
    quantiles = {
        key: _round(np.quantile(distances, q, method="linear"))
        for key, q in DISTANCE_QUANTILES.items()
    }
    return quantiles | {"beyond_p95": _round(np.mean(distances > quantiles["p95"]))}


def build_reference(
    rows: pd.DataFrame,
    ids: np.ndarray,
    distances: np.ndarray,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    model_columns: Sequence[str],
    counts: Mapping[int, int],
    names: Mapping[int, str],
    fingerprint: str,
    silhouette: float | None,
    params: ReferenceParams,
) -> dict[str, Any]:
    """The reference profile of a model on its training customers (JSON-ready).

    Parameters
    ----------
    rows : DataFrame
        The customers profiled: the whole table, or a seeded sample of it.
    ids, distances : ndarray
        Each row's segment id and Euclidean distance to its centroid (model space).
    numeric, categorical : sequence of str
        The columns monitored (the profiled ones; the id column never).
    model_columns : sequence of str
        The columns the model reads (a batch must have them; the others may be absent).
    counts : mapping of int to int
        Customers per segment id over the whole table.
    names : mapping of int to str
        Segment names.
    fingerprint : str
        The model's fingerprint.
    silhouette : float, optional
        The model's training silhouette (on the stability sample).
    params : ReferenceParams
        Sample size, bins and seed.
    """
    n_rows = int(sum(counts.values()))
    columns: dict[str, Any] = {}
    for column in numeric:
        columns[column] = _numeric_entry(rows[column], params.bins)
    for column in categorical:
        columns[column] = _categorical_entry(rows[column])
    for column, entry in columns.items():
        entry["model_input"] = column in model_columns
    segments = {
        str(s): {
            "name": names.get(s, ""),
            "count": int(counts[s]),
            "share": _round(counts[s] / n_rows),
            "distance": _distance_quantiles(distances[ids == s]),
        }
        for s in sorted(counts)
    }
    return {
        "format": REFERENCE_FORMAT,
        "fingerprint": fingerprint,
        "n_rows": n_rows,
        "profiled_rows": len(rows),
        "silhouette": None if silhouette is None else _round(silhouette),
        "columns": columns,
        "segments": segments,
        "sample": _sample(rows, ids, [*numeric, *categorical], params),
    }


def model_reference(
    model: SegmentModel,
    rows: pd.DataFrame,
    sizes: Mapping[int, int],
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    silhouette: float | None,
    params: ReferenceParams,
) -> dict[str, Any]:
    """:func:`build_reference` of ``model`` on ``rows`` (the whole table or a seeded
    sample of it), whose segments hold ``sizes`` customers over the whole table."""
    positions, squared = model.nearest(rows)
    return build_reference(
        rows,
        np.asarray(model.segments, dtype=np.int64)[positions],
        np.sqrt(squared),
        numeric=numeric,
        categorical=categorical,
        model_columns=model.columns,
        counts={int(s): int(sizes.get(int(s), 0)) for s in model.segments},
        names=model.segment_names,
        fingerprint=model.fingerprint,
        silhouette=silhouette,
        params=params,
    )
