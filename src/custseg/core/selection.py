"""Choose k from the metrics of a sweep: elbow (kneedle) and best-score criteria."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from kneed import KneeLocator

#: criterion -> whether its best value is the max or the min over k
SCORE_CRITERIA = {"silhouette": "max", "calinski_harabasz": "max", "davies_bouldin": "min"}
CRITERIA = ("elbow", *SCORE_CRITERIA)


@dataclass
class Selection:
    """The chosen k and what every criterion would have picked.

    Attributes
    ----------
    picks : dict
        Criterion name -> its k (``None`` when a criterion cannot pick, e.g. no knee).
    fallback : str or None
        Set when ``method`` could not pick and another criterion was used; says why.
    """

    k: int
    method: str
    picks: dict[str, int | None] = field(default_factory=dict)
    fallback: str | None = None


def elbow_k(ks: Sequence[int], inertias: Sequence[float], sensitivity: float = 1.0) -> int | None:
    """The knee of the inertia-vs-k curve by kneedle, or ``None`` if it has none.

    Parameters
    ----------
    ks : sequence of int
        Increasing k values.
    inertias : sequence of float
        Within-cluster sum of squares for each k (decreasing and convex for real data).
    sensitivity : float
        Kneedle's ``S``; larger values find more conservative knees.
    """
    if len(ks) < 3:
        return None
    locator = KneeLocator(
        list(ks), list(inertias), S=sensitivity, curve="convex", direction="decreasing"
    )
    return None if locator.knee is None else int(locator.knee)


def best_score_k(ks: Sequence[int], scores: Sequence[float], direction: str) -> int | None:
    """k with the max (``direction="max"``) or min score; ties go to the smaller k."""
    values = np.asarray(scores, dtype=float)
    if np.all(np.isnan(values)):
        return None
    index = np.nanargmax(values) if direction == "max" else np.nanargmin(values)
    return int(ks[index])


def criteria_picks(curve: pd.DataFrame, sensitivity: float = 1.0) -> dict[str, int | None]:
    """The k each criterion picks from one feature set's curve.

    Parameters
    ----------
    curve : DataFrame
        One row per k with columns ``k``, ``inertia`` and the score criteria.
    """
    curve = curve.sort_values("k")
    ks = curve["k"].astype(int).tolist()
    picks: dict[str, int | None] = {"elbow": elbow_k(ks, curve["inertia"], sensitivity)}
    for name, direction in SCORE_CRITERIA.items():
        picks[name] = best_score_k(ks, curve[name], direction)
    return picks


def select_k(curve: pd.DataFrame, method: str = "elbow", sensitivity: float = 1.0) -> Selection:
    """Choose k for one feature set by ``method``.

    When the elbow has no knee (e.g. a nearly straight curve), the silhouette pick is used
    and :attr:`Selection.fallback` says so.

    Raises
    ------
    ValueError
        If ``method`` is unknown or no criterion can pick a k.
    """
    if method not in CRITERIA:
        raise ValueError(f"unknown selection method {method!r}; choose one of {CRITERIA}")
    picks = criteria_picks(curve, sensitivity)
    if picks[method] is not None:
        return Selection(picks[method], method, picks)
    for other in CRITERIA:
        if picks[other] is not None:
            reason = f"{method} found no k; used {other} instead"
            return Selection(picks[other], method, picks, fallback=reason)
    raise ValueError("no criterion could choose k: every metric is undefined")
