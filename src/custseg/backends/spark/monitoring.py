"""A batch's monitoring counts computed in Spark (``engine=spark``): nothing is
collected whole, only counts per (segment, bucket) and per (segment, category) reach the
driver, as :mod:`custseg.domain.monitoring.batch` defines them.

Each numeric column is bucketed once on split points that make every count of the
domain's readable: the reference grid ``u`` and ``nextafter(u)`` (so that ``x < u`` and
``x <= u`` are sums of buckets) and ``nextafter(e)`` of each PSI bin edge ``e``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from custseg.backends.spark.engine import sql_name, to_pandas
from custseg.backends.spark.sql import _double, distance_sql, nearest_sql, segment_sql
from custseg.domain.monitoring.batch import ALL, BatchCounts, GroupCounts, NumericCounts, grid
from custseg.domain.segment_model import SegmentModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_SEGMENT = "__custseg_segment"
_DISTANCE = "__custseg_distance"


def _splits(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket boundaries: the grid, just above each grid value and each bin edge."""
    above = np.nextafter(np.concatenate([points, edges]), np.inf)
    return np.unique(np.concatenate([[-np.inf], points, above, [np.inf]]))


def _below(cumulative: np.ndarray, splits: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many are ``< v`` for each ``v`` of ``values`` (each one of ``splits``)."""
    return cumulative[np.searchsorted(splits, values)]


def _numeric(
    scored: DataFrame, column: str, entry: Mapping[str, Any], points: np.ndarray, keys: list[int]
) -> dict[int, NumericCounts]:
    """Per segment, one numeric column's counts (two passes: sums, then buckets)."""
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    x = F.col(sql_name(column)).cast("double")
    present = x.isNotNull() & ~F.isnan(x)
    if len(points):  # beyond the grid's ends (none without a grid)
        low, high = float(points[0]), float(points[-1])
        tails = [
            F.sum(F.when(present & (x < low), F.lit(low) - x)).alias("low"),
            F.sum(F.when(present & (x > high), x - F.lit(high))).alias("high"),
        ]
    else:
        tails = [F.lit(0.0).alias("low"), F.lit(0.0).alias("high")]
    sums = scored.groupBy(_SEGMENT).agg(
        F.sum(F.when(~present, 1).otherwise(0)).alias("missing"),
        F.sum(F.when(present, x)).alias("total"),
        F.sum(F.when(present, x * x)).alias("total_sq"),
        *tails,
    )
    sums = to_pandas(sums).set_index(_SEGMENT).fillna(0)
    edges = np.asarray(entry["edges"], dtype=float)
    splits = _splits(points, edges)
    values = scored.select(_SEGMENT, x.alias("x")).where(present)
    bucketed = Bucketizer(splits=splits.tolist(), inputCol="x", outputCol="bucket").transform(
        values
    )
    found = to_pandas(bucketed.groupBy(_SEGMENT, "bucket").count())
    out = {}
    for key in keys:
        mine = found[found[_SEGMENT] == key]
        per_bucket = np.zeros(len(splits) - 1, dtype=np.int64)
        per_bucket[mine["bucket"].astype(int).to_numpy()] = mine["count"].to_numpy()
        cumulative = np.concatenate([[0], np.cumsum(per_bucket)])
        n = int(cumulative[-1])
        at_edges = _below(cumulative, splits, np.nextafter(edges, np.inf))
        row = sums.loc[key] if key in sums.index else None
        out[key] = NumericCounts(
            n=n,
            missing=int(row["missing"]) if row is not None else 0,
            below=_below(cumulative, splits, points),
            at_or_below=_below(cumulative, splits, np.nextafter(points, np.inf)),
            low_sum=float(row["low"]) if row is not None else 0.0,
            high_sum=float(row["high"]) if row is not None else 0.0,
            total=float(row["total"]) if row is not None else 0.0,
            total_sq=float(row["total_sq"]) if row is not None else 0.0,
            bins=np.diff(np.concatenate([[0], at_edges, [n]])).astype(np.int64),
        )
    return out


def _categories(scored: DataFrame, column: str, keys: list[int]) -> dict[int, tuple[dict, int]]:
    """Per segment, one categorical column's count per value and its missing count."""
    from pyspark.sql import functions as F

    value = F.col(sql_name(column)).cast("string")
    found = to_pandas(scored.groupBy(_SEGMENT, value.alias("value")).count())
    out = {}
    for key in keys:
        mine = found[found[_SEGMENT] == key]
        missing = int(mine.loc[mine["value"].isna(), "count"].sum())
        present = mine[mine["value"].notna()].sort_values("value")
        out[key] = (
            {str(v): int(n) for v, n in zip(present["value"], present["count"], strict=True)},
            missing,
        )
    return out


def spark_batch_counts(
    frame: DataFrame, model: SegmentModel, reference: Mapping[str, Any]
) -> BatchCounts:
    """:func:`~custseg.domain.monitoring.batch.count_batch` of a Spark table scored by
    ``model`` (the same counts; sums to rounding), computed by aggregation in Spark."""
    from pyspark.sql import functions as F

    keys = [int(k) for k in reference["segments"]]
    position = nearest_sql(model)
    segment = segment_sql(model, position)[0]
    distance = f"sqrt(array_min(array({', '.join(distance_sql(model))})))"
    columns = [c for c in reference["columns"] if c in frame.columns]
    scored = frame.select(
        *[sql_name(c) for c in columns],
        F.expr(segment).cast("long").alias(_SEGMENT),
        F.expr(distance).alias(_DISTANCE),
    ).persist()
    try:
        sizes = {int(r[0]): int(r[1]) for r in scored.groupBy(_SEGMENT).count().collect()}
        lines = {k: reference["segments"][str(k)]["distance"]["p95"] for k in keys}
        beyond_sql = " ".join(
            f"WHEN {_SEGMENT} = {k} THEN {_DISTANCE} > {_double(line)}"
            for k, line in lines.items()
            if line is not None
        )
        beyond = {k: 0 for k in keys}
        if beyond_sql:
            flag = F.expr(f"CASE {beyond_sql} ELSE false END")
            counts = scored.groupBy(_SEGMENT).agg(F.sum(F.when(flag, 1).otherwise(0)))
            beyond |= {int(r[0]): int(r[1]) for r in counts.collect()}
        groups = {k: GroupCounts(sizes.get(k, 0)) for k in keys}
        for column in columns:
            entry = reference["columns"][column]
            if entry["kind"] == "numeric":
                for k, counts in _numeric(
                    scored, column, entry, grid(reference, column), keys
                ).items():
                    groups[k].numeric[column] = counts
            else:
                for k, (values, missing) in _categories(scored, column, keys).items():
                    groups[k].categories[column] = values
                    groups[k].missing[column] = missing
    finally:
        scored.unpersist()
    whole = GroupCounts(
        0, {c: _empty(reference, c) for c in columns if c in _numeric_columns(reference)}
    )
    whole.categories = {c: {} for c in columns if c not in whole.numeric}
    whole.missing = {c: 0 for c in whole.categories}
    for counts in groups.values():
        whole = whole + counts
    absent = [c for c in reference["columns"] if c not in frame.columns]
    return BatchCounts({ALL: whole, **groups}, beyond, absent)


def _numeric_columns(reference: Mapping[str, Any]) -> set[str]:
    return {c for c, e in reference["columns"].items() if e["kind"] == "numeric"}


def _empty(reference: Mapping[str, Any], column: str) -> NumericCounts:
    """A numeric column's counts of no row (the start of a sum)."""
    points = grid(reference, column)
    zeros = np.zeros(len(points), dtype=np.int64)
    bins = np.zeros(len(reference["columns"][column]["edges"]) + 1, dtype=np.int64)
    return NumericCounts(0, 0, zeros, zeros.copy(), 0.0, 0.0, 0.0, 0.0, bins)
