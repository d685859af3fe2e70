"""How much two partitions of the same customers agree (numpy only: a leaf module)."""

from __future__ import annotations

import numpy as np


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same customers (Hubert and Arabie 1985).

    1 for identical partitions (up to renaming), about 0 for independent ones. Same value
    as ``sklearn.metrics.adjusted_rand_score``, computed from the contingency table in
    numpy so that comparing models needs no scikit-learn import.
    """
    _, a_codes = np.unique(np.asarray(a), return_inverse=True)
    _, b_codes = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((a_codes.max(initial=-1) + 1, b_codes.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (a_codes, b_codes), 1)
    return adjusted_rand_of_counts(table)


def adjusted_rand_of_counts(counts: np.ndarray) -> float:
    """:func:`adjusted_rand` from the contingency table: ``counts[i, j]`` customers in
    segment ``i`` of one labeling and ``j`` of the other (rows and columns of zeros are
    ignored: a table counted elsewhere, e.g. by Spark, gives the same value)."""
    table = np.asarray(counts, dtype=np.int64)
    n = int(table.sum())

    def pairs(counts: np.ndarray) -> float:
        counts = counts.astype(np.float64)
        return float(np.sum(counts * (counts - 1) / 2))

    both, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    best = (rows + cols) / 2
    if best == expected:  # one cluster on both sides, or all singletons: identical
        return 1.0
    return (both - expected) / (best - expected)
