import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from custseg.domain.algorithms import make_kmeans
from custseg.domain.clustering import fit_model
from custseg.domain.features import (
    SCALERS,
    FeatureSet,
    ModelParams,
    build_preprocess,
    categorical_scale,
    make_scaler,
)
from custseg.domain.rfm import rfm_scores
from custseg.domain.segment_model import apply_transform
from custseg.domain.transforms import fit_transform_spec

TABLE = pd.DataFrame(
    {
        "customer_id": ["1", "2", "3", "4"],
        "gender": ["Female", "Male", "Female", "Male"],
        "age": [20.0, 30.0, 40.0, 50.0],
        "annual_income": [10.0, 20.0, 30.0, 40.0],
    }
)


@pytest.mark.parametrize(
    "name, expected",
    [("standard", StandardScaler), ("minmax", MinMaxScaler), ("robust", RobustScaler)],
)
def test_make_scaler_types(name, expected):
    assert isinstance(make_scaler(name), expected)


def test_make_scaler_none_passes_through():
    assert make_scaler("none") == "passthrough"


def test_make_scaler_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown scaler 'zscore'"):
        make_scaler("zscore")


def test_encoding_selects_scales_and_encodes():
    fs = FeatureSet("x", numeric=["age", "annual_income"], categorical=["gender"])
    out = build_preprocess(fs, "minmax").fit_transform(TABLE)
    # minmax of 20..50 and 10..40, then one-hot Female/Male; the id column is dropped
    expected = np.array(
        [[0, 0, 1, 0], [1 / 3, 1 / 3, 0, 1], [2 / 3, 2 / 3, 1, 0], [1, 1, 0, 1]], dtype=float
    )
    np.testing.assert_allclose(out, expected)


def test_encoding_weights_the_one_hot_columns():
    fs = FeatureSet("x", numeric=["age"], categorical=["gender"])
    out = build_preprocess(fs, "none", scale=0.5).fit_transform(TABLE)
    np.testing.assert_allclose(out[:, 1:], [[0.5, 0], [0, 0.5], [0.5, 0], [0, 0.5]])


def test_kmeans_gets_every_setting():
    params = ModelParams(
        init="random", n_init=7, max_iter=50, tol=1e-3, algorithm="elkan", random_state=3
    )
    km = make_kmeans(params, k=4)
    assert (km.n_clusters, km.init, km.n_init, km.max_iter, km.tol, km.algorithm, km.random_state) == (
        4, "random", 7, 50, 1e-3, "elkan", 3,
    )  # fmt: skip


def test_a_fit_scores_rows_with_unseen_category_and_extra_columns():
    fs = FeatureSet("x", numeric=["age"], categorical=["gender"])
    result = fit_model(TABLE, fs, "standard", ModelParams(n_init=1), k=2)
    new = pd.DataFrame({"age": [25.0], "gender": ["Other"], "unused": ["zzz"]})
    assert result.predict(new).shape == (1,)


def test_empty_feature_set_is_an_error():
    with pytest.raises(ValueError, match="has no columns"):
        build_preprocess(FeatureSet("empty"), "none")


MIXED = FeatureSet("mixed", numeric=["age", "annual_income"], categorical=["gender"])


def mismatch_distance(scaler: str, weight: float) -> tuple[float, float]:
    """Squared distance between two customers who differ only in gender, and the mean
    variance of the scaled numeric columns, in the encoded space of the customers."""
    table = pd.DataFrame(
        {
            "gender": ["Female", "Male"] * 50,
            "age": np.linspace(18, 70, 100),
            "annual_income": np.linspace(15, 140, 100) ** 1.3,
        }
    )
    scale = categorical_scale(table, MIXED, scaler, weight)
    encoding = build_preprocess(MIXED, scaler, scale).fit(table)
    pair = pd.DataFrame(
        {"gender": ["Female", "Male"], "age": [40.0] * 2, "annual_income": [60.0] * 2}
    )
    a, b = encoding.transform(pair)
    numeric = encoding.transform(table)[:, :2]
    return float(((a - b) ** 2).sum()), float(np.mean(np.var(numeric, axis=0)))


@pytest.mark.parametrize("weight", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("scaler", SCALERS)
def test_the_categorical_weight_is_the_same_under_every_scaler(scaler, weight):
    """Differing in gender costs ``weight`` RMS numeric standard deviations whatever the
    scaler: before, minmax let gender dominate and none made it vanish."""
    distance, variance = mismatch_distance(scaler, weight)
    assert distance / variance == pytest.approx(weight**2)


def test_the_weight_zero_ignores_the_category():
    assert mismatch_distance("standard", 0.0)[0] == 0.0


def test_categorical_scale_of_numeric_only_or_categorical_only_sets():
    assert categorical_scale(TABLE, FeatureSet("n", ["age"]), "minmax", 3.0) == 1.0
    only = FeatureSet("c", categorical=["gender"])
    assert categorical_scale(TABLE, only, "standard", 2.0) == pytest.approx(2 / np.sqrt(2))


# ----------------------------------------------------------------- transforms
def fitted_spec(kind: str, values: list[float]) -> dict:
    return fit_transform_spec(kind, "v", np.asarray(values, dtype=float))


@pytest.mark.parametrize(
    ("kind", "train", "new", "expected"),
    [
        ("log1p", [0.0, 1.0], [0.0, np.e - 1, np.e**2 - 1], [0.0, 1.0, 2.0]),
        # five quantiles: the values themselves, at ranks 0, 1/4, ..., 1
        ("quantile", [5.0, 1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 2.5, 5.0], [0.0, 0.25, 0.375, 1.0]),
        # outside the training range: clipped to 0 and 1
        ("quantile", [1.0, 2.0, 3.0], [-100.0, 0.999, 3.001, 1e9], [0.0, 0.0, 1.0, 1.0]),
        # repeated quantiles [1, 1, 2, 3] at ranks 0, 1/3, 2/3, 1: the lowest value is 0,
        # and 1.5 is halfway between the ranks of 1 (1/3, its run's top) and 2 (2/3)
        ("quantile", [1.0, 1.0, 2.0, 3.0], [1.0, 1.5, 2.0, 3.0], [0.0, 0.5, 2 / 3, 1.0]),
        # edges 10, 20, 30, 40: a score is 1 + the number of edges a value is above
        ("rfm_score", [50.0, 10.0, 40.0, 20.0, 30.0], [10.0, 20.0, 25.0, 40.5, -1.0, 99.0],
         [1, 2, 3, 5, 1, 5]),
    ],
)  # fmt: skip
def test_each_transform_by_hand(kind, train, new, expected):
    np.testing.assert_allclose(apply_transform(fitted_spec(kind, train), np.array(new)), expected)


def test_quantile_ranks_are_sklearns_uniform_quantile_transform():
    from sklearn.preprocessing import QuantileTransformer

    train = np.array([3.0, 1.0, 1.0, 7.0, 2.0, 2.0, 2.0, 9.0, 100.0, 0.0])
    new = np.array([-1.0, 0.5, 1.0, 2.0, 5.0, 8.0, 50.0, 1e4])
    reference = QuantileTransformer(n_quantiles=10, subsample=None).fit(train[:, None])
    spec = fitted_spec("quantile", train.tolist())
    for values in (train, new):
        np.testing.assert_allclose(
            apply_transform(spec, values), reference.transform(values[:, None])[:, 0]
        )


def test_quantile_stores_at_most_a_thousand_quantiles():
    spec = fitted_spec("quantile", np.arange(5000.0).tolist())
    assert len(spec["quantiles"]) == 1000
    assert spec["quantiles"][0] == 0.0 and spec["quantiles"][-1] == 4999.0


@pytest.mark.parametrize(
    "values",
    [
        [7.0],
        [3.0, 3.0],
        [1.0, 2.0, 2.0],
        [4.0, 1.0, 3.0, 2.0],
        [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 5.0],
        [0.0] * 6 + [1.0, 2.0, 2.0, 9.0, 12.5],  # many one-order customers: all score 1
        [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
        np.round(np.random.default_rng(3).lognormal(3.0, 1.0, 137), 0).tolist(),
    ],
)
def test_rfm_score_on_the_training_values_equals_rfm_scores(values):
    expected = rfm_scores(pd.Series(values), higher_is_better=True).to_numpy()
    scores = apply_transform(fitted_spec("rfm_score", values), np.array(values))
    np.testing.assert_array_equal(scores, expected)


def test_rfm_score_edges_are_the_order_statistics_of_the_quintiles():
    # n = 7: m_j = 1, 2, 4, 5 values below; n = 3: m_2 = 0, so every value reaches score 2
    assert fitted_spec("rfm_score", [7, 6, 5, 4, 3, 2, 1])["edges"] == [1.0, 2.0, 4.0, 5.0]
    assert fitted_spec("rfm_score", [30, 10, 20])["edges"] == [None, 10.0, 10.0, 20.0]


def test_log1p_of_a_negative_value_is_a_clear_error_at_fit_time():
    fs = FeatureSet("x", numeric=["age", "annual_income"], transforms={"annual_income": "log1p"})
    table = TABLE.assign(annual_income=[10.0, -2.5, 3.0, 0.0])
    message = r"column 'annual_income' has values below 0 \(smallest -2.5\); the log1p transform needs values >= 0"
    with pytest.raises(ValueError, match=message):
        build_preprocess(fs, "standard").fit(table)


def test_transforms_run_before_the_scaler_and_keep_the_column_order():
    fs = FeatureSet(
        "x",
        numeric=["age", "annual_income"],
        categorical=["gender"],
        transforms={"age": "none", "annual_income": "log1p"},
    )
    out = build_preprocess(fs, "minmax").fit_transform(TABLE)
    income = np.log1p(TABLE["annual_income"].to_numpy())
    np.testing.assert_allclose(out[:, 0], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(out[:, 1], (income - income[0]) / (income[-1] - income[0]))
    np.testing.assert_allclose(out[:, 2:], [[1, 0], [0, 1], [1, 0], [0, 1]])


def test_the_categorical_weight_measures_the_transformed_columns():
    fs = FeatureSet("x", ["age"], ["gender"], transforms={"age": "log1p"})
    expected = np.std(np.log1p(TABLE["age"].to_numpy())) / np.sqrt(2)
    assert categorical_scale(TABLE, fs, "none", 1.0) == pytest.approx(expected)


def test_feature_set_transform_problems_and_label():
    fs = FeatureSet(
        "rfm_log",
        numeric=["recency_days", "frequency", "monetary_total"],
        categorical=["gender"],
        transforms={"monetary_total": "log1p", "frequency": "log1p", "recency_days": "none"},
    )
    assert fs.problems() == []
    assert fs.transforms_label == "frequency=log1p,monetary_total=log1p"  # column order
    assert FeatureSet("plain", ["age"]).transforms_label == "none"
    bad = FeatureSet("bad", ["age"], ["gender"], transforms={"age": "cube", "gender": "log1p"})
    assert bad.problems() == [
        "transforms.age='cube'; choose one of ('none', 'log1p', 'quantile', 'rfm_score')",
        "transforms.gender: 'gender' is not a numeric column of the set ['age']",
    ]


def heavy_tailed_table(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Lognormal spend with six big spenders at 150-300x the median, uniform recency."""
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(4.0, 1.0, n)
    spend[:6] = np.median(spend) * rng.uniform(150, 300, 6)
    return pd.DataFrame({"recency_days": rng.uniform(0, 365, n).round(), "monetary_total": spend})


@pytest.mark.parametrize("transform", ["log1p", "quantile", "rfm_score"])
def test_a_transform_keeps_big_spenders_from_owning_a_segment(transform):
    table = heavy_tailed_table()
    numeric = ["recency_days", "monetary_total"]

    def smallest_share(transforms: dict[str, str]) -> float:
        fs = FeatureSet("rfm", numeric, transforms=transforms)
        result = fit_model(table, fs, "standard", ModelParams(), 3)
        return np.bincount(result.labels, minlength=3).min() / len(table)

    assert smallest_share({}) < 0.02  # the six big spenders are a segment of their own
    assert smallest_share({"monetary_total": transform}) >= 0.02
