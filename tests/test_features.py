import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from custseg.core.clustering import fit_model
from custseg.core.engines import make_kmeans
from custseg.core.features import (
    SCALERS,
    FeatureSet,
    ModelParams,
    build_preprocess,
    categorical_scale,
    make_scaler,
)

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
