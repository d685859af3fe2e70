"""Clustering algorithms behind one seam, chosen by ``model.name`` in the config.

Every engine clusters the encoded table ``X`` (scaled numeric columns, then the weighted
one-hot columns of each categorical column) into centres in that same space, so every
fitted model is a nearest-centre :class:`~custseg.domain.segment_model.SegmentModel`:

- ``kmeans``: scikit-learn's KMeans;
- ``kprototypes``: the kmodes package's KPrototypes (Huang 1997): the numeric part of a
  centre is the mean, its categorical part the mode. Its cost, squared distance plus
  ``gamma`` per mismatched category, is the squared distance in ``X`` when ``gamma`` is
  twice the square of the one-hot factor and a centre's one-hot block is its mode's. On a
  feature set without categorical columns it is k-means, and fitted as such.

Each engine also gives a :data:`~custseg.domain.stability.Refit` (:func:`refit_for`) for
the many small refits of the stability estimate and the seed checks. kmodes takes seconds per refit of 2,000 customers, so the
k-prototypes refits are the same algorithm in numpy, with batch updates
(:func:`batch_kprototypes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.segment_model import SegmentModel, nearest_centres
from custseg.domain.stability import Refit

if TYPE_CHECKING:  # scikit-learn and kmodes are imported when a model is fitted (start-up)
    from sklearn.cluster import KMeans

#: ``(start, stop)`` column range of each categorical column's one-hot block in ``X``
Blocks = list[tuple[int, int]]


@dataclass(frozen=True)
class Fitted:
    """What an engine returns: a centre per cluster in the encoded space, each row's
    cluster, the sum of squared distances to the centres and the iterations run."""

    centres: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


@dataclass(frozen=True)
class Encoded:
    """A table as the engines see it.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features_out)
        Scaled numeric columns, then each categorical column's one-hot block times
        ``scale``.
    categorical : DataFrame
        The raw categorical columns (for kmodes; converted only by the engine that uses
        them).
    categories : list of list of str
        Each categorical column's categories, in one-hot order.
    """

    X: np.ndarray
    n_numeric: int
    categorical: pd.DataFrame
    categories: list[list[str]]
    scale: float


def categorical_blocks(n_numeric: int, sizes: Sequence[int]) -> Blocks:
    """Column ranges of one-hot blocks of ``sizes`` columns that follow ``n_numeric``."""
    stops = n_numeric + np.cumsum(sizes, dtype=int)
    return [(int(stop - size), int(stop)) for stop, size in zip(stops, sizes, strict=True)]


def algorithm_name(params: ModelParams, feature_set: FeatureSet) -> str:
    """The algorithm that fits ``feature_set``: k-prototypes without categorical columns is
    k-means, and fitted as such."""
    return params.name if feature_set.categorical else "kmeans"


def fit_centres(data: Encoded, params: ModelParams, k: int, algorithm: str) -> Fitted:
    """Cluster ``data`` into ``k`` centres with ``algorithm`` (:func:`algorithm_name`)."""
    return _ALGORITHMS[algorithm](data, params, k)


def refit_for(params: ModelParams, model: SegmentModel, n_init: int) -> Refit:
    """The :data:`~custseg.domain.stability.Refit` of the engine that fitted ``model`` (in
    its encoded space), with ``params`` and ``n_init`` starts."""
    if params.name == "kprototypes" and model.categorical:
        sizes = [len(model.categories[c]) for c in model.categorical]
        blocks = categorical_blocks(len(model.numeric), sizes)
        return lambda X, k, seed: batch_kprototypes(
            X, k, blocks, model.categorical_scale, seed, n_init=n_init, max_iter=params.max_iter
        )
    return lambda X, k, seed: (
        make_kmeans(replace(params, n_init=n_init, random_state=seed), k).fit(X).labels_
    )


def make_kmeans(params: ModelParams, k: int) -> KMeans:
    """An unfitted KMeans with every setting of ``params`` (k-means++ for a k-prototypes
    ``init``: the engine of k-prototypes without categorical columns)."""
    from sklearn.cluster import KMeans

    return KMeans(
        n_clusters=k,
        init=params.init if params.name == "kmeans" else "k-means++",
        n_init=params.n_init,
        max_iter=params.max_iter,
        tol=params.tol,
        algorithm=params.algorithm,
        random_state=params.random_state,
    )


def _kmeans(data: Encoded, params: ModelParams, k: int) -> Fitted:
    kmeans = _restarts_on_sample(data.X, params, k) or make_kmeans(params, k).fit(data.X)
    centres = np.asarray(kmeans.cluster_centers_, dtype=float)
    return Fitted(centres, np.asarray(kmeans.labels_), float(kmeans.inertia_), int(kmeans.n_iter_))


def _restarts_on_sample(X: np.ndarray, params: ModelParams, k: int) -> KMeans | None:
    """KMeans on a large ``X`` with its ``n_init`` restarts on a sample, or None.

    Above ``params.restarts_sample_size`` rows the restarts run on a seeded sample of
    that many rows; the best sample centres then start one fit on every row, run to
    convergence (``tol=0``: until no customer changes segment). On 1M customers this
    is 3 to 5 times faster than ten full restarts and finds the same segments (measured
    by ``make bench``, which prints the adjusted Rand index against full restarts).
    """
    size = params.restarts_sample_size
    if size is None or len(X) <= size or params.n_init == 1:
        return None
    rng = np.random.default_rng(params.random_state)
    rows = np.sort(rng.choice(len(X), size, replace=False))
    best = make_kmeans(params, k).fit(X[rows]).cluster_centers_
    refine = make_kmeans(replace(params, n_init=1, tol=0.0), k).set_params(init=best)
    return refine.fit(X)


def _kprototypes(data: Encoded, params: ModelParams, k: int) -> Fitted:
    from kmodes.kprototypes import KPrototypes

    if data.n_numeric == 0:
        raise ValueError("k-prototypes needs a numeric column; this feature set has none")
    n_columns = data.n_numeric + len(data.categories)
    mixed = np.empty((len(data.X), n_columns), dtype=object)
    mixed[:, : data.n_numeric] = data.X[:, : data.n_numeric]
    mixed[:, data.n_numeric :] = data.categorical.astype("string").to_numpy(dtype=object)
    model = KPrototypes(
        n_clusters=k,
        init=params.init,
        n_init=params.n_init,
        max_iter=params.max_iter,
        random_state=params.random_state,
        gamma=2 * data.scale**2,
        n_jobs=1,
    ).fit(mixed, categorical=list(range(data.n_numeric, mixed.shape[1])))
    centres = np.asarray(model.cluster_centroids_)
    if len(centres) != k:  # kmodes keeps distinct centres only
        distinct = len(pd.DataFrame(mixed).drop_duplicates())
        raise ValueError(
            f"k-prototypes found {len(centres)} segments for k={k}: the table has "
            f"{distinct} distinct customers on these columns; lower sweep.k_max"
        )
    numeric = centres[:, : data.n_numeric].astype(float)
    modes = centres[:, data.n_numeric :].astype(str)
    onehot = [
        (modes[:, [j]] == np.asarray(cats, dtype=str)[None, :]) * data.scale
        for j, cats in enumerate(data.categories)
    ]
    centres = np.hstack([numeric, *onehot])
    labels, distances = nearest_centres(data.X, centres)  # what the segment model predicts
    return Fitted(centres, labels, float(distances.sum()), int(model.n_iter_))


_ALGORITHMS: dict[str, Callable[[Encoded, ModelParams, int], Fitted]] = {
    "kmeans": _kmeans,
    "kprototypes": _kprototypes,
}


def batch_kprototypes(
    X: np.ndarray,
    k: int,
    blocks: Blocks,
    scale: float,
    seed: int,
    n_init: int = 3,
    max_iter: int = 100,
) -> np.ndarray:
    """k-prototypes with batch updates on the encoded ``X``: labels of the best of
    ``n_init`` k-means++ starts (lowest cost).

    Each iteration assigns every row to its nearest centre, then sets each centre's
    numeric part to its members' mean and each one-hot block to ``scale`` times its
    members' mode, until no row moves.
    """
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.RandomState(seed)
    best_cost, best_labels = np.inf, np.zeros(len(X), dtype=int)
    for _ in range(n_init):
        centres, _ = kmeans_plusplus(X, k, random_state=rng)
        labels = np.full(len(X), -1)
        for _ in range(max_iter):
            moved, distances = nearest_centres(X, centres)
            if np.array_equal(moved, labels):
                break
            labels = moved
            centres = _prototypes(X, labels, centres, blocks, scale)
        if distances.sum() < best_cost:
            best_cost, best_labels = distances.sum(), labels
    return best_labels


def _prototypes(
    X: np.ndarray, labels: np.ndarray, centres: np.ndarray, blocks: Blocks, scale: float
) -> np.ndarray:
    """Mean of the numeric columns and mode of each one-hot block, per cluster (an empty
    cluster keeps its centre)."""
    updated = centres.copy()
    for cluster in np.unique(labels):
        members = X[labels == cluster]
        updated[cluster] = members.mean(axis=0)
        for start, stop in blocks:
            mode = np.argmax(members[:, start:stop].sum(axis=0))
            updated[cluster, start:stop] = 0.0
            updated[cluster, start + mode] = scale
    return updated
