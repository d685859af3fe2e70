"""Customer tables with a planted number of well-separated groups (test helper).

Groups sit in (annual income, spending score) with unequal sizes and spreads; age and
gender carry no group structure. Used to check that the default selection method finds
the planted number of segments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: income (k$) and spending-score ranges of the group centres
INCOME_RANGE = (20.0, 140.0)
SPENDING_RANGE = (8.0, 92.0)


def planted_centres(k: int, rng: np.random.Generator, min_distance: float) -> np.ndarray:
    """``k`` centres in the income x spending box, pairwise at least ``min_distance`` apart."""
    for _ in range(10_000):
        centres = np.column_stack(
            [rng.uniform(*INCOME_RANGE, size=k), rng.uniform(*SPENDING_RANGE, size=k)]
        )
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        if gaps[np.triu_indices(k, 1)].min(initial=np.inf) >= min_distance:
            return centres
    raise ValueError(f"cannot place {k} centres {min_distance} apart")


def planted_customers(
    k: int, seed: int, n_rows: int = 400, spreads: tuple[float, float] = (1.5, 4.0)
) -> tuple[pd.DataFrame, np.ndarray]:
    """A canonical customer table of ``k`` planted groups and each row's group.

    Sizes are unequal (Dirichlet shares, at least 5% of the rows each); each group's
    standard deviation is drawn from ``spreads``; centres are at least 6 of the largest
    spreads apart, so the groups are well separated.
    """
    rng = np.random.default_rng(seed)
    spread = rng.uniform(*spreads, size=k)
    centres = planted_centres(k, rng, min_distance=6 * spreads[1])
    shares = 0.05 + (1 - 0.05 * k) * rng.dirichlet(np.full(k, 1.5))
    sizes = np.floor(shares * n_rows).astype(int)
    sizes[: n_rows - sizes.sum()] += 1
    group = rng.permutation(np.repeat(np.arange(k), sizes))
    points = centres[group] + rng.normal(size=(n_rows, 2)) * spread[group, None]
    table = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_rows + 1),
            "gender": rng.choice(["Female", "Male"], size=n_rows),
            "age": rng.integers(18, 70, size=n_rows).astype(float),
            "annual_income": np.clip(points[:, 0], 0, None),
            "spending_score": np.clip(points[:, 1], 1, 100),
        }
    )
    return table, group
