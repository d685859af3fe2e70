"""Segment identity across model versions: stable ids and names, and what changed.

KMeans numbers its clusters by chance, so a retrain can swap "segment 1" and "segment
3". Here a new model's segments are matched to a reference model (the champion recorded
in the segment catalog) by optimal assignment of centroids in the new model's scaled
space: matched segments keep the reference's id and name, any extra segment gets a new
id above every reference id. With no reference, ids follow a deterministic order of the
centroids (:func:`custseg.core.segment_model.canonical_order`), so they do not depend on
the row order of the table either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from custseg.core.agreement import adjusted_rand_of_counts
from custseg.core.clustering import FitResult, segment_model
from custseg.core.profiling import NamingRules, describe_segments, is_outlier, outlier_name
from custseg.core.segment_model import SegmentModel, canonical_order


def comparable(model: SegmentModel, reference: SegmentModel | None) -> bool:
    """Whether ``reference`` uses the same input columns (and ``rfm_score`` on the same
    ones), so segments can be matched."""
    return (
        reference is not None
        and list(reference.numeric) == list(model.numeric)
        and list(reference.categorical) == list(model.categorical)
        # centroids of rfm_score columns are scores, not values: comparable only as scores
        and reference.score_columns == model.score_columns
    )


def encode_centroids(model: SegmentModel, centroids: pd.DataFrame) -> np.ndarray:
    """Centroids in original units (as :meth:`SegmentModel.centroid_table`) in ``model``'s space.

    Numeric columns go through ``model``'s transforms and scaler (the scores of
    ``rfm_score`` columns only through its scaler); a category ``model`` knows but
    ``centroids`` lacks counts as a share of 0.
    """
    parts = []
    if model.numeric:
        values = centroids[model.numeric].to_numpy(dtype=float)
        parts.append(model.encode_numeric(values, transformed=True))
    for column in model.categorical:
        shares = [
            centroids[f"{column}={c}"].to_numpy(dtype=float)
            if f"{column}={c}" in centroids
            else np.zeros(len(centroids))
            for c in model.categories[column]
        ]
        parts.append(np.column_stack(shares))
    return np.hstack(parts)


def reference_centres(model: SegmentModel, reference: SegmentModel) -> np.ndarray:
    """The centroids of ``reference`` (rows by ascending id) in ``model``'s encoded space.

    A numeric column both models transform the same way (quantile ranks, log1p, RFM
    scores) is compared in that transformed space, where only the scalers differ: back in
    original units, ranks inside a run of tied values (the many one-order customers)
    would all become the same value. Other columns go through original units
    (:func:`encode_centroids`).
    """
    encoded = encode_centroids(model, reference.centroid_table())
    C = np.asarray(reference.centroids, dtype=float)[np.argsort(reference.segments)]
    for i, column in enumerate(model.numeric):
        kind = model.transforms.get(column, {}).get("kind")
        if kind is None or kind != reference.transforms.get(column, {}).get("kind"):
            continue
        j = list(reference.numeric).index(column)
        transformed = C[:, j] * reference.scale[j] + reference.center[j]
        encoded[:, i] = (transformed - model.center[i]) / model.scale[i]
    return encoded


def match_segments(model: SegmentModel, reference: SegmentModel) -> dict[int, int]:
    """Segment id of ``model`` -> id of the ``reference`` segment it matches.

    Optimal one-to-one assignment minimising the total squared distance between
    centroids, measured in ``model``'s scaled space. When ``model`` has more segments
    than ``reference``, the extra ones are absent from the result.
    """
    # imported here: scipy.optimize adds 0.15-0.3 s to the start of every stage that
    # imports this module, and only a catalog match needs it
    from scipy.optimize import linear_sum_assignment

    new = np.asarray(model.centroids, dtype=float)
    old = reference_centres(model, reference)
    cost = ((new[:, None, :] - old[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    ref_ids = list(reference.centroid_table().index)
    return {int(model.segments[r]): int(ref_ids[c]) for r, c in zip(rows, cols, strict=True)}


def assign_identity(
    model: SegmentModel, names: Mapping[int, str], reference: SegmentModel | None
) -> SegmentModel:
    """``model`` with stable segment ids and names.

    Parameters
    ----------
    model : SegmentModel
        A fresh fit, with provisional ids (e.g. KMeans labels).
    names : mapping of int to str
        Generated name of each provisional id (:func:`custseg.core.profiling.name_segments`).
    reference : SegmentModel or None
        The champion of the catalog. When it uses the same columns, matched segments take
        its ids and names and new segments get ids above its largest; when it uses other
        columns, every segment is new (ids above its largest, so an id never changes
        meaning); with no reference, ids are ``0..k-1`` in canonical order.

    Returns
    -------
    SegmentModel
        Rows in ascending id; names pairwise distinct (a generated name equal to a kept
        one gets ``" (new)"``).
    """
    return model.relabel(*identity_map(model, names, reference))


def identity_map(
    model: SegmentModel, names: Mapping[int, str], reference: SegmentModel | None
) -> tuple[dict[int, int], dict[int, str]]:
    """What :func:`assign_identity` does, as ``(model's id -> stable id, stable id -> name)``
    (to carry per-segment values, such as stability, over to the stable ids)."""
    order = [model.segments[i] for i in canonical_order(model.centroid_table())]
    matched = match_segments(model, reference) if comparable(model, reference) else {}
    kept = {matched[s]: reference.segment_names[matched[s]] for s in matched} if reference else {}
    next_id = max(reference.segments) + 1 if reference is not None else 0
    ids: dict[int, int] = dict(matched)
    new_names: dict[int, str] = dict(kept)
    for s in order:
        if s in ids:
            continue
        ids[s] = next_id
        new_names[next_id] = _distinct(str(names[s]), new_names.values())
        next_id += 1
    return ids, new_names


def _distinct(name: str, taken: Any) -> str:
    taken = set(taken)
    candidate, n = name, 1
    while candidate in taken:
        candidate = f"{name} (new)" if n == 1 else f"{name} (new {n})"
        n += 1
    return candidate


def compare_models(
    reference: SegmentModel | None, model: SegmentModel, table: pd.DataFrame
) -> dict[str, Any]:
    """What changed from ``reference`` (the champion) to ``model`` on the customers of
    ``table`` (see :func:`model_changes`)."""
    return model_changes(
        reference, model, table.columns, lambda: transitions(reference, model, table)
    )


def transitions(reference: SegmentModel, model: SegmentModel, table: pd.DataFrame) -> pd.DataFrame:
    """Customers per (``reference``'s segment id, ``model``'s segment id) of ``table``:
    a crosstab, ids as index and columns (only pairs some customer has count)."""
    return pd.crosstab(reference.predict(table), model.predict(table))


def model_changes(
    reference: SegmentModel | None,
    model: SegmentModel,
    columns: Collection[str],
    crosstab: Callable[[], pd.DataFrame],
) -> dict[str, Any]:
    """What changed from ``reference`` (the champion) to ``model`` on the same customers.

    ``columns`` are the table's; ``crosstab()`` counts its customers per pair of segment
    ids (:func:`transitions`, or an engine's count of a table it holds), called only when
    both models score the table.

    Returns
    -------
    dict
        Plain, deterministic data (JSON-ready):

        - ``reference``: ``"none"`` (no champion recorded), ``"same"`` (identical model),
          ``"different"`` or ``"incomparable"`` (the champion reads columns the table
          lacks);
        - ``reference_fingerprint``, ``fingerprint``;
        - ``adjusted_rand``: agreement of the two segmentations (1 = identical
          partitions, whatever the ids);
        - ``moved`` / ``moved_share``: customers whose segment id changes;
        - ``transitions``: ``{"from": [...ids], "to": [...ids], "counts": [[...]]}``,
          customers per (champion segment, new segment);
        - ``segments``: per new segment id, ``status`` (``kept``/``new``), and for kept
          ones the centroid shift in original units per numeric column;
        - ``dropped``: champion segment ids the new model no longer has.
    """
    out: dict[str, Any] = {"fingerprint": model.fingerprint}
    if reference is None:
        return out | {"reference": "none", "reference_fingerprint": None}
    out["reference_fingerprint"] = reference.fingerprint
    if reference.fingerprint == model.fingerprint:
        out["reference"] = "same"
    elif any(c not in columns for c in reference.columns):
        return out | {"reference": "incomparable"}
    else:
        out["reference"] = "different"
    counts = crosstab().sort_index().sort_index(axis=1)
    matrix = counts.to_numpy(dtype=np.int64)
    n_rows = int(matrix.sum())
    stayed = sum(int(counts.at[s, s]) for s in counts.index if s in counts.columns)
    moved = n_rows - stayed
    out |= {
        "adjusted_rand": round(adjusted_rand_of_counts(matrix), 6),
        "moved": moved,
        "moved_share": round(moved / n_rows, 6) if n_rows else 0.0,
        "transitions": {
            "from": [int(i) for i in counts.index],
            "to": [int(i) for i in counts.columns],
            "counts": matrix.tolist(),
        },
        "segments": _segment_changes(reference, model),
        "dropped": sorted(set(reference.segments) - set(model.segments)),
    }
    return out


def _segment_changes(reference: SegmentModel, model: SegmentModel) -> dict[str, Any]:
    old, new = reference.centroid_table(), model.centroid_table()
    shared = [c for c in model.numeric if c in reference.numeric]
    changes: dict[str, Any] = {}
    for seg in new.index:
        if seg in old.index and comparable(model, reference):
            shift = {c: round(float(new.at[seg, c] - old.at[seg, c]), 4) for c in shared}
            changes[str(int(seg))] = {"status": "kept", "centroid_shift": shift}
        else:
            changes[str(int(seg))] = {"status": "new"}
    return changes


def identify(
    result: FitResult,
    table: pd.DataFrame,
    rules: NamingRules,
    scaler: str,
    data_sha256: str,
    reference: SegmentModel | None,
    exclude: Sequence[str] = (),
    limits: Mapping[str, list[float | None]] | None = None,
    allowed: Mapping[str, list[str]] | None = None,
) -> tuple[SegmentModel, dict[int, int]]:
    """A fit as a :class:`SegmentModel` with generated names and stable ids, and the
    segment id of each of the fit's clusters (``result.labels``' values).

    The one path from a fit to named segments (sweep runs and the final model alike):
    profile and name the segments (:func:`custseg.core.profiling.describe_segments`),
    then :func:`assign_identity` against ``reference``. A segment is an outlier group by
    its share of every customer (:meth:`FitResult.shares`). ``limits`` and ``allowed``
    (the data schema's, see :attr:`SegmentModel.limits`) are checked by the model's
    :meth:`~SegmentModel.score`.
    """
    described = describe_segments(table, result.labels, result.feature_set, rules, exclude)
    names = {seg: d.name for seg, d in described.items()}
    provisional = replace(
        segment_model(result, scaler, names, data_sha256),
        limits=dict(limits or {}),
        allowed=dict(allowed or {}),
    )
    ids, stable_names = identity_map(provisional, provisional.segment_names, reference)
    # a kept name says "outlier group" exactly when the segment is one now
    shares = result.shares()
    for seg in described:
        outlier = is_outlier(float(shares.get(seg, 0.0)), rules)
        name = outlier_name(stable_names[ids[seg]], outlier, rules)
        others = [n for i, n in stable_names.items() if i != ids[seg]]
        stable_names[ids[seg]] = name if name not in others else _distinct(name, others)
    return provisional.relabel(ids, stable_names), {int(c): int(i) for c, i in ids.items()}
