"""A segment model scoring a table in Spark (``engine=spark``): the champion on a table
too large for one machine.

The model is written once, as Spark SQL (:func:`nearest_sql`, :func:`segment_sql`): each
numeric column through its transform and scaler, each categorical one one-hot encoded, the
squared distance to every centroid added column after column, the nearest centroid's
segment id and name (ties: the first, as
:func:`~custseg.domain.segment_model.nearest_centres`). The arithmetic is numpy's, operation
for operation and in the same order, so Spark's distances are the model's to the last bit
and every customer gets the segment the model's pyfunc gives (tested); the exception is
``log1p``, Java's, which may differ from numpy's in the last bit (to rounding, tested).

:func:`scoring_pipeline` is the same as a Spark ML ``PipelineModel`` (one
``SQLTransformer``), which can be saved, logged with ``mlflow.spark`` and loaded on a
cluster without custseg.
"""

from __future__ import annotations

import posixpath
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.backends.base import ModelScores
from custseg.backends.spark.engine import (
    ROW_ID,
    driver_sample,
    sql_name,
    to_pandas,
    validated_frame,
)
from custseg.backends.spark.sql import (
    _double,
    _text,
    distance_sql,
    nearest_sql,
    persona_sql,
    segment_sql,
)
from custseg.config import Settings
from custseg.domain.clustering import model_metrics
from custseg.domain.features import FeatureSet
from custseg.domain.profiling.profiles import SegmentProfiles
from custseg.domain.segment_model import (
    PERSONA_COLUMN,
    SEGMENT_COLUMN,
    SEGMENT_NAME_COLUMN,
    SegmentModel,
)
from custseg.errors import SparkScoringError
from custseg.storage.data import DataInfo

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def score_frame(model: SegmentModel, frame: DataFrame) -> DataFrame:
    """``frame`` with :data:`SEGMENT_COLUMN`, :data:`SEGMENT_NAME_COLUMN` and (when the
    model has personas) :data:`PERSONA_COLUMN` added, after checking its rows against
    the model's limits and allowed values.

    Raises
    ------
    SparkScoringError
        When the frame lacks an input column, or rows are outside the model's limits or
        allowed values (with how many, per column): nothing is scored.
    """
    missing = [c for c in model.columns if c not in frame.columns]
    if missing:
        raise SparkScoringError(f"the input lacks column(s) {missing} that the model uses")
    added = [SEGMENT_COLUMN, SEGMENT_NAME_COLUMN] + ([PERSONA_COLUMN] if model.personas else [])
    taken = [c for c in added if c in frame.columns]
    if taken:
        raise SparkScoringError(
            f"the input already has column(s) {taken}, which the output adds; rename or drop "
            "them (no input column is overwritten)"
        )
    from pyspark.sql import functions as F

    _check_inputs(model, frame)
    position = "__custseg_nearest"
    segment, name = segment_sql(model, sql_name(position))
    with_position = frame.withColumn(position, F.expr(nearest_sql(model)))
    columns = {SEGMENT_COLUMN: F.expr(segment), SEGMENT_NAME_COLUMN: F.expr(name)}
    if persona := persona_sql(model, sql_name(position)):
        columns[PERSONA_COLUMN] = F.expr(persona)
    return with_position.withColumns(columns).drop(position)


def _check_inputs(model: SegmentModel, frame: DataFrame) -> None:
    """Refuse rows the model's pyfunc refuses (:func:`refusals`), counted per column in
    one pass, with how many."""
    from pyspark.sql import functions as F

    checks = refusals(model)
    if not checks:
        return
    counts = frame.agg(*[F.count(F.when(F.expr(c), 1)).alias(n) for n, c in checks.items()])
    found = {name: n for name, n in counts.first().asDict().items() if n}
    if found:
        listed = ", ".join(f"{name}: {n} row(s)" for name, n in found.items())
        raise SparkScoringError(
            f"rows the model cannot score (missing, outside its limits or not among its "
            f"allowed values): {listed}; nothing was scored"
        )


def scoring_pipeline(model: SegmentModel):
    """The model as a Spark ML ``PipelineModel`` (one ``SQLTransformer``) adding
    :data:`SEGMENT_COLUMN`, :data:`SEGMENT_NAME_COLUMN` and (with personas)
    :data:`PERSONA_COLUMN` to a table of its inputs:
    it loads and scores on a cluster without custseg."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    position = nearest_sql(model)
    segment, name = segment_sql(model, position)
    persona = persona_sql(model, position)
    refused = _refused_sql(model)
    why = _text(
        "custseg: a row the model cannot score (a value missing, outside its limits or not "
        "among its allowed values): score the validated table"
    )
    # every column refuses: a query may keep only one of them
    columns = {SEGMENT_COLUMN: segment, SEGMENT_NAME_COLUMN: name}
    if persona:
        columns[PERSONA_COLUMN] = persona
    selected = ", ".join(
        f"CASE WHEN {refused} THEN raise_error({why}) ELSE {sql} END AS {column}"
        for column, sql in columns.items()
    )
    statement = f"SELECT *, {selected} FROM __THIS__"
    return PipelineModel(stages=[SQLTransformer(statement=statement)])


def save_pipeline(pipeline: Any, path: str | Path) -> None:
    """Save a Spark ML ``pipeline`` as the new local directory ``path``, on any master.

    Spark's executors write a saved pipeline, so it goes first to a temporary directory
    of the cluster's default file system (``$MLFLOW_DFS_TMP``, default ``/tmp/mlflow``,
    as ``mlflow.spark`` does: HDFS on most clusters), from which the driver copies it to
    ``path``; the temporary directory is removed, whatever happens.

    Raises
    ------
    SparkScoringError
        When Spark cannot save it there, or the copy lacks a part of the pipeline (the
        executors wrote to disks the driver does not see); ``path`` is then not created.
    """
    from mlflow.environment_variables import MLFLOW_DFS_TMP
    from py4j.protocol import Py4JJavaError
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        raise RuntimeError("saving a Spark pipeline needs a running SparkSession")
    destination = Path(path).resolve()
    if destination.exists():
        raise FileExistsError(f"{destination} exists: a pipeline is saved as a new directory")
    hadoop = context._jvm.org.apache.hadoop.fs
    temporary = hadoop.Path(posixpath.join(MLFLOW_DFS_TMP.get(), uuid.uuid4().hex))
    try:
        file_system = temporary.getFileSystem(context._jsc.hadoopConfiguration())
        try:
            pipeline.save(temporary.toString())
            # the raw local file system: no .crc file beside each part
            file_system.copyToLocalFile(False, temporary, hadoop.Path(destination.as_uri()), True)
        finally:
            file_system.delete(temporary, True)
    except Py4JJavaError as exc:
        shutil.rmtree(destination, ignore_errors=True)
        raise SparkScoringError(
            f"Spark could not save the pipeline through {temporary.toString()}: "
            f"{exc.java_exception}"
        ) from exc
    missing = missing_parts(destination, len(pipeline.stages))
    if missing:
        shutil.rmtree(destination, ignore_errors=True)
        raise SparkScoringError(
            f"the saved Spark pipeline reached the driver without {', '.join(missing)}: the "
            f"executors wrote {temporary.toString()} on disks the driver does not see; set "
            f"MLFLOW_DFS_TMP to a directory every node shares (on HDFS, or a shared mount)"
        )


def missing_parts(directory: Path, n_stages: int) -> list[str]:
    """The metadata files a saved ``PipelineModel`` of ``n_stages`` stages lacks in
    ``directory`` (empty when it is whole)."""
    stages = sorted(p for p in (directory / "stages").glob("*") if p.is_dir())
    missing = [
        str(d.relative_to(directory) / "metadata")
        for d in [directory, *stages]
        if not any((d / "metadata").glob("part-*"))
    ]
    if len(stages) < n_stages:
        missing.append(f"{n_stages - len(stages)} of its {n_stages} stage(s)")
    return missing


def _refused_sql(model: SegmentModel) -> str:
    """True (SQL) for a row the model's pyfunc refuses (any of :func:`refusals`)."""
    checks = refusals(model).values()
    return " OR ".join(f"({c})" for c in checks) if checks else "false"


def refusals(model: SegmentModel) -> dict[str, str]:
    """Per input column, true (SQL) where the model's pyfunc refuses the value: a numeric
    input missing, not finite or outside its limits (below 0 under ``log1p``), a
    categorical input missing or not allowed."""
    out = {}
    for column in model.numeric:
        x = f"CAST({sql_name(column)} AS DOUBLE)"
        checks = [f"{x} IS NULL", f"isnan({x})", f"abs({x}) = CAST('Infinity' AS DOUBLE)"]
        low, high = model.limits.get(column, [None, None])
        if low is not None:
            checks.append(f"{x} < {_double(low)}")
        if high is not None:
            checks.append(f"{x} > {_double(high)}")
        if model.transforms.get(column, {}).get("kind") == "log1p":
            checks.append(f"{x} < {_double(0.0)}")
        out[column] = " OR ".join(checks)
    for column in model.categorical:
        value = f"CAST({sql_name(column)} AS STRING)"
        checks = [f"{value} IS NULL"]
        if column in model.allowed:
            allowed = ", ".join(_text(v) for v in model.allowed[column])
            checks.append(f"NOT ({value} IN ({allowed}))")
        out[column] = " OR ".join(checks)
    return out


@dataclass
class SparkCustomerTable:
    """The validated table in Spark (``engine=spark``): what a stage asks of the
    customers is computed there, only aggregates and a seeded sample reach the driver
    (:class:`custseg.backends.base.CustomerTable`).

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        Every customer, with :data:`~custseg.backends.spark.engine.ROW_ID`.
    sample_size, seed
        The driver-side sample's (``sweep.silhouette_sample_size``, ``model.random_state``:
        the rows the Spark sweep scores its fits on).
    """

    frame: DataFrame
    info: DataInfo
    sample_size: int
    seed: int

    @classmethod
    def open(cls, settings: Settings) -> SparkCustomerTable:
        """``data.validated`` read by Spark on ``engine``."""
        frame, info = validated_frame(settings.data, settings.engine)
        return cls(frame, info, settings.sweep.silhouette_sample_size, settings.model.random_state)

    @cached_property
    def sample(self) -> pd.DataFrame:
        """The seeded driver-side sample (:func:`~custseg.backends.spark.engine.driver_sample`)."""
        return driver_sample(self.frame, self.info.n_rows, self.sample_size, self.seed)

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW_ID]

    def inertia(self, model: SegmentModel) -> float:
        """Sum of squared distances of the customers to their nearest centroid (the
        model's distances to the bit, summed per segment in Spark, then in centroid order)."""
        return self._whole_table(model)[0]["inertia"]

    def transitions(self, reference: SegmentModel, model: SegmentModel) -> pd.DataFrame:
        """Customers per (``reference``'s segment id, ``model``'s), counted in Spark:
        :func:`custseg.domain.identity.transitions` of the table."""
        from pyspark.sql import functions as F

        before = segment_sql(reference, nearest_sql(reference))[0]
        after = segment_sql(model, nearest_sql(model))[0]
        pairs = self.frame.groupBy(F.expr(before).alias("from"), F.expr(after).alias("to"))
        counts = to_pandas(pairs.count())
        crosstab = counts.pivot(index="from", columns="to", values="count")
        return crosstab.fillna(0).astype("int64")

    def scores(self, model: SegmentModel, silhouette_sample_size: int | None) -> ModelScores:
        """The model's scores as the Spark sweep scores a fit: silhouette,
        Calinski-Harabasz and Davies-Bouldin on the driver-side sample (of
        ``silhouette_sample_size`` rows, given at :meth:`open`), inertia and cluster
        sizes over every customer, in Spark."""
        ids, metrics, silhouettes = model_metrics(model, self.sample, None, self.seed)
        whole, sizes = self._whole_table(model)
        return ModelScores(self.sample, ids, metrics | whole, silhouettes, sizes)

    def _whole_table(self, model: SegmentModel) -> tuple[dict[str, float], dict[int, int]]:
        """Inertia and the smallest and largest cluster's size, over every customer, and
        the customers of each segment id."""
        from pyspark.sql import functions as F

        nearest_sql(model)  # refuses a model Spark cannot score
        distances = F.expr(f"array({', '.join(distance_sql(model))})")
        per_centroid = (
            self.frame.select(distances.alias("d"))
            .select(
                F.expr("array_position(d, array_min(d))").alias("position"),
                F.expr("array_min(d)").alias("distance"),
            )
            .groupBy("position")
            .agg(F.count(F.lit(1)).alias("size"), F.sum("distance").alias("inertia"))
        )
        found = to_pandas(per_centroid).set_index("position").sort_index()  # summed in order
        sizes = found["size"].reindex(range(1, model.k + 1), fill_value=0)
        metrics = {
            "inertia": float(found["inertia"].sum()),
            "min_cluster_size": float(sizes.min()),
            "max_cluster_size": float(sizes.max()),
        }
        by_id = {int(s): int(n) for s, n in zip(model.segments, sizes, strict=True) if n}
        return metrics, by_id

    def profile_columns(
        self, feature_set: FeatureSet, exclude: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        from custseg.backends.spark.aggregates import spark_profile_columns

        return spark_profile_columns(self.frame, self.info.n_rows, feature_set, exclude)

    def profiles(
        self, model: SegmentModel, numeric: Sequence[str], categorical: Sequence[str]
    ) -> SegmentProfiles:
        from custseg.backends.spark.aggregates import spark_profiles

        return spark_profiles(self.frame, model, numeric, categorical)

    def sizes(self, model: SegmentModel) -> dict[int, int]:
        """Customers per segment id, counted in Spark."""
        return self._whole_table(model)[1]

    def drawn(self, model: SegmentModel) -> tuple[pd.DataFrame, np.ndarray]:
        """The seeded driver-side sample and its segment ids (scored by the model, as
        Spark scores every customer)."""
        return self.sample, model.predict(self.sample)

    def write_assignments(self, model: SegmentModel, id_column: str | None, path: Path) -> None:
        from custseg.backends.spark.aggregates import write_spark_assignments

        write_spark_assignments(self.frame, model, id_column, path)
