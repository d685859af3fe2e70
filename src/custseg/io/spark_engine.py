"""The Spark MLlib engine (``engine=spark``): scale and cluster a customer table with Spark.

It lives in ``io`` because it does what ``io`` does (starts a JVM, reads files) and
returns what the scikit-learn engine returns: a
:class:`~custseg.core.clustering.FitResult` whose centres are in the project's encoded
space, so naming, stability, selection, the written models and MLflow logging are one
code path for both engines. ``custseg.core`` never imports Spark.

What runs where:

- Spark reads the validated Parquet (``data.validated``, written by ``custseg-validate``),
  scales it (``VectorAssembler`` + ``StandardScaler``), repartitions it to
  ``engine.partitions`` (sorted within partitions: a pinned, deterministic layout) and
  fits ``pyspark.ml.clustering.KMeans`` (``k-means||``; ``model.n_init`` restarts seeded
  from ``model.random_state``, the lowest cost kept);
  inertia is the training cost, the cluster sizes are Spark's, and the silhouette of
  ``ClusteringEvaluator`` (squared Euclidean distances: not scikit-learn's silhouette,
  never compared with it) is logged as :data:`SPARK_SILHOUETTE`.
- The driver holds a seeded sample of ``sweep.silhouette_sample_size`` customers
  (:func:`read_validated`): the scikit-learn silhouette, Calinski-Harabasz, Davies-Bouldin,
  stability, gap, plots and segment names are computed on it with the scikit-learn code.

Spark's ``StandardScaler`` divides by the sample standard deviation (``ddof=1``),
scikit-learn's by the population one (``ddof=0``), the project's ``standard`` scaler. The
two spaces differ by one factor ``c = sqrt(n / (n - 1))`` on every column, so nearest
centres are the same in both: the model is converted to the project's convention
(:func:`to_population_scale`): scale divided by ``c``, centres and distances times ``c``.
Its :class:`~custseg.core.segment_model.SegmentModel` then means what a scikit-learn one
means and scores every customer to the segment Spark's model gives.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.config import DataConfig, EngineConfig
from custseg.core.clustering import FitResult, partition_scores
from custseg.core.features import FeatureSet, ModelParams, build_preprocess
from custseg.core.segment_model import nearest_centres
from custseg.io.data import DataInfo, current_validated
from custseg.io.outputs import StaleInputError

if TYPE_CHECKING:  # pyspark is an optional extra, imported when the engine starts
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: the metric name of Spark's silhouette (``ClusteringEvaluator``: squared Euclidean
#: distances), never ``silhouette``: it is not scikit-learn's (0.74 vs 0.54 on one table)
SPARK_SILHOUETTE = "silhouette_sq_euclidean_spark"
#: a column added to the table: its row order (sampling and partitioning are keyed on it)
ROW_ID = "_custseg_row"
_FEATURES, _SCALED, _CLUSTER = "_custseg_features", "_custseg_scaled", "_custseg_cluster"
#: Spark settings of every session, before ``engine.conf`` (which may override them)
_DEFAULT_CONF = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}

#: the process's session (a JVM has one driver): started by the first :func:`spark_session`
_SESSION: dict[str, Any] = {}


def spark_session(engine: EngineConfig) -> SparkSession:
    """The process's SparkSession, started on first use from ``engine``.

    A process has one driver: a later call with another master or driver memory gets the
    running session (with a warning); the shuffle partitions are set on every call.

    Raises
    ------
    ModuleNotFoundError
        When pyspark is not installed (the ``spark`` extra), with how to install it.
    """
    if "session" not in _SESSION:
        _SESSION["session"], _SESSION["engine"] = _start(engine), engine
    started: EngineConfig = _SESSION["engine"]
    if (started.master, started.driver_memory) != (engine.master, engine.driver_memory):
        log.warning(
            "Spark already runs with master=%s driver_memory=%s in this process; "
            "engine.master=%s and engine.driver_memory=%s take effect in a new process",
            started.master, started.driver_memory, engine.master, engine.driver_memory,
        )  # fmt: skip
    session: SparkSession = _SESSION["session"]
    session.conf.set("spark.sql.shuffle.partitions", str(engine.partitions))
    return session


def _start(engine: EngineConfig) -> SparkSession:
    """A new SparkSession configured from ``engine``, logging errors only."""
    try:
        with _pandas_3_tolerated():
            from pyspark.sql import SparkSession
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "engine=spark needs pyspark: pip install -e '.[spark]' (make install does), "
            "and Java 17 or later"
        ) from exc
    builder = SparkSession.builder.appName("custseg").master(engine.master)
    settings = {
        **_DEFAULT_CONF,
        **{str(k): str(v) for k, v in engine.conf.items()},
        "spark.driver.memory": engine.driver_memory,
        "spark.sql.shuffle.partitions": str(engine.partitions),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    start = time.perf_counter()
    with _pandas_3_tolerated():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    log.info("Spark session on %s in %.1f s", engine.master, time.perf_counter() - start)
    return session


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame`` as pandas (:func:`_pandas_3_tolerated`)."""
    with _pandas_3_tolerated():
        return frame.toPandas()


@contextmanager
def _pandas_3_tolerated() -> Iterator[None]:
    """Without PySpark 4.3's warning that pandas >= 3 is not fully supported (at start-up
    and on conversions): this module converts numeric and text columns only (tested)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


@dataclass
class SparkTable:
    """The validated table as Spark reads it, with its driver-side sample.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        Every customer, with :data:`ROW_ID` (the file's row order).
    sample : DataFrame
        A seeded sample of at most ``sample_size`` customers (every one when fewer), in
        the file's row order, as pandas: what the driver computes on.
    info : DataInfo
        The data file, its hash and the row count of the whole table.
    """

    frame: DataFrame
    sample: pd.DataFrame
    info: DataInfo
    engine: EngineConfig
    _scaled: dict[str, tuple[DataFrame, ScalerStats]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ScalerStats:
    """What Spark's ``StandardScaler`` fitted: the mean and the sample standard deviation
    (``ddof=1``) of every column, over ``n`` rows."""

    mean: np.ndarray
    std: np.ndarray
    n: int


def read_validated(
    data: DataConfig, engine: EngineConfig, sample_size: int, seed: int
) -> SparkTable:
    """Read ``data.validated`` with Spark and draw the driver-side sample.

    The sample is the ``sample_size`` rows with the lowest seeded hash of their row
    number: the same rows on every run and any partitioning.

    Raises
    ------
    StaleInputError
        When the validated Parquet is absent or not the validation of the current data
        and schema (Spark never reads the CSV): ``custseg-validate`` writes it.
    """
    info = current_validated(data)
    if info is None:
        raise StaleInputError(
            f"engine=spark reads the validated table {data.validated}, which is absent or "
            f"not the validation of the current {data.path} and schema; run custseg-validate "
            "first (dvc repro does)"
        )
    from pyspark.sql import functions as F

    session = spark_session(engine)
    frame = session.read.parquet(str(Path(data.validated).resolve()))
    frame = frame.withColumn(ROW_ID, F.monotonically_increasing_id())
    chosen = frame
    if info.n_rows > sample_size:
        chosen = frame.orderBy(F.xxhash64(F.col(ROW_ID), F.lit(seed)), ROW_ID).limit(sample_size)
    sample = to_pandas(chosen.orderBy(ROW_ID)).drop(columns=ROW_ID).reset_index(drop=True)
    return SparkTable(frame, sample, info, engine)


def scaled_features(table: SparkTable, feature_set: FeatureSet) -> tuple[DataFrame, ScalerStats]:
    """The numeric columns of ``feature_set`` as one standardised vector column, in
    ``engine.partitions`` partitions sorted by row (cached), and the scaler's statistics.

    One feature set is cached at a time (the sweep fits every k of one set, then the next).
    """
    if feature_set.name in table._scaled:
        return table._scaled[feature_set.name]
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    for cached, _ in table._scaled.values():
        cached.unpersist()
    table._scaled.clear()
    assembled = VectorAssembler(
        inputCols=list(feature_set.numeric), outputCol=_FEATURES, handleInvalid="error"
    ).transform(table.frame.select(ROW_ID, *feature_set.numeric))
    scaler = StandardScaler(withMean=True, withStd=True, inputCol=_FEATURES, outputCol=_SCALED)
    fitted = scaler.fit(assembled)
    scaled = (
        fitted.transform(assembled)
        .select(ROW_ID, _SCALED)
        .repartition(table.engine.partitions, ROW_ID)
        .sortWithinPartitions(ROW_ID)
        .cache()
    )
    n = scaled.count()
    stats = ScalerStats(fitted.mean.toArray(), fitted.std.toArray(), n)
    table._scaled[feature_set.name] = (scaled, stats)
    return scaled, stats


def to_population_scale(
    stats: ScalerStats, centres: np.ndarray, cost: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spark's scaled space in the project's ``standard`` convention (``ddof=0``).

    Returns the population standard deviations (1 for a constant column, as
    scikit-learn), the centres and the sum of squared distances in that space. A
    constant column is 0 in both spaces; every other one is ``c = sqrt(n / (n - 1))``
    times larger in the project's, so nearest centres do not change.
    """
    c = np.sqrt(stats.n / (stats.n - 1)) if stats.n > 1 else 1.0
    constant = stats.std == 0
    scale = np.where(constant, 1.0, stats.std / c)
    factor = np.where(constant, 1.0, c)
    return scale, np.asarray(centres, dtype=float) * factor, float(cost) * c**2


def fit_spark(
    table: SparkTable,
    feature_set: FeatureSet,
    k: int,
    params: ModelParams,
    random_state: int = 0,
) -> FitResult:
    """Fit Spark's KMeans on ``feature_set`` with ``k`` clusters and score it.

    Spark gives the centres (:func:`best_of_restarts`), inertia (training cost),
    iterations, cluster sizes and
    :data:`SPARK_SILHOUETTE` on every customer; the scikit-learn silhouette,
    Calinski-Harabasz and Davies-Bouldin are computed on the driver-side sample, whose
    rows, labels and encoding are the result's ``transformed`` and ``labels``.
    ``params.algorithm`` has no Spark counterpart; ``params.tol`` is Spark's (every centre
    moves less than it), not scikit-learn's relative tolerance.

    Raises
    ------
    ValueError
        When Spark finds fewer than ``k`` clusters (fewer distinct customers than k).
    """
    if feature_set.categorical or feature_set.active_transforms:
        raise ValueError(f"engine=spark: feature set {feature_set.name!r} is not plain numeric")
    scaled, stats = scaled_features(table, feature_set)
    start = time.perf_counter()
    model = best_of_restarts(scaled, k, params)
    fit_seconds = time.perf_counter() - start
    summary = model.summary
    spark_centres = np.array([np.asarray(c) for c in model.clusterCenters()])
    if len(spark_centres) != k:
        raise ValueError(f"Spark's KMeans found {len(spark_centres)} clusters for k={k}")
    scale, centres, inertia = to_population_scale(stats, spark_centres, summary.trainingCost)
    preprocess = _standard_preprocess(feature_set, table.sample, stats.mean, scale)
    X = np.asarray(preprocess.transform(table.sample), dtype=float)
    labels = nearest_centres(X, centres)[0]
    metrics, silhouettes = partition_scores(X, labels, k, None, random_state)
    sizes = np.asarray(summary.clusterSizes, dtype=float)
    metrics |= {
        "min_cluster_size": float(sizes.min()),
        "max_cluster_size": float(sizes.max()),
        "inertia": inertia,
        "n_iter": float(summary.numIter),
        "fit_seconds": fit_seconds,
        SPARK_SILHOUETTE: spark_silhouette(summary.predictions),
    }
    return FitResult(feature_set, k, preprocess, 1.0, centres, labels, X, metrics, silhouettes)


def spark_silhouette(predictions: DataFrame) -> float:
    """``ClusteringEvaluator``'s silhouette (squared Euclidean) of Spark's predictions;
    NaN when it is undefined (one cluster)."""
    from pyspark.ml.evaluation import ClusteringEvaluator

    if predictions.select(_CLUSTER).distinct().limit(2).count() < 2:
        return float("nan")
    evaluator = ClusteringEvaluator(
        featuresCol=_SCALED,
        predictionCol=_CLUSTER,
        metricName="silhouette",
        distanceMeasure="squaredEuclidean",
    )
    return float(evaluator.evaluate(predictions))


def _standard_preprocess(
    feature_set: FeatureSet, sample: pd.DataFrame, mean: np.ndarray, scale: np.ndarray
) -> Any:
    """The project's ``standard`` encoding of ``feature_set`` holding Spark's statistics
    (``mean``, and ``scale`` in the ``ddof=0`` convention): set up on the sample, then
    given the whole table's values, so it encodes as Spark's scaler did (converted)."""
    preprocess = build_preprocess(feature_set, "standard").fit(sample)
    scaler = preprocess.named_transformers_["numeric"]
    scaler.mean_, scaler.scale_, scaler.var_ = mean.copy(), scale.copy(), scale**2
    return preprocess


def spark_kmeans(k: int, params: ModelParams) -> Any:
    """An unfitted ``pyspark.ml.clustering.KMeans`` with the settings of ``params`` that
    Spark has (``k-means||`` starts, seeded by ``params.random_state``)."""
    from pyspark.ml.clustering import KMeans

    return KMeans(
        k=k,
        seed=params.random_state,
        maxIter=params.max_iter,
        tol=params.tol,
        initMode="k-means||",
        featuresCol=_SCALED,
        predictionCol=_CLUSTER,
    )


def best_of_restarts(scaled: DataFrame, k: int, params: ModelParams) -> Any:
    """The fitted Spark ``KMeansModel`` of lowest training cost among ``params.n_init``
    fits seeded ``params.random_state``, ``+1``, ... (the first on a tie).

    Spark's KMeans has no restarts of its own, and one ``k-means||`` start can stop in a
    poor local optimum (on the Mall table at k=5, seed 42: cost 98.2 against 65.2).
    Each restart is a full pass over the table: lower ``model.n_init`` on a large one.
    """
    best = None
    for i in range(params.n_init):
        seeded = replace(params, random_state=params.random_state + i)
        model = spark_kmeans(k, seeded).fit(scaled)
        if best is None or model.summary.trainingCost < best.summary.trainingCost:
            best = model
    return best


def spark_segments(
    table: SparkTable, feature_set: FeatureSet, k: int, params: ModelParams
) -> pd.DataFrame:
    """Spark's own cluster of every customer (``KMeansModel.transform`` of the fit
    :func:`fit_spark` makes) next to the feature columns, as pandas in row order."""
    scaled, _ = scaled_features(table, feature_set)
    clusters = best_of_restarts(scaled, k, params).transform(scaled).select(ROW_ID, _CLUSTER)
    joined = table.frame.select(ROW_ID, *feature_set.numeric).join(clusters, ROW_ID)
    rows = to_pandas(joined.orderBy(ROW_ID).drop(ROW_ID))
    return rows.rename(columns={_CLUSTER: "spark_cluster"})
