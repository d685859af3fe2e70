"""The Spark backend (``engine=spark``): Spark validates, fits and scores; only
aggregates and a seeded sample reach the driver."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from custseg.backends.base import Backend, SweepEngine
from custseg.backends.spark.data import (
    spark_column_summary,
    validate_spark,
    write_parquet_dir,
    write_validated_spark,
)
from custseg.backends.spark.engine import fit_spark, read_validated, spark_session
from custseg.backends.spark.scoring import SparkCustomerTable, score_frame, scoring_pipeline
from custseg.backends.spark.sql import scoring_problem
from custseg.config import ConfigError, EngineConfig, Settings
from custseg.domain.clustering import FitResult
from custseg.domain.features import FeatureSet
from custseg.domain.segment_model import SEGMENT_COLUMN, SegmentModel
from custseg.errors import SparkScoringError
from custseg.storage.data import ColumnSummary, DataInfo, batch_config

if TYPE_CHECKING:
    from custseg.domain.monitoring.batch import BatchCounts

log = logging.getLogger(__name__)


def validate(settings: Settings) -> tuple[DataInfo, ColumnSummary]:
    """Validate in Spark; Spark writes the validated table (a directory)."""
    frame, info = validate_spark(settings.data, settings.engine)
    try:
        write_validated_spark(frame, info, settings.data)
        return info, spark_column_summary(frame)
    finally:
        frame.unpersist()  # the validated rows, cached by validate_spark


def sweep_engine(settings: Settings) -> SweepEngine:
    """Spark reads the validated Parquet and fits, from this process (no fork of a JVM's
    driver; Spark runs the work in parallel itself); the driver keeps a sample."""
    data = read_validated(
        settings.data,
        settings.engine,
        settings.sweep.silhouette_sample_size,
        settings.model.random_state,
    )

    def fit(table: pd.DataFrame, feature_set: FeatureSet, k: int, settings: Settings) -> FitResult:
        return fit_spark(
            data,
            feature_set,
            k,
            settings.model,
            settings.model.random_state,
            settings.preprocess.categorical_weight,
        )

    return SweepEngine(data.sample, data.info, fit, 1)


def score_batch(
    settings: Settings, source: Path, output: Path, model: Callable[[], SegmentModel]
) -> dict[int, int]:
    """Validate the customer table ``source`` in Spark, score it there with ``model()``
    and write ``output`` as Parquet (the validated columns, under their canonical names,
    + ``segment``, ``segment_name`` and ``persona``), in input order; customers per segment
    id."""
    if settings.transactions is not None or settings.predict.rejects:
        raise ConfigError(
            "engine=spark scores a customer table as a whole: not a transaction log, and "
            "without predict.rejects; use engine=sklearn for those"
        )
    if output.suffix != ".parquet":
        raise ConfigError(f"engine=spark writes Parquet: name predict.output={output} *.parquet")
    frame, _ = validate_spark(dataclasses.replace(settings.data, path=str(source)), settings.engine)
    try:
        segments = model()
        try:
            scored = score_frame(segments, frame)
        except SparkScoringError as exc:
            raise ValueError(f"cannot score {source}: {exc}") from exc
        write_parquet_dir(scored, output)
        written = scored.sparkSession.read.parquet(output.resolve().as_uri())
        return {int(r[0]): int(r[1]) for r in written.groupBy(SEGMENT_COLUMN).count().collect()}
    finally:
        frame.unpersist()  # the validated rows, cached by validate_spark


def flavour(model: SegmentModel, engine: EngineConfig) -> Any:
    """The model as a Spark ML pipeline, registered beside its pyfunc (MLflow's ``spark``
    flavour) to score large tables in Spark; None when Spark cannot score it."""
    if (problem := scoring_problem(model)) is not None:
        log.warning("model %s has no Spark flavour: %s", model.fingerprint[:12], problem)
        return None
    spark_session(engine)  # a pipeline stage needs the session's JVM
    return scoring_pipeline(model)


def count_batch(
    settings: Settings, source: Path, model: SegmentModel, reference: Mapping[str, Any]
) -> tuple[BatchCounts, str, dict[str, Any]]:
    """The batch validated in Spark as scoring validates it (a bad value refuses the whole
    batch, with its lines); rows outside the model's ranges are refused and counted per
    column; the others are counted by aggregation in Spark."""
    from pyspark.sql import functions as F

    from custseg.backends.spark.monitoring import spark_batch_counts
    from custseg.backends.spark.scoring import refusals

    data = batch_config(dataclasses.replace(settings.data, path=str(source)), model.columns)
    frame, info = validate_spark(data, settings.engine)
    try:
        checks = refusals(model)
        found: dict[str, int] = {}
        if checks:  # per column, in one pass
            counted = frame.agg(
                *[F.count(F.when(F.expr(c), 1)).alias(n) for n, c in checks.items()]
            )
            found = {n: k for n, k in counted.first().asDict().items() if k}
        kept = frame
        n_refused = 0
        if found:
            refused = F.expr(" OR ".join(f"({c})" for c in checks.values()))
            n_refused = frame.where(refused).count()
            kept = frame.where(~refused)
        counts = spark_batch_counts(kept, model, reference)
    finally:
        frame.unpersist()  # the validated rows, cached by validate_spark
    shown = [f"{column}: {n} row(s) the model's schema refuses" for column, n in found.items()]
    return counts, info.sha256, {"rows": n_refused, "first": shown}


SPARK = Backend(
    name="spark",
    validate=validate,
    sweep=sweep_engine,
    table=SparkCustomerTable.open,
    output_suffix=".parquet",
    score_batch=score_batch,
    flavour=flavour,
    count_batch=count_batch,
)
