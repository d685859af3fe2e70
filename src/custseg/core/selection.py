"""Choose k from the metrics of a sweep.

Six criteria each pick a k from one feature set's curve (one row per k):

- ``elbow``: the knee of inertia against k (kneedle);
- ``silhouette`` (max), ``calinski_harabasz`` (max), ``davies_bouldin`` (min);
- ``gap``: Tibshirani's 1-standard-error rule on the gap statistic;
- ``stability``: the most stable k (mean adjusted Rand index of resampled refits with the
  fit), ties within :data:`STABILITY_TIE` going to the larger k, since merging two real
  segments can be as stable as keeping them apart, while splitting one rarely is.

``consensus`` (the default method) is their vote: the k most criteria pick, ties going to
the more stable k, then to the higher silhouette, then to the smaller k.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: criterion -> whether its best value is the max or the min over k
SCORE_CRITERIA = {"silhouette": "max", "calinski_harabasz": "max", "davies_bouldin": "min"}
#: every criterion, in the order they are shown
CRITERIA = ("elbow", *SCORE_CRITERIA, "gap", "stability")
#: the vote of the criteria
CONSENSUS = "consensus"
#: what ``selection.method`` may be
METHODS = (*CRITERIA, CONSENSUS)
#: stabilities this close to the best count as a tie (won by the larger k)
STABILITY_TIE = 0.005


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
    from kneed import KneeLocator  # imports matplotlib and scipy: only when an elbow is found

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


def gap_k(ks: Sequence[int], gaps: Sequence[float], errors: Sequence[float]) -> int | None:
    """Tibshirani's rule: the smallest k with ``gap(k) >= gap(k+1) - s(k+1)``.

    ``None`` when no k qualifies (the gap still grows at the largest k) or the gap was
    not computed.
    """
    gap, se = np.asarray(gaps, dtype=float), np.asarray(errors, dtype=float)
    for i in range(len(ks) - 1):
        if gap[i] >= gap[i + 1] - se[i + 1]:
            return int(ks[i])
    return None


def stability_k(ks: Sequence[int], stabilities: Sequence[float]) -> int | None:
    """The largest k whose stability is within :data:`STABILITY_TIE` of the best."""
    values = np.asarray(stabilities, dtype=float)
    if np.all(np.isnan(values)):
        return None
    best = np.nanmax(values)
    return int(max(k for k, v in zip(ks, values, strict=True) if v >= best - STABILITY_TIE))


def criteria_picks(curve: pd.DataFrame, sensitivity: float = 1.0) -> dict[str, int | None]:
    """The k each criterion picks from one feature set's curve.

    Parameters
    ----------
    curve : DataFrame
        One row per k with columns ``k``, ``inertia``, the score criteria, and (when
        computed) ``gap``, ``gap_se`` and ``stability``.
    """
    curve = curve.sort_values("k")
    ks = curve["k"].astype(int).tolist()
    picks: dict[str, int | None] = {"elbow": elbow_k(ks, curve["inertia"], sensitivity)}
    for name, direction in SCORE_CRITERIA.items():
        picks[name] = best_score_k(ks, curve[name], direction)
    nan = pd.Series(np.nan, index=curve.index)
    picks["gap"] = gap_k(ks, curve.get("gap", nan), curve.get("gap_se", nan))
    picks["stability"] = stability_k(ks, curve.get("stability", nan))
    return picks


def votes(picks: dict[str, int | None], ks: Sequence[int]) -> list[int]:
    """How many criteria pick each of ``ks`` (the consensus is the k with the most)."""
    counts = Counter(k for k in picks.values() if k is not None)
    return [counts.get(int(k), 0) for k in ks]


def consensus_k(picks: dict[str, int | None], curve: pd.DataFrame) -> int | None:
    """The k most criteria pick; ties go to the more stable k, then the higher silhouette,
    then the smaller k."""
    votes = Counter(k for k in picks.values() if k is not None)
    if not votes:
        return None
    top = max(votes.values())
    tied = [k for k, n in votes.items() if n == top]
    scores = curve.set_index(curve["k"].astype(int))
    stability = scores["stability"] if "stability" in scores else pd.Series(dtype=float)

    def rank(k: int) -> tuple[float, float, int]:
        return (
            np.nan_to_num(stability.get(k, np.nan), nan=-np.inf),
            np.nan_to_num(scores["silhouette"].get(k, np.nan), nan=-np.inf),
            -k,
        )

    return max(tied, key=rank)


def select_k(curve: pd.DataFrame, method: str = CONSENSUS, sensitivity: float = 1.0) -> Selection:
    """Choose k for one feature set by ``method`` (a criterion or ``"consensus"``).

    When the method cannot pick (e.g. an elbow curve without a knee), the first criterion
    that can is used and :attr:`Selection.fallback` says so.

    Raises
    ------
    ValueError
        If ``method`` is unknown or no criterion can pick a k.
    """
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; choose one of {METHODS}")
    picks = criteria_picks(curve, sensitivity)
    chosen = consensus_k(picks, curve) if method == CONSENSUS else picks[method]
    if chosen is not None:
        return Selection(chosen, method, picks)
    for other in CRITERIA:
        if picks[other] is not None:
            reason = f"{method} found no k; used {other} instead"
            return Selection(picks[other], method, picks, fallback=reason)
    raise ValueError("no criterion could choose k: every metric is undefined")
