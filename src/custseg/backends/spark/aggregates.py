"""The report's computations on a table Spark holds (``engine=spark``): segment profiles
by Spark aggregation and the assignments written by Spark; only aggregates reach the
driver.

The profiles are :mod:`custseg.domain.profiling`'s, made by the same
:func:`~custseg.domain.profiling.profiles.profiles_from` from the same aggregates
(:class:`~custseg.domain.profiling.profiles.ProfileAggregates`), counted here in Spark: customers
per segment and per value of a categorical column exactly; means and standard
deviations summed in Spark's order; medians and quartiles by Spark's exact
``percentile`` (linear interpolation, as pandas), whose arithmetic may differ from
pandas' in the last bit. The assignments CSV is the scikit-learn engine's, byte for byte
(tested).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custseg.backends.spark.engine import ROW_ID, sql_name, to_pandas
from custseg.domain.features import FeatureSet
from custseg.domain.profiling.profiles import (
    MAX_CATEGORIES,
    MISSING_CATEGORY,
    ProfileAggregates,
    SegmentProfiles,
    choose_profile_columns,
    profiles_from,
)
from custseg.domain.segment_model import SegmentModel
from custseg.storage.assignments import FORMULA_PREFIXES, csv_texts

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row

_SEGMENT = "_custseg_segment"
_QUARTILES = "array(0.25, 0.5, 0.75)"


def spark_profile_columns(
    frame: DataFrame, n_rows: int, feature_set: FeatureSet, exclude: Sequence[str]
) -> tuple[list[str], list[str]]:
    """:func:`~custseg.domain.profiling.profiles.profile_columns` of ``frame``: numeric columns by
    their Spark type (booleans are not numeric), distinct values counted by Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    numeric_kind = {
        f.name: isinstance(f.dataType, T.NumericType)
        for f in frame.schema.fields
        if f.name != ROW_ID
    }

    def n_distinct(column: str) -> int:
        """Distinct values (missing is one), counted up to one more than a profile takes."""
        values = frame.select(F.expr(sql_name(column))).distinct()
        return values.limit(MAX_CATEGORIES + 1).count()

    return choose_profile_columns(numeric_kind, n_distinct, n_rows, feature_set, exclude)


def spark_profiles(
    frame: DataFrame, model: SegmentModel, numeric: Sequence[str], categorical: Sequence[str]
) -> SegmentProfiles:
    """``model``'s segments of ``frame`` profiled (see the module's docstring)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from custseg.backends.spark.sql import nearest_sql, segment_sql

    types = {f.name: f.dataType for f in frame.schema.fields}
    segment = F.expr(segment_sql(model, nearest_sql(model))[0]).alias(_SEGMENT)
    numbers = {f"_n{i}": _number(c) for i, c in enumerate(numeric)}
    texts = {
        f"_c{i}": _text(c, isinstance(types[c], T.BooleanType)) for i, c in enumerate(categorical)
    }
    columns = [e.alias(n) for n, e in {**numbers, **texts}.items()]
    scored = frame.select(segment, *columns).cache()
    try:
        return profiles_from(
            _aggregates(
                scored, list(numeric), list(numbers), dict(zip(categorical, texts, strict=True))
            ),
            numeric,
            categorical,
        )
    finally:
        scored.unpersist()


def _number(column: str) -> Column:
    """A numeric column as doubles, NaN as missing (pandas skips both)."""
    from pyspark.sql import functions as F

    value = F.expr(f"CAST({sql_name(column)} AS DOUBLE)")
    return F.nanvl(value, F.lit(None).cast("double"))


def _text(column: str, boolean: bool) -> Column:
    """A categorical column's text, as :func:`~custseg.domain.profiling.profiles._category_codes`
    gives it for the validated table's text and boolean columns (``True``/``False`` as
    Python writes them), missing cells as :data:`~custseg.domain.profiling.profiles.MISSING_CATEGORY`.
    Other types are cast by Spark, whose text of a number may differ from Python's
    (``1.0E7``)."""
    from pyspark.sql import functions as F

    value = F.expr(sql_name(column))
    text = (
        F.when(value, F.lit("True")).when(~value, F.lit("False"))
        if boolean
        else value.cast("string")
    )
    return F.coalesce(text, F.lit(MISSING_CATEGORY))


def _aggregates(
    scored: DataFrame, numeric: list[str], numbers: list[str], texts: Mapping[str, str]
) -> ProfileAggregates:
    """The profile's aggregates of ``scored`` (segment, numbers, texts), in Spark."""
    from pyspark.sql import functions as F

    def statistics(n: str) -> list[Column]:
        return [
            F.avg(n).alias(f"{n}_mean"),
            F.expr(f"percentile({n}, {_QUARTILES})").alias(f"{n}_quartiles"),
        ]

    per_segment = to_pandas(
        scored.groupBy(_SEGMENT).agg(
            F.count(F.lit(1)).alias("_size"), *[s for n in numbers for s in statistics(n)]
        )
    )
    per_segment = per_segment.set_index(_SEGMENT).sort_index()
    sizes = per_segment.pop("_size").astype(np.int64)
    segments = pd.Index([int(s) for s in sizes.index])
    overall_row = (
        scored.agg(
            *[s for n in numbers for s in statistics(n)],
            *[F.stddev_samp(n).alias(f"{n}_std") for n in numbers],
        ).first()
        if numbers
        else None
    )
    overall = pd.DataFrame(
        [_overall(overall_row, n) for n in numbers],
        index=pd.Index(numeric, name="column"),
        columns=["mean", "std", "median", "q1", "q3"],
    )
    means, medians, q1, q3 = (
        pd.DataFrame(
            {
                c: _per_segment(per_segment, n, statistic)
                for c, n in zip(numeric, numbers, strict=True)
            },
            index=segments,
        )
        for statistic in ("mean", 1, 0, 2)
    )
    return ProfileAggregates(
        sizes=pd.Series(sizes.to_numpy(), index=segments),
        overall=overall,
        means=means,
        medians=medians,
        q1=q1,
        q3=q3,
        pct=_median_percentiles(scored, numeric, numbers, medians),
        categories={c: _category_counts(scored, t, segments) for c, t in texts.items()},
    )


def _float(value: object) -> float:
    return float("nan") if value is None else float(value)


def _overall(row: Row, n: str) -> list[float]:
    """``mean``, ``std``, ``median``, ``q1``, ``q3`` of number ``n`` over every customer."""
    q1, median, q3 = row[f"{n}_quartiles"] or [None] * 3
    return [_float(row[f"{n}_mean"]), _float(row[f"{n}_std"]), *map(_float, (median, q1, q3))]


def _per_segment(frame: pd.DataFrame, n: str, statistic: str | int) -> np.ndarray:
    if statistic == "mean":
        return frame[f"{n}_mean"].astype(float).to_numpy()
    return np.array(
        [_float(q[statistic]) if q is not None else np.nan for q in frame[f"{n}_quartiles"]]
    )


def _median_percentiles(
    scored: DataFrame, numeric: list[str], numbers: list[str], medians: pd.DataFrame
) -> pd.DataFrame:
    """Where each segment's median falls among all customers (mid-rank percentile,
    :func:`custseg.domain.profiling.profiles._median_percentiles`), counted in one Spark pass."""
    from pyspark.sql import functions as F

    if not numbers:
        return pd.DataFrame(index=medians.index)
    counts = [F.count(n).alias(f"{n}_known") for n in numbers]
    for c, n in zip(numeric, numbers, strict=True):
        for s, m in medians[c].items():
            if not np.isnan(m):
                median = F.lit(float(m))
                counts.append(F.count(F.when(F.col(n) < median, 1)).alias(f"{n}_{s}_below"))
                counts.append(F.count(F.when(F.col(n) <= median, 1)).alias(f"{n}_{s}_upto"))
    found = scored.agg(*counts).first().asDict()
    out = pd.DataFrame(np.nan, index=medians.index, columns=medians.columns)
    for c, n in zip(numeric, numbers, strict=True):
        known = found[f"{n}_known"]
        for s in medians.index:
            if known and f"{n}_{s}_below" in found:
                below, upto = found[f"{n}_{s}_below"], found[f"{n}_{s}_upto"]
                out.at[s, c] = (below + upto) / (2.0 * known)
    return out


def _category_counts(scored: DataFrame, text: str, segments: pd.Index) -> pd.DataFrame:
    """Customers per segment (index ``segments``) and value text (sorted columns)."""
    counts = to_pandas(scored.groupBy(_SEGMENT, text).count())
    table = counts.pivot(index=_SEGMENT, columns=text, values="count")
    table = table.reindex(index=segments).fillna(0).astype(np.int64)
    return table.reindex(columns=sorted(str(v) for v in table.columns))


def write_spark_assignments(
    frame: DataFrame, model: SegmentModel, id_column: str | None, path: Path
) -> None:
    """Every customer's id, segment id, segment name and persona (when the model has
    personas), in the table's row order,
    written by Spark to ``path`` as the CSV :func:`custseg.storage.assignments.assignments_table`
    and :func:`custseg.storage.data.write_csv_atomic` write (the same bytes).

    Spark writes one CSV file into a temporary directory beside ``path``, which is then
    moved over ``path``: readers never see a half-written file.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from custseg.backends.spark.sql import nearest_sql, segment_sql

    position = nearest_sql(model)
    segment, _ = segment_sql(model, position)

    def by_position(values: list[str]) -> Column:
        texts = csv_texts(values).tolist()
        return F.element_at(F.array(*map(F.lit, texts)), F.expr(position))

    if id_column:
        ids = _formula_safe(F.expr(sql_name(id_column)).cast("string")).alias(id_column)
    else:
        ids = F.row_number().over(Window.orderBy(ROW_ID)).cast("string").alias("row")
    columns = [F.expr(segment).alias("segment"), by_position(model.names).alias("segment_name")]
    if model.personas:
        columns.append(by_position(model.personas).alias("persona"))
    rows = frame.select(ROW_ID, ids, *columns)
    one_file = rows.repartition(1).sortWithinPartitions(ROW_ID).drop(ROW_ID)
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        target = staging / "csv"
        (
            one_file.write.option("header", True)
            .option("quote", '"')
            .option("escape", '"')
            .option("lineSep", "\n")
            .option("encoding", "UTF-8")
            .option("ignoreLeadingWhiteSpace", False)
            .option("ignoreTrailingWhiteSpace", False)
            .option("emptyValue", "")
            .option("nullValue", "")
            .option("comment", "\u0000")  # else a value starting with '#' is quoted
            .csv(target.resolve().as_uri())
        )
        (part,) = target.glob("part-*.csv")
        os.replace(part, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _formula_safe(text: Column) -> Column:
    """:func:`custseg.storage.assignments.csv_texts` in Spark: a leading ``'`` where a spreadsheet
    could read a formula, then every carriage return a line break."""
    from pyspark.sql import functions as F

    risky = F.substring(text, 1, 1).isin(list(FORMULA_PREFIXES))
    safe = F.when(risky, F.concat(F.lit("'"), text)).otherwise(text)
    return F.regexp_replace(F.regexp_replace(safe, "\r\n", "\n"), "\r", "\n")
