"""Fit one feature set and k (KMeans or k-prototypes), and score the result."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.domain.algorithms import Encoded, algorithm_name, fit_centres
from custseg.domain.features import FeatureSet, ModelParams, build_preprocess, categorical_scale
from custseg.domain.segment_model import SegmentModel, nearest_centres

if TYPE_CHECKING:  # scikit-learn is imported by the functions that fit or score (start-up)
    from sklearn.compose import ColumnTransformer


@dataclass
class FitResult:
    """One fitted (feature set, k) with its labels and metrics.

    Attributes
    ----------
    preprocess : ColumnTransformer
        The fitted encoding: numeric columns transformed and scaled, one-hot columns
        times ``scale``
        (:func:`~custseg.domain.features.categorical_scale`).
    centres : ndarray of shape (k, n_features_out)
        One centre per cluster in the encoded space.
    transformed : ndarray of shape (n_samples, n_features_out)
        The table in the encoded space the model clustered.
    """

    feature_set: FeatureSet
    k: int
    preprocess: ColumnTransformer
    scale: float
    centres: np.ndarray
    labels: np.ndarray
    transformed: np.ndarray
    metrics: dict[str, float]
    #: rows of the silhouette sample and their silhouettes (the metric is their mean; the
    #: silhouette diagram draws them): computed once per fit
    silhouettes: SilhouetteSample
    #: customers per cluster (by centre) of the whole table when ``labels`` are a sample's
    #: (the Spark engine's); None when ``labels`` are every customer's
    sizes: np.ndarray | None = None

    def shares(self) -> pd.Series:
        """Each cluster's share of the customers (by cluster), over the whole table."""
        if self.sizes is None:
            return pd.Series(self.labels).value_counts(normalize=True)
        return pd.Series(self.sizes / self.sizes.sum())

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """The cluster of each customer of ``table`` (nearest centre)."""
        X = np.asarray(self.preprocess.transform(table), dtype=float)
        return nearest_centres(X, self.centres)[0]


@dataclass(frozen=True)
class SilhouetteSample:
    """Per-row silhouettes of the rows ``rows`` (all rows, or a seeded sample)."""

    rows: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Encoding:
    """A table in a feature set's encoded space: what each k of a sweep clusters.

    Attributes
    ----------
    preprocess : ColumnTransformer
        The fitted encoding (see :attr:`FitResult.preprocess`).
    X : ndarray of shape (n_samples, n_features_out)
        The encoded table, read-only (every fit of the feature set clusters it).
    """

    feature_set: FeatureSet
    preprocess: ColumnTransformer
    scale: float
    X: np.ndarray
    data: Encoded


def encode(
    table: pd.DataFrame, feature_set: FeatureSet, scaler: str, categorical_weight: float = 1.0
) -> Encoding:
    """Fit ``feature_set``'s encoding on ``table`` and encode it (see :func:`fit_model`)."""
    scale = categorical_scale(table, feature_set, scaler, categorical_weight)
    preprocess = build_preprocess(feature_set, scaler, scale).fit(table)
    X = np.asarray(preprocess.transform(table), dtype=float)
    X.flags.writeable = False
    categories = encoder_categories(preprocess, feature_set)
    data = Encoded(X, len(feature_set.numeric), table[feature_set.categorical], categories, scale)
    return Encoding(feature_set, preprocess, scale, X, data)


class LastEncoding:
    """The last :func:`encode` of a table, kept for the next fit of the same feature set.

    A sweep's fits come feature set after feature set, and every k of one clusters the
    same encoded table: encoding it once saves a pass over the table per fit (on 1M
    customers with a categorical column, a third of a fit). Holds one encoding at a time,
    so memory stays that of one fit.
    """

    def __init__(self) -> None:
        self._table: pd.DataFrame | None = None
        self._settings: tuple[FeatureSet, str, float] | None = None
        self._encoding: Encoding | None = None

    def __call__(
        self,
        table: pd.DataFrame,
        feature_set: FeatureSet,
        scaler: str,
        categorical_weight: float = 1.0,
    ) -> Encoding:
        """:func:`encode`, or the kept encoding of the same table object and settings."""
        settings = (feature_set, scaler, categorical_weight)
        if self._encoding is None or self._table is not table or self._settings != settings:
            self._table = self._settings = self._encoding = None  # let the last one go first
            self._encoding = encode(table, feature_set, scaler, categorical_weight)
            self._table, self._settings = table, settings
        return self._encoding


def fit_model(
    table: pd.DataFrame,
    feature_set: FeatureSet,
    scaler: str,
    params: ModelParams,
    k: int,
    silhouette_sample_size: int | None = None,
    categorical_weight: float = 1.0,
) -> FitResult:
    """Cluster ``table`` on ``feature_set`` into ``k`` segments with the engine
    ``params.name`` (:mod:`custseg.domain.algorithms`) and compute the fit's metrics.

    Parameters
    ----------
    table : DataFrame
        Customer table with canonical column names; extra columns are ignored.
    silhouette_sample_size : int, optional
        Compute the silhouette on a seeded random sample of this many rows when the table
        is larger (the exact score is quadratic in the number of rows).
    categorical_weight : float
        Distance between two categories of a categorical column, in typical numeric
        standard deviations (:func:`~custseg.domain.features.categorical_scale`).
    """
    encoding = encode(table, feature_set, scaler, categorical_weight)
    return fit_encoded(encoding, params, k, silhouette_sample_size)


def fit_encoded(
    encoding: Encoding, params: ModelParams, k: int, silhouette_sample_size: int | None = None
) -> FitResult:
    """:func:`fit_model` of an encoded table (:func:`encode`)."""
    X, feature_set = encoding.X, encoding.feature_set
    if k > len(X):
        raise ValueError(f"k={k} is larger than the number of customers ({len(X)})")
    start = time.perf_counter()
    fitted = fit_centres(encoding.data, params, k, algorithm_name(params, feature_set))
    fit_seconds = time.perf_counter() - start
    metrics, silhouettes = partition_scores(
        X, fitted.labels, k, silhouette_sample_size, params.random_state
    )
    metrics.update(inertia=fitted.inertia, n_iter=float(fitted.n_iter), fit_seconds=fit_seconds)
    return FitResult(
        feature_set,
        k,
        encoding.preprocess,
        encoding.scale,
        fitted.centres,
        fitted.labels,
        X,
        metrics,
        silhouettes,
    )


def encoder_categories(preprocess: ColumnTransformer, feature_set: FeatureSet) -> list[list[str]]:
    """The categories of each categorical column, in one-hot order, of a fitted encoding."""
    if not feature_set.categorical:
        return []
    encoder = preprocess.named_transformers_["categorical"]
    return [[str(v) for v in cats] for cats in encoder.categories_]


def fit_warnings(metrics: Mapping[str, float], max_iter: int) -> list[str]:
    """What is wrong with a fit, from its metrics: stopped at ``max_iter`` (not converged),
    an empty cluster, or a cluster of one customer."""
    found = []
    if metrics["n_iter"] >= max_iter:
        found.append(f"stopped at max_iter={max_iter} before converging")
    if metrics["min_cluster_size"] == 0:
        found.append("an empty cluster")
    elif metrics["min_cluster_size"] == 1:
        found.append("a cluster of a single customer")
    return found


def cluster_sizes(labels: np.ndarray, k: int) -> np.ndarray:
    """Number of members of each cluster ``0..k-1`` (empty clusters count 0)."""
    return np.bincount(np.asarray(labels, dtype=int), minlength=k)


def cluster_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    k: int,
    silhouette_sample_size: int | None = None,
    random_state: int = 0,
) -> dict[str, float]:
    """Internal validity scores of a partition of ``X``.

    Returns silhouette (higher is better), Calinski-Harabasz (higher is better),
    Davies-Bouldin (lower is better) and the smallest and largest cluster sizes. Scores
    that are undefined (fewer than two distinct clusters) are NaN.
    """
    return partition_scores(X, labels, k, silhouette_sample_size, random_state)[0]


def partition_scores(
    X: np.ndarray,
    labels: np.ndarray,
    k: int,
    silhouette_sample_size: int | None,
    random_state: int,
) -> tuple[dict[str, float], SilhouetteSample]:
    """:func:`cluster_metrics` and the silhouette sample its silhouette is the mean of."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    sizes = cluster_sizes(labels, k)
    metrics = {
        "min_cluster_size": float(sizes.min()),
        "max_cluster_size": float(sizes.max()),
    }
    silhouettes = silhouette_sample(X, labels, silhouette_sample_size, random_state)
    n_distinct = int(np.count_nonzero(sizes))
    if not 2 <= n_distinct <= len(X) - 1:
        nan = {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
        return metrics | nan, silhouettes
    metrics["silhouette"] = float(np.mean(silhouettes.values))
    metrics["calinski_harabasz"] = float(calinski_harabasz_score(X, labels))
    metrics["davies_bouldin"] = float(davies_bouldin_score(X, labels))
    return metrics, silhouettes


def silhouette_sample(
    X: np.ndarray, labels: np.ndarray, sample_size: int | None, random_state: int
) -> SilhouetteSample:
    """Silhouettes of every row, or of ``sample_size`` rows drawn as scikit-learn draws them.

    The mean equals ``silhouette_score(X, labels, sample_size=..., random_state=...)``
    (same rows, same order), so the score and the diagram come from one computation.
    Where the silhouette is undefined (fewer than two clusters among the rows, or only
    singletons) every value is 0.
    """
    if sample_size and len(X) > sample_size:
        rows = np.random.RandomState(random_state).permutation(len(X))[:sample_size]
    else:
        rows = np.arange(len(X))
    sampled = np.asarray(labels)[rows]
    if not 2 <= len(np.unique(sampled)) <= len(rows) - 1:
        return SilhouetteSample(rows, np.zeros(len(rows)))
    return SilhouetteSample(rows, silhouette_values(X[rows], sampled))


def silhouette_values(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of every row of ``X`` (Euclidean), as scikit-learn's
    ``silhouette_samples`` computes it, about three times faster.

    The distances are computed as scikit-learn computes them, a few rows at a time (so a
    block stays in the CPU cache), and summed per cluster with one matrix product; the
    values agree with scikit-learn's to rounding (1e-15). A row alone in its cluster
    scores 0. Needs at least two clusters among ``labels``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
        Any hashable cluster ids.
    """
    X = np.asarray(X, dtype=float)
    n = len(X)
    _, codes = np.unique(labels, return_inverse=True)
    members = np.zeros((n, int(codes.max()) + 1))
    members[np.arange(n), codes] = 1.0
    sizes = members.sum(axis=0)
    squared = np.einsum("ij,ij->i", X, X)
    sums = np.empty_like(members)  # row -> sum of its distances to each cluster's rows
    chunk = max(16, (1 << 19) // max(n, 1))  # a block of at most 4 MiB
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = -2.0 * (X[start:stop] @ X.T)  # scikit-learn's euclidean_distances
        block += squared[start:stop, None]
        block += squared[None, :]
        np.maximum(block, 0.0, out=block)
        np.sqrt(block, out=block)
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums[start:stop] = block @ members
    own = sizes[codes]
    within = sums[np.arange(n), codes] / np.maximum(own - 1, 1)
    between = sums / sizes
    between[np.arange(n), codes] = np.inf
    nearest = between.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (nearest - within) / np.maximum(within, nearest)
    values[own == 1] = 0.0
    return np.nan_to_num(values)


def centroids_in_original_units(
    table: pd.DataFrame, labels: np.ndarray, columns: list[str]
) -> pd.DataFrame:
    """Mean of each numeric column per cluster, in the table's own units.

    For KMeans with a linear scaler and no transform these are exactly the fitted centres
    mapped back to original units (with a transform, the mean of the values is not the
    inverse transform of the mean transformed value, which
    :meth:`~custseg.domain.segment_model.SegmentModel.centroid_table` gives); indexed by
    cluster id.
    """
    return table[columns].groupby(np.asarray(labels)).mean().rename_axis("cluster")


def segment_model(
    result: FitResult, scaler: str, names: Mapping[int, str], data_sha256: str = ""
) -> SegmentModel:
    """The fitted pipeline of ``result`` as a :class:`SegmentModel` with provisional ids.

    Ids are KMeans's labels ``0..k-1`` and ``names`` names them; give them stable ids
    with :func:`custseg.domain.identity.assign_identity`.
    """
    fs = result.feature_set
    transforms, scaler_step = _numeric_steps(result.preprocess.named_transformers_.get("numeric"))
    center, scale = _linear_scaler(scaler_step, len(fs.numeric))
    categories = dict(zip(fs.categorical, encoder_categories(result.preprocess, fs), strict=True))
    return SegmentModel(
        feature_set=fs.name,
        numeric=list(fs.numeric),
        categorical=list(fs.categorical),
        center=center,
        scale=scale,
        categories=categories,
        centroids=np.asarray(result.centres, dtype=float).tolist(),
        segments=list(range(result.k)),
        # a cluster KMeans left empty (fewer distinct customers than k) has no profile
        names=[str(names.get(i, f"Empty segment {i}")) for i in range(result.k)],
        data_sha256=data_sha256,
        scaler=scaler,
        categorical_scale=result.scale,
        transforms=transforms,
    )


def _numeric_steps(step: Any) -> tuple[dict[str, dict], Any]:
    """The fitted transforms (column -> spec) and the scaler of a fitted numeric step of
    :func:`~custseg.domain.features.make_numeric_step`."""
    from sklearn.pipeline import Pipeline

    if isinstance(step, Pipeline):
        return dict(step.named_steps["transform"].specs_), step.named_steps["scale"]
    return {}, step


def _linear_scaler(step: Any, n: int) -> tuple[list[float], list[float]]:
    """``(center, scale)`` such that the fitted ``step`` computes ``(x - center) / scale``."""
    from sklearn.preprocessing import (
        FunctionTransformer,
        MinMaxScaler,
        RobustScaler,
        StandardScaler,
    )

    if (
        step is None
        or step == "passthrough"
        or (isinstance(step, FunctionTransformer) and step.func is None)
    ):
        return [0.0] * n, [1.0] * n
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else np.zeros(n)
        scale = step.scale_ if step.with_std else np.ones(n)
        return list(map(float, mean)), list(map(float, scale))
    if isinstance(step, MinMaxScaler):  # x * scale_ + min_
        return list(map(float, -step.min_ / step.scale_)), list(map(float, 1 / step.scale_))
    if isinstance(step, RobustScaler):
        return list(map(float, step.center_)), list(map(float, step.scale_))
    raise TypeError(f"cannot describe scaler {type(step).__name__} as (x - center) / scale")


def model_metrics(
    model: SegmentModel,
    table: pd.DataFrame,
    silhouette_sample_size: int | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, dict[str, float], SilhouetteSample]:
    """Score ``model`` on ``table`` as :func:`fit_model` scores a fit.

    Returns
    -------
    ids : ndarray of int64
        Segment id of every row.
    metrics : dict
        :func:`cluster_metrics` plus ``inertia`` (the same values as the fit's, for the
        model of a fit on the same table).
    silhouettes : SilhouetteSample
        The sample the silhouette score is the mean of (for the silhouette diagram).
    """
    rows, distances = model.nearest(table)
    metrics, silhouettes = partition_scores(
        model.transform(table), rows, model.k, silhouette_sample_size, random_state
    )
    metrics["inertia"] = float(distances.sum())
    return np.asarray(model.segments, dtype=np.int64)[rows], metrics, silhouettes
