"""Choose k from the metrics of a sweep.

Six criteria each pick a k from one feature set's curve (one row per k):

- ``elbow``: the knee of inertia against k (kneedle);
- ``silhouette`` (max), ``calinski_harabasz`` (max), ``davies_bouldin`` (min);
- ``gap``: Tibshirani's 1-standard-error rule on the gap statistic;
- ``stability``: the most stable k (mean adjusted Rand index of resampled refits with the
  fit), ties within :data:`STABILITY_TIE` going to the larger k, since merging two real
  segments can be as stable as keeping them apart, while splitting one rarely is.

``consensus`` (the default method) is their vote: the k that at least
:data:`MIN_VOTES` criteria and more than any other k pick. Ties are broken as
``stability`` breaks them (the most stable k, near-ties to the larger), or, without
stability, by the higher silhouette, then the smaller k. When no k has
:data:`MIN_VOTES` votes the criteria disagree, and the pick of the criterion that was
right most often on planted groups (:data:`FALLBACK_ORDER`) is used, saying so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Criterion:
    """One way to pick k: the one place its name, direction and wording are stated.

    Attributes
    ----------
    label : str
        How a reader calls it ("Calinski-Harabasz").
    chooses : str
        How it chooses k, as the report says it.
    higher_is_better : bool, optional
        Of its score per k; None for the elbow (it reads the inertia curve's knee).
    picks_best : bool
        It picks the k of its best score over the curve (others have their own rule).
    comparable : bool
        Its score means the same in any feature space (a bounded, scale-free index), so
        several feature sets can be drawn on one axis.
    """

    label: str
    chooses: str
    higher_is_better: bool | None
    picks_best: bool = False
    comparable: bool = False

    @property
    def title(self) -> str:
        """The label as a heading or axis title ("Gap statistic")."""
        return self.label[:1].upper() + self.label[1:]


#: every criterion, in the order they are shown
CRITERION = {
    "elbow": Criterion(
        "elbow", "the elbow method (the knee of the inertia curve, found with kneedle)", None
    ),
    "silhouette": Criterion(
        "silhouette", "the highest silhouette score", True, picks_best=True, comparable=True
    ),
    "calinski_harabasz": Criterion(
        "Calinski-Harabasz", "the highest Calinski-Harabasz score", True, picks_best=True
    ),
    "davies_bouldin": Criterion(
        "Davies-Bouldin", "the lowest Davies-Bouldin index", False, picks_best=True, comparable=True
    ),
    "gap": Criterion(
        "gap statistic", "the gap statistic (Tibshirani's one-standard-error rule)", True
    ),
    "stability": Criterion(
        "stability",
        "stability (the k whose resampled refits agree most with the fit)",
        True,
        comparable=True,
    ),
}
#: criterion -> whether its best value is the max or the min over k
SCORE_CRITERIA = {
    name: "max" if c.higher_is_better else "min" for name, c in CRITERION.items() if c.picks_best
}
#: every criterion, in the order they are shown
CRITERIA = tuple(CRITERION)
#: how a criterion is named to a reader
CRITERION_LABELS = {name: c.label for name, c in CRITERION.items()}
#: criteria whose values mean the same in any feature space
COMPARABLE_CRITERIA = tuple(name for name, c in CRITERION.items() if c.comparable)
#: the vote of the criteria
CONSENSUS = "consensus"
#: a k chosen by hand (``selection.k``), whatever the criteria pick
FORCED = "forced"
#: what ``selection.method`` may be
METHODS = (*CRITERIA, CONSENSUS)
#: how each method chooses k, as the report says it
METHOD_TEXT = {name: c.chooses for name, c in CRITERION.items()} | {
    CONSENSUS: "consensus (the k most criteria pick)",
    FORCED: "hand (selection.k), not by the criteria",
}
#: stabilities this close to the best count as a tie (won by the larger k)
STABILITY_TIE = 0.005
#: fewest votes a consensus needs (otherwise the criteria disagree)
MIN_VOTES = 2
#: the criterion used when the method cannot pick: most often right first (measured on 35
#: tables with 2-8 planted groups: silhouette 35, stability 34, Davies-Bouldin 33,
#: Calinski-Harabasz 18, gap 17, elbow 12)
FALLBACK_ORDER = ("silhouette", "stability", "davies_bouldin", "calinski_harabasz", "gap", "elbow")


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
    #: criterion -> why it picks no k (:func:`unpicked`)
    unpicked: dict[str, str] = field(default_factory=dict)

    def picks_text(self) -> str:
        """``"elbow=none (no knee in k = 2..4), silhouette=3, ..."``."""
        return ", ".join(
            f"{c}={k}" if k is not None else f"{c}=none ({self.unpicked.get(c, 'no pick')})"
            for c, k in self.picks.items()
        )


def elbow_k(ks: Sequence[int], inertias: Sequence[float], sensitivity: float = 1.0) -> int | None:
    """The knee of the inertia-vs-k curve by kneedle, or ``None`` if it has none.

    Kneedle (Satopaa et al., 2011) for a convex, decreasing curve, offline, as the
    ``kneed`` package computes it (``KneeLocator(ks, inertias, S=sensitivity,
    curve="convex", direction="decreasing").knee``; a test checks they agree), without
    importing it and SciPy into every stage.

    Parameters
    ----------
    ks : sequence of int
        Increasing k values.
    inertias : sequence of float
        Within-cluster sum of squares for each k (decreasing and convex for real data).
    sensitivity : float
        Kneedle's ``S``; larger values find more conservative knees.
    """
    x, y = np.asarray(ks, dtype=float), np.asarray(inertias, dtype=float)
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or not np.ptp(y) > 0:
        return None
    x_norm = (x - x.min()) / np.ptp(x)
    y_norm = (y - y.min()) / np.ptp(y)
    diff = (y_norm.max() - y_norm) - x_norm  # the difference curve, a hill at the knee
    before, after = diff[np.r_[0, : n - 1]], diff[np.r_[1:n, n - 1]]
    maxima = np.flatnonzero((diff >= before) & (diff >= after))
    minima = set(np.flatnonzero((diff <= before) & (diff <= after)).tolist())
    if not maxima.size:
        return None
    drops = diff[maxima] - sensitivity * np.diff(x_norm).mean()
    thresholds = dict(zip(maxima.tolist(), drops.tolist(), strict=True))
    threshold, knee_at, active = 0.0, int(maxima[0]), True
    for i in range(int(maxima[0]), n - 1):
        if i in thresholds:  # a local maximum: the knee candidate, its drop threshold
            threshold, knee_at, active = thresholds[i], i, True
        if i in minima:  # past a valley: wait for the next maximum
            threshold, active = 0.0, False
        if active and diff[i + 1] < threshold:
            return int(x[knee_at])
    return None


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


def ordered_picks(picks: dict[str, int | None]) -> dict[str, int | None]:
    """``picks`` in the order of :data:`CRITERIA` (records store them sorted by name)."""
    order = {c: i for i, c in enumerate(CRITERIA)}
    return dict(sorted(picks.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


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
    nan = pd.Series(np.nan, index=curve.index)  # a criterion the sweep did not compute
    picks["gap"] = gap_k(ks, curve.get("gap", nan), curve.get("gap_se", nan))
    picks["stability"] = stability_k(ks, curve.get("stability", nan))
    return picks


def unpicked(curve: pd.DataFrame, picks: dict[str, int | None]) -> dict[str, str]:
    """Why each criterion of ``picks`` without a k has none (criterion -> reason)."""
    ks = sorted(curve["k"].astype(int).tolist())
    span = f"k = {ks[0]}..{ks[-1]}" if ks else "no k"
    computed = {c: c in curve and not curve[c].isna().all() for c in ("gap", "stability")}
    reasons = {
        "elbow": "fewer than 3 values of k" if len(ks) < 3 else f"no knee in {span}",
        "gap": f"the gap still grows at k = {ks[-1]}" if computed["gap"] and ks else
        "not computed: no reference tables",
        "stability": "not computed: no resamples",
    }  # fmt: skip
    return {
        c: reasons.get(c, f"undefined for every k in {span}") for c, k in picks.items() if k is None
    }


def votes(picks: dict[str, int | None], ks: Sequence[int]) -> list[int]:
    """How many criteria pick each of ``ks`` (the consensus is the k with the most)."""
    counts = Counter(k for k in picks.values() if k is not None)
    return [counts.get(int(k), 0) for k in ks]


def consensus_k(picks: dict[str, int | None], curve: pd.DataFrame) -> int | None:
    """The k most criteria pick, if at least :data:`MIN_VOTES` do (else None); ties are
    broken by :func:`stability_k` among the tied ks, or without stability by the higher
    silhouette, then the smaller k."""
    counts = Counter(k for k in picks.values() if k is not None)
    top = max(counts.values(), default=0)
    if top < MIN_VOTES:
        return None
    tied = sorted(k for k, n in counts.items() if n == top)
    scores = curve.set_index(curve["k"].astype(int))
    if "stability" in scores:
        chosen = stability_k(tied, [scores["stability"].get(k, np.nan) for k in tied])
        if chosen is not None:
            return chosen
    silhouette = [np.nan_to_num(scores["silhouette"].get(k, np.nan), nan=-np.inf) for k in tied]
    return tied[int(np.argmax(silhouette))]  # the first maximum: the smaller k


def select_k(
    curve: pd.DataFrame,
    method: str = CONSENSUS,
    sensitivity: float = 1.0,
    forced: int | None = None,
) -> Selection:
    """Choose k for one feature set by ``method`` (a criterion or ``"consensus"``), or
    take ``forced`` (method :data:`FORCED`; the criteria's picks are kept beside it).

    When the method cannot pick (an elbow curve without a knee, criteria that disagree),
    the first criterion of :data:`FALLBACK_ORDER` that can is used and
    :attr:`Selection.fallback` says so.

    Raises
    ------
    ValueError
        If ``method`` is unknown or no criterion can pick a k.
    """
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; choose one of {METHODS}")
    picks = criteria_picks(curve, sensitivity)
    why_not = unpicked(curve, picks)
    if forced is not None:
        swept = sorted(curve["k"].astype(int).tolist())
        if forced not in swept:
            raise ValueError(f"k={forced} was not swept (k = {swept[0]}..{swept[-1]})")
        return Selection(forced, FORCED, picks, unpicked=why_not)
    chosen = consensus_k(picks, curve) if method == CONSENSUS else picks[method]
    if chosen is not None:
        return Selection(chosen, method, picks, unpicked=why_not)
    why = (
        f"no k has {MIN_VOTES} votes, the criteria disagree"
        if method == CONSENSUS
        else f"{method} found no k"
    )
    for other in FALLBACK_ORDER:
        if picks[other] is not None:
            fallback = f"{why}; used {other} instead"
            return Selection(picks[other], method, picks, fallback=fallback, unpicked=why_not)
    raise ValueError("no criterion could choose k: every metric is undefined")
