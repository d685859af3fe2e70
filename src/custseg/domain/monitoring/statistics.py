"""The drift tests and effect sizes, on counts (what a chunked pass or an engine's
aggregation gives), with Evidently's defaults so the numbers look familiar.

Numeric columns are compared through empirical CDFs on a *grid*: the distinct values of
the reference sample. For each grid value ``u`` a batch contributes the number of its
values ``< u`` and ``<= u``; those two counts give the exact two-sample
Kolmogorov-Smirnov statistic (the reference CDF only jumps at grid values, so the
supremum is reached at a grid value or just before one) and the Wasserstein-1 distance
up to the batch's mass between grid values (which is taken at the mean of its CDF at
both ends). Counts of several chunks add up, so nothing needs the batch whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

#: the share PSI uses for an empty bin (Evidently's), so that empty bins stay finite
PSI_FLOOR = 1e-4


def ecdf_counts(sorted_values: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many of ``sorted_values`` are ``< u`` and ``<= u`` for each ``u`` of ``grid``."""
    below = np.searchsorted(sorted_values, grid, side="left")
    at_or_below = np.searchsorted(sorted_values, grid, side="right")
    return below.astype(np.int64), at_or_below.astype(np.int64)


def ks_statistic(
    reference: np.ndarray, below: np.ndarray, at_or_below: np.ndarray, n: int
) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup |F - G|``.

    Parameters
    ----------
    reference : ndarray
        The reference CDF at each grid value (share ``<= u``), grid ascending.
    below, at_or_below : ndarray of int
        The batch's counts ``< u`` and ``<= u`` per grid value.
    n : int
        The batch's number of values (> 0).
    """
    previous = np.concatenate([[0.0], reference[:-1]])
    at = np.abs(reference - at_or_below / n)
    before = np.abs(previous - below / n)
    return float(max(at.max(initial=0.0), before.max(initial=0.0)))


def ks_pvalue(statistic: float, n_reference: int, n_batch: int) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic (scipy's ``asymp``)."""
    effective = round(n_reference * n_batch / (n_reference + n_batch))
    return float(stats.kstwo.sf(statistic, max(effective, 1)))


def wasserstein(
    grid: np.ndarray,
    reference: np.ndarray,
    below: np.ndarray,
    at_or_below: np.ndarray,
    n: int,
    low_sum: float,
    high_sum: float,
) -> float:
    """Wasserstein-1 distance ``integral |F - G|`` between the reference and a batch.

    ``low_sum`` is the batch's ``sum(grid[0] - x)`` over its values below the grid and
    ``high_sum`` its ``sum(x - grid[-1])`` over those above (exact there); between grid
    values the batch's CDF is taken at the mean of its values at both ends.
    """
    if len(grid) < 2:
        return float((low_sum + high_sum) / n)
    left = at_or_below[:-1] / n
    right = below[1:] / n
    inside = np.diff(grid) * np.abs(reference[:-1] - (left + right) / 2)
    return float(inside.sum() + (low_sum + high_sum) / n)


def chi_square_pvalue(reference: np.ndarray, batch: np.ndarray) -> float:
    """p-value of the chi-square test that two count vectors share one distribution
    (categories empty on both sides dropped; 1.0 when fewer than two remain)."""
    table = np.vstack([reference, batch]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def proportions_pvalue(x_reference: int, n_reference: int, x_batch: int, n_batch: int) -> float:
    """Two-sided p-value of the pooled Z-test that two proportions are equal."""
    pooled = (x_reference + x_batch) / (n_reference + n_batch)
    if pooled in (0.0, 1.0):
        return 1.0
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n_reference + 1 / n_batch))
    z = (x_batch / n_batch - x_reference / n_reference) / spread
    return float(2 * stats.norm.sf(abs(z)))


def excess_pvalue(x: int, n: int, x_reference: int, n_reference: int) -> float:
    """One-sided p-value that a batch's share ``x / n`` exceeds the reference's share
    ``x_reference / n_reference`` (Fisher's exact test: both are samples, and the
    reference may be small)."""
    table = [[int(x), int(n - x)], [int(x_reference), int(n_reference - x_reference)]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def js_distance(reference: np.ndarray, batch: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log, as Evidently) between two count vectors."""
    value = jensenshannon(np.asarray(reference, float), np.asarray(batch, float))
    return float(0.0 if np.isnan(value) else value)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index of two count (or share) vectors over the same bins."""
    r = np.asarray(reference, float)
    b = np.asarray(batch, float)
    r = np.clip(r / r.sum(), PSI_FLOOR, None)
    b = np.clip(b / b.sum(), PSI_FLOOR, None)
    return float(np.sum((b - r) * np.log(b / r)))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (``None`` entries are not tests and stay None)."""
    tested = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted
