import numpy as np
import pandas as pd
import pytest

from custseg.core.selection import best_score_k, criteria_picks, elbow_k, select_k

KS = [2, 3, 4, 5, 6, 7, 8]
# sharp bend at k=5: steep drops before, almost flat after
INERTIA = [1000.0, 700.0, 450.0, 200.0, 180.0, 165.0, 155.0]


def curve(**scores):
    data = {"k": KS, "inertia": INERTIA}
    data.update(
        silhouette=scores.get("silhouette", [0.3, 0.4, 0.5, 0.6, 0.5, 0.4, 0.3]),
        calinski_harabasz=scores.get("calinski_harabasz", [50, 60, 70, 80, 75, 70, 60]),
        davies_bouldin=scores.get("davies_bouldin", [1.2, 1.0, 0.8, 0.6, 0.7, 0.8, 0.9]),
    )
    return pd.DataFrame(data)


def test_elbow_finds_the_bend():
    assert elbow_k(KS, INERTIA) == 5


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
    assert picks == {"elbow": 5, "silhouette": 3, "calinski_harabasz": 6, "davies_bouldin": 7}


def test_criteria_picks_ignore_row_order():
    shuffled = curve().sample(frac=1.0, random_state=0)
    assert criteria_picks(shuffled) == criteria_picks(curve())


@pytest.mark.parametrize("method", ["elbow", "silhouette", "calinski_harabasz", "davies_bouldin"])
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
    with pytest.raises(ValueError, match="unknown selection method 'gap'"):
        select_k(curve(), "gap")
