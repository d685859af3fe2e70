"""How much to trust a partition: resampling stability and the gap statistic.

Both run on a seeded sample of at most ``sample_size`` customers (the same rows for every
k), so their cost is bounded whatever the size of the table.

Stability follows Hennig's ``fpc::clusterboot``: draw ``resamples`` bootstrap samples (or
subsamples) of those customers, refit with the same k, and compare each refit with the
full fit on the customers it saw: the adjusted Rand index of the two partitions, and for
every cluster of the full fit the best Jaccard similarity to a cluster of the refit.
Hennig reads a mean Jaccard below 0.5 as a "dissolved" cluster, 0.6-0.75 as a pattern,
above 0.85 as highly stable.

The gap statistic (Tibshirani, Walther and Hastie 2001) compares the log within-cluster
sum of squares with its mean over ``references`` uniform tables in the bounding box of
the data; the 1-standard-error rule picks the smallest k whose gap is within one
standard error of the next k's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from custseg.domain.agreement import adjusted_rand

#: refits a clustering: ``(X, k, seed) -> labels of X``
Refit = Callable[[np.ndarray, int, int], np.ndarray]
RESAMPLING = ("bootstrap", "subsample")


@dataclass
class TrustParams:
    """How stability and the gap statistic are estimated.

    Parameters
    ----------
    sample_size : int
        Customers they run on (a seeded sample when the table is larger; the same rows
        for every k).
    resamples : int
        Bootstrap samples (or subsamples) refitted per k; 0 turns stability off.
    resampling : {"bootstrap", "subsample"}
        Draw with replacement (clusterboot's default) or ``subsample_fraction`` without.
    subsample_fraction : float
        Share of the customers in each subsample.
    references : int
        Uniform reference tables of the gap statistic; 0 turns the gap off.
    n_init : int
        Initialisations of each refit (fewer than the model's: many refits, small ones).
    random_state : int
        Seed of the sample, the resamples, the reference tables and the refits.
    """

    sample_size: int = 2000
    resamples: int = 20
    resampling: str = "bootstrap"
    subsample_fraction: float = 0.8
    references: int = 10
    n_init: int = 3
    random_state: int = 0

    def problems(self) -> list[str]:
        """What is out of range, one phrase per key (empty when valid)."""
        found = []
        if self.sample_size < 2:
            found.append(f"sample_size={self.sample_size} must be >= 2")
        if self.resamples < 0 or self.references < 0:
            found.append("resamples and references must be >= 0 (0 turns them off)")
        if self.resampling not in RESAMPLING:
            found.append(f"resampling={self.resampling!r}; choose one of {RESAMPLING}")
        if not 0 < self.subsample_fraction < 1:
            found.append(f"subsample_fraction={self.subsample_fraction} must be in (0, 1)")
        if self.n_init < 1:
            found.append(f"n_init={self.n_init} must be >= 1")
        return found


@dataclass(frozen=True)
class Trust:
    """Stability and gap of one fit (NaN where turned off).

    Attributes
    ----------
    jaccard : ndarray of shape (k,)
        Mean best Jaccard similarity of each cluster ``0..k-1`` of the full fit over the
        resamples in which it has members (NaN if it never has).
    resamples : int
        Resamples the stability is the mean of: fewer than configured when a resample
        held fewer distinct customers than k.
    """

    stability: float
    stability_std: float
    jaccard: np.ndarray
    gap: float
    gap_se: float
    resamples: int = 0

    @property
    def min_jaccard(self) -> float:
        """Jaccard of the least stable cluster."""
        return float(np.nanmin(self.jaccard)) if np.isfinite(self.jaccard).any() else np.nan


def sample_rows(n: int, size: int, random_state: int) -> np.ndarray:
    """Sorted row indices of a seeded sample of ``size`` of ``n`` rows (all when fewer)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def trust(X: np.ndarray, labels: np.ndarray, k: int, params: TrustParams, refit: Refit) -> Trust:
    """Stability and gap of the partition ``labels`` (ids ``0..k-1``) of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The customers in the space the clustering uses (scaled and encoded).
    refit : callable
        How to refit a sample (:func:`custseg.domain.algorithms.refit_for`).
    """
    rows = sample_rows(len(X), params.sample_size, params.random_state)
    X, labels = np.asarray(X, dtype=float)[rows], np.asarray(labels)[rows]
    if len(np.unique(X, axis=0)) <= k:  # k clusters of fewer points: nothing to measure
        return Trust(np.nan, np.nan, np.full(k, np.nan), np.nan, np.nan)
    ari, ari_std, jaccard, used = resampling_stability(X, labels, k, params, refit)
    gap, gap_se = gap_statistic(X, k, params, refit)
    return Trust(ari, ari_std, jaccard, gap, gap_se, used)


def resampling_stability(
    X: np.ndarray, labels: np.ndarray, k: int, params: TrustParams, refit: Refit
) -> tuple[float, float, np.ndarray, int]:
    """Mean and std of the ARI of refits with ``labels``, each cluster's mean Jaccard, and
    the number of resamples they come from."""
    if params.resamples == 0 or k > len(X):
        return np.nan, np.nan, np.full(k, np.nan), 0
    rng = np.random.default_rng(params.random_state)
    aris, jaccards = [], []
    for _ in range(params.resamples):
        drawn = _draw(rng, len(X), params)
        seed = int(rng.integers(2**31 - 1))
        if len(np.unique(drawn)) < k:
            continue
        fitted = refit(X[drawn], k, seed)
        seen, first = np.unique(drawn, return_index=True)  # each customer once
        aris.append(adjusted_rand(labels[seen], fitted[first]))
        jaccards.append(best_jaccard(labels[seen], fitted[first], k))
    if not aris:
        return np.nan, np.nan, np.full(k, np.nan), 0
    with warnings.catch_warnings():  # a cluster absent from every resample stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        per_cluster = np.nanmean(np.vstack(jaccards), axis=0)
    return float(np.mean(aris)), float(np.std(aris)), per_cluster, len(aris)


def _draw(rng: np.random.Generator, n: int, params: TrustParams) -> np.ndarray:
    if params.resampling == "bootstrap":
        return rng.integers(0, n, size=n)
    return rng.choice(n, max(2, round(params.subsample_fraction * n)), replace=False)


def best_jaccard(reference: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """For each cluster ``0..k-1`` of ``reference``, its best Jaccard similarity with a
    cluster of ``other`` (same customers); NaN for a cluster with no member here."""
    _, codes = np.unique(other, return_inverse=True)
    table = np.zeros((k, codes.max() + 1), dtype=float)
    np.add.at(table, (np.asarray(reference, dtype=int), codes), 1)
    union = table.sum(axis=1, keepdims=True) + table.sum(axis=0, keepdims=True) - table
    with np.errstate(invalid="ignore", divide="ignore"):
        best = np.max(table / union, axis=1)
    best[table.sum(axis=1) == 0] = np.nan
    return best


def within_ss(X: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances of the rows of ``X`` to the mean of their cluster."""
    total = 0.0
    for label in np.unique(labels):
        members = X[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def gap_statistic(X: np.ndarray, k: int, params: TrustParams, refit: Refit) -> tuple[float, float]:
    """Gap of ``refit`` with ``k`` clusters on ``X``, and its standard error ``s_k``.

    ``X`` and the reference tables are clustered alike (the same refit, as Tibshirani et
    al. define it). The reference tables are uniform in the bounding box of ``X`` (one-hot
    columns too, which biases the gap of mixed feature sets) and drawn from
    ``params.random_state`` alone, so every k is compared with the same references. NaN
    when the clusters of ``X`` have (almost) no spread: the log would be meaningless.
    """
    if params.references == 0 or k > len(X):
        return np.nan, np.nan
    within = within_ss(X, refit(X, k, params.random_state))
    if within <= 1e-12 * within_ss(X, np.zeros(len(X), dtype=int)):
        return np.nan, np.nan
    rng = np.random.default_rng(params.random_state)
    low, high = X.min(axis=0), X.max(axis=0)
    logs = []
    for b in range(params.references):
        reference = rng.uniform(low, high, size=X.shape)
        logs.append(np.log(within_ss(reference, refit(reference, k, b))))
    logs = np.asarray(logs)
    return float(logs.mean() - np.log(within)), float(logs.std() * np.sqrt(1 + 1 / len(logs)))


def seed_agreement(
    X: np.ndarray, labels: np.ndarray, k: int, seeds: list[int], refit: Refit
) -> list[float]:
    """ARI between ``labels`` and a refit of ``X`` with each of ``seeds``."""
    return [adjusted_rand(labels, refit(np.asarray(X, dtype=float), k, seed)) for seed in seeds]
