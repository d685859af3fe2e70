"""What a scored batch contributes to monitoring: counts only, per group (the whole
batch and each segment), so that chunks and an engine's partial aggregates add up.

For each numeric column of the reference: missing values, the counts ``< u`` and
``<= u`` on the reference grid (the distinct values of its sample), the distances
beyond the grid's ends, the sum and sum of squares, and the counts per quantile bin;
for each categorical column: the count per value. Per segment: customers beyond the
segment's training 95th-percentile distance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from custseg.domain.monitoring.reference import category_values, numeric_values
from custseg.domain.monitoring.statistics import ecdf_counts
from custseg.domain.segment_model import SegmentModel

#: the group of the whole batch (the others are segment ids)
ALL = "all"


@dataclass
class NumericCounts:
    """One numeric column of one group, as counts (see the module docstring)."""

    n: int
    missing: int
    below: np.ndarray
    at_or_below: np.ndarray
    low_sum: float
    high_sum: float
    total: float
    total_sq: float
    bins: np.ndarray

    def __add__(self, other: NumericCounts) -> NumericCounts:
        return NumericCounts(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(counts: NumericCounts) -> list:
    return [getattr(counts, f.name) for f in fields(counts)]


@dataclass
class GroupCounts:
    """A group's rows and per-column counts."""

    n: int
    numeric: dict[str, NumericCounts] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: GroupCounts) -> GroupCounts:
        categories = {}
        for column in self.categories.keys() | other.categories.keys():
            merged = dict(self.categories.get(column, {}))
            for value, count in other.categories.get(column, {}).items():
                merged[value] = merged.get(value, 0) + count
            categories[column] = merged
        return GroupCounts(
            self.n + other.n,
            {c: self.numeric[c] + other.numeric[c] for c in self.numeric},
            categories,
            {c: self.missing.get(c, 0) + other.missing.get(c, 0) for c in self.missing},
        )


@dataclass
class BatchCounts:
    """A batch's counts: per group (``ALL`` and each segment id), customers beyond
    their segment's 95th-percentile distance, and the columns it lacks."""

    groups: dict[Any, GroupCounts]
    beyond: dict[int, int]
    absent: list[str]

    def __add__(self, other: BatchCounts) -> BatchCounts:
        groups = dict(self.groups)
        for key, counts in other.groups.items():
            groups[key] = groups[key] + counts if key in groups else counts
        beyond = {
            s: self.beyond.get(s, 0) + other.beyond.get(s, 0) for s in self.beyond | other.beyond
        }
        return BatchCounts(groups, beyond, self.absent)


def grid(reference: Mapping[str, Any], column: str) -> np.ndarray:
    """The distinct present values of ``column`` in the reference sample, ascending."""
    values = np.array([v for v in reference["sample"][column] if v is not None], dtype=float)
    return np.unique(values)


def _numeric_counts(values: np.ndarray, points: np.ndarray, edges: np.ndarray) -> NumericCounts:
    present = np.sort(values[~np.isnan(values)])
    below, at_or_below = ecdf_counts(present, points)
    low = high = 0.0
    if len(points):
        low = float(np.sum(points[0] - present[present < points[0]]))
        high = float(np.sum(present[present > points[-1]] - points[-1]))
    bins = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return NumericCounts(
        len(present),
        int(len(values) - len(present)),
        below,
        at_or_below,
        low,
        high,
        float(present.sum()),
        float(np.square(present).sum()),
        bins.astype(np.int64),
    )


def _group_counts(
    frame: pd.DataFrame, reference: Mapping[str, Any], grids: Mapping[str, np.ndarray]
) -> GroupCounts:
    counts = GroupCounts(len(frame))
    for column, entry in reference["columns"].items():
        if column not in frame.columns:
            continue
        if entry["kind"] == "numeric":
            edges = np.asarray(entry["edges"], dtype=float)
            counts.numeric[column] = _numeric_counts(
                numeric_values(frame[column]), grids[column], edges
            )
        else:
            present = category_values(frame[column])
            counts.categories[column] = {
                str(v): int(n) for v, n in present.value_counts().sort_index().items()
            }
            counts.missing[column] = int(len(frame) - len(present))
    return counts


def count_batch(
    frame: pd.DataFrame,
    segments: np.ndarray,
    distances: np.ndarray,
    reference: Mapping[str, Any],
) -> BatchCounts:
    """Count one batch (or one chunk of it) against ``reference``.

    Parameters
    ----------
    frame : DataFrame
        The batch's customers, canonical column names (columns of the reference it
        lacks are reported ``absent``).
    segments, distances : ndarray
        Each row's segment id and Euclidean distance to its centroid.
    reference : mapping
        The model's reference profile (:func:`~.reference.build_reference`).
    """
    grids = {
        c: grid(reference, c) for c, e in reference["columns"].items() if e["kind"] == "numeric"
    }
    groups = {ALL: _group_counts(frame, reference, grids)}
    beyond = {}
    for key, segment in reference["segments"].items():
        mask = segments == int(key)
        groups[int(key)] = _group_counts(frame.loc[mask], reference, grids)
        line = segment["distance"]["p95"]
        beyond[int(key)] = int(np.sum(distances[mask] > line)) if line is not None else 0
    absent = [c for c in reference["columns"] if c not in frame.columns]
    return BatchCounts(groups, beyond, absent)


def count_scored(
    model: SegmentModel, frame: pd.DataFrame, reference: Mapping[str, Any], chunk: int = 100_000
) -> BatchCounts:
    """Score ``frame`` with ``model`` and count it, ``chunk`` rows at a time (memory
    bounded by the chunk, whatever the batch's size)."""
    total = None
    for start in range(0, max(len(frame), 1), chunk):
        part = frame.iloc[start : start + chunk]
        positions, squared = model.nearest(part)
        segments = np.asarray(model.segments, dtype=np.int64)[positions]
        counts = count_batch(part, segments, np.sqrt(squared), reference)
        total = counts if total is None else total + counts
    return total
