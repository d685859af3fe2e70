import numpy as np
import pandas as pd
import pytest

from custseg.domain.selection import (
    CRITERIA,
    best_score_k,
    consensus_k,
    criteria_picks,
    elbow_k,
    gap_k,
    select_k,
    stability_k,
)

KS = [2, 3, 4, 5, 6, 7, 8]
# sharp bend at k=5: steep drops before, almost flat after
INERTIA = [1000.0, 700.0, 450.0, 200.0, 180.0, 165.0, 155.0]


def curve(**scores):
    data = {"k": KS, "inertia": INERTIA}
    data.update(
        silhouette=scores.get("silhouette", [0.3, 0.4, 0.5, 0.6, 0.5, 0.4, 0.3]),
        calinski_harabasz=scores.get("calinski_harabasz", [50, 60, 70, 80, 75, 70, 60]),
        davies_bouldin=scores.get("davies_bouldin", [1.2, 1.0, 0.8, 0.6, 0.7, 0.8, 0.9]),
        # rule: gap(5) = 0.9 >= gap(6) - s(6) = 0.95 - 0.1
        gap=scores.get("gap", [0.2, 0.4, 0.6, 0.9, 0.95, 0.97, 0.98]),
        gap_se=scores.get("gap_se", [0.1] * len(KS)),
        stability=scores.get("stability", [0.9, 0.95, 0.97, 0.99, 0.8, 0.7, 0.75]),
    )
    return pd.DataFrame(data)


def test_elbow_finds_the_bend():
    assert elbow_k(KS, INERTIA) == 5


@pytest.mark.parametrize("sensitivity", [0.5, 1.0, 3.0])
def test_elbow_is_kneed_kneedle_on_random_curves(sensitivity):
    """The in-house kneedle picks what the kneed package picks (it is not imported at run
    time: it pulls SciPy into every stage)."""
    import warnings

    from kneed import KneeLocator

    rng = np.random.default_rng(int(sensitivity * 10))
    for trial in range(300):
        ks = np.arange(2, 2 + int(rng.integers(3, 14)))
        if trial % 3 == 0:  # inertia-like: a power law with noise
            inertia = 1000 / ks ** rng.uniform(0.3, 3) + rng.normal(0, rng.uniform(0, 30), len(ks))
        elif trial % 3 == 1:  # any decreasing curve
            inertia = np.sort(rng.uniform(0, 100, len(ks)))[::-1]
        else:  # not even decreasing
            inertia = rng.uniform(0, 100, len(ks))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knee = KneeLocator(
                list(ks), list(inertia), S=sensitivity, curve="convex", direction="decreasing"
            ).knee
        assert elbow_k(ks, inertia, sensitivity) == (None if knee is None else int(knee))


def test_elbow_of_a_straight_line_is_none():
    assert elbow_k(KS, [100.0 - 10 * i for i in range(len(KS))]) is None


def test_elbow_needs_three_points():
    assert elbow_k([2, 3], [10.0, 5.0]) is None


@pytest.mark.parametrize(
    "scores, direction, expected",
    [
        ([0.1, 0.9, 0.5], "max", 3),
        ([0.1, 0.9, 0.5], "min", 2),
        ([0.5, 0.5, 0.1], "max", 2),  # tie -> smaller k
        ([np.nan, 0.2, 0.1], "max", 3),  # undefined scores are skipped
        ([np.nan, np.nan, np.nan], "max", None),
    ],
)
def test_best_score_k(scores, direction, expected):
    assert best_score_k([2, 3, 4], scores, direction) == expected


def test_criteria_picks_each_direction():
    picks = criteria_picks(
        curve(
            silhouette=[0.3, 0.7, 0.5, 0.6, 0.5, 0.4, 0.3],  # max at 3
            calinski_harabasz=[50, 60, 70, 80, 95, 70, 60],  # max at 6
            davies_bouldin=[1.2, 1.0, 0.8, 0.6, 0.7, 0.5, 0.9],  # min at 7
        )
    )
    assert picks == {
        "elbow": 5,
        "silhouette": 3,
        "calinski_harabasz": 6,
        "davies_bouldin": 7,
        "gap": 5,
        "stability": 5,
    }


@pytest.mark.parametrize(
    "gaps, errors, expected",
    [
        ([0.5, 0.4, 0.3], [0.0, 0.0, 0.0], 2),  # falls from the start: smallest k
        ([0.1, 0.5, 0.55], [0.1, 0.1, 0.1], 3),  # 0.5 >= 0.55 - 0.1
        ([0.1, 0.5, 0.7], [0.1, 0.1, 0.1], None),  # still growing at the last k
        ([0.1, 0.45, 0.5], [0.01, 0.01, 0.2], 3),  # k=2: 0.1 < 0.44; k=3: 0.45 >= 0.3
        ([np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan], None),  # not computed
    ],
)
def test_gap_k_is_the_one_standard_error_rule(gaps, errors, expected):
    assert gap_k([2, 3, 4], gaps, errors) == expected


@pytest.mark.parametrize(
    "stabilities, expected",
    [
        ([0.99, 0.8, 0.7], 2),
        ([1.0, 1.0, 0.9], 3),  # merging two real segments is as stable: larger k wins
        ([0.998, 1.0, 0.996], 4),  # within the tie tolerance of the best
        ([0.98, 1.0, 0.9], 3),
        ([np.nan, np.nan, np.nan], None),
    ],
)
def test_stability_k_prefers_the_larger_of_near_ties(stabilities, expected):
    assert stability_k([2, 3, 4], stabilities) == expected


@pytest.mark.parametrize(
    "picks, expected",
    [
        ({"elbow": 4, "silhouette": 5, "davies_bouldin": 5, "gap": 3}, 5),  # majority
        # 2 votes each for 3 and 6: k=6 is the more stable
        ({"elbow": 3, "gap": 3, "silhouette": 6, "stability": 6}, 6),
        ({"elbow": None, "silhouette": 4, "gap": 4}, 4),  # no pick, no vote
        ({"elbow": 3, "silhouette": 4, "gap": 5}, None),  # no k has two votes: no consensus
        ({"elbow": None}, None),
    ],
)
def test_consensus_is_the_vote_with_stability_breaking_ties(picks, expected):
    scores = curve(stability=[0.5, 0.9, 0.8, 0.7, 0.95, 0.6, 0.6])
    assert consensus_k(picks, scores) == expected


def test_consensus_near_ties_in_stability_go_to_the_larger_k_as_stability_does():
    scores = curve(stability=[0.5, 0.998, 0.8, 0.7, 1.0, 0.6, 0.6])  # k=3 and k=6
    assert consensus_k({"elbow": 3, "gap": 3, "silhouette": 6, "davies_bouldin": 6}, scores) == 6
    scores = curve(stability=[0.5, 1.0, 0.8, 0.7, 0.998, 0.6, 0.6])
    assert consensus_k({"elbow": 3, "gap": 3, "silhouette": 6, "davies_bouldin": 6}, scores) == 6


def test_criteria_that_disagree_fall_back_to_the_most_reliable_criterion_and_say_so():
    disagreeing = curve(
        silhouette=[0.3, 0.4, 0.5, 0.4, 0.3, 0.2, 0.1],  # 4
        calinski_harabasz=[50, 60, 70, 80, 75, 90, 60],  # 7
        davies_bouldin=[1.2, 1.0, 0.8, 0.6, 0.7, 0.8, 0.3],  # 8
        gap=[0.2, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2],  # 3
        stability=[0.99, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6],  # 2
    )  # and the elbow at 5: six criteria, six ks
    selection = select_k(disagreeing, "consensus")
    assert selection.k == 4
    assert selection.fallback == "no k has 2 votes, the criteria disagree; used silhouette instead"


def test_consensus_tie_without_stability_goes_to_silhouette_then_smaller_k():
    scores = curve(silhouette=[0.3, 0.4, 0.5, 0.6, 0.5, 0.4, 0.3]).drop(columns="stability")
    two_each = {"elbow": 3, "gap": 3, "silhouette": 5, "davies_bouldin": 5}
    assert consensus_k(two_each, scores) == 5
    flat = scores.assign(silhouette=0.5)
    assert consensus_k(two_each, flat) == 3


def test_criteria_picks_ignore_row_order():
    shuffled = curve().sample(frac=1.0, random_state=0)
    assert criteria_picks(shuffled) == criteria_picks(curve())


@pytest.mark.parametrize("method", [*CRITERIA, "consensus"])
def test_select_k_uses_the_method(method):
    selection = select_k(curve(), method)
    assert selection.k == 5
    assert selection.method == method
    assert selection.fallback is None


def test_select_k_falls_back_when_no_knee():
    straight = curve(silhouette=[0.1, 0.2, 0.9, 0.3, 0.2, 0.1, 0.0])
    straight["inertia"] = [100.0 - 10 * i for i in range(len(KS))]
    selection = select_k(straight, "elbow")
    assert selection.k == 4
    assert selection.picks["elbow"] is None
    assert "elbow found no k; used silhouette" in selection.fallback


def test_select_k_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown selection method 'knee'"):
        select_k(curve(), "knee")


def test_a_criterion_without_a_pick_says_why():
    """Issue 29: no bare ``elbow=None`` in summaries; each missing pick has its reason."""
    curve = pd.DataFrame(
        {
            "k": [2, 3, 4],
            "inertia": [300.0, 200.0, 100.0],
            "silhouette": [0.5, 0.6, 0.4],
            "calinski_harabasz": [1.0, 2.0, 3.0],
            "davies_bouldin": [1.0, 0.5, 0.7],
            "gap": [0.1, 0.2, 0.3],
            "gap_se": [0.01, 0.01, 0.01],
            "stability": [np.nan] * 3,
        }
    )  # fmt: skip: a straight inertia line has no knee; the gap still grows at k = 4
    selection = select_k(curve)
    assert selection.unpicked == {
        "elbow": "no knee in k = 2..4",
        "gap": "the gap still grows at k = 4",
        "stability": "not computed: no resamples",
    }
    assert selection.picks_text() == (
        "elbow=none (no knee in k = 2..4), silhouette=3, calinski_harabasz=4, "
        "davies_bouldin=3, gap=none (the gap still grows at k = 4), "
        "stability=none (not computed: no resamples)"
    )
    short = select_k(curve.iloc[:2].assign(gap=np.nan, gap_se=np.nan))
    assert short.unpicked["elbow"] == "fewer than 3 values of k"
    assert short.unpicked["gap"] == "not computed: no reference tables"


def test_a_forced_k_is_taken_and_the_criteria_kept_beside_it():
    """Issue 29: `selection.k` chooses k by hand; a k that was not swept is refused."""
    from custseg.domain.selection import FORCED

    curve = pd.DataFrame(
        {
            "k": [2, 3, 4], "inertia": [300.0, 120.0, 100.0], "silhouette": [0.5, 0.6, 0.4],
            "calinski_harabasz": [1.0, 2.0, 1.5], "davies_bouldin": [1.0, 0.5, 0.7],
        }
    )  # fmt: skip
    automatic = select_k(curve)
    forced = select_k(curve, forced=4)
    assert (forced.k, forced.method) == (4, FORCED) and forced.picks == automatic.picks
    with pytest.raises(ValueError, match=r"k=7 was not swept \(k = 2\.\.4\)"):
        select_k(curve, forced=7)
