import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from custseg.core.features import FeatureSet, KMeansParams, build_pipeline, make_scaler

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


def test_pipeline_selects_scales_and_encodes():
    fs = FeatureSet("x", numeric=["age", "annual_income"], categorical=["gender"])
    pipe = build_pipeline(fs, "minmax", KMeansParams(n_init=1, random_state=0), k=2).fit(TABLE)
    out = pipe.named_steps["preprocess"].transform(TABLE)
    # minmax of 20..50 and 10..40, then one-hot Female/Male; the id column is dropped
    expected = np.array(
        [[0, 0, 1, 0], [1 / 3, 1 / 3, 0, 1], [2 / 3, 2 / 3, 1, 0], [1, 1, 0, 1]], dtype=float
    )
    np.testing.assert_allclose(out, expected)


def test_pipeline_passes_every_kmeans_param():
    params = KMeansParams(
        init="random", n_init=7, max_iter=50, tol=1e-3, algorithm="elkan", random_state=3
    )
    km = build_pipeline(FeatureSet("x", ["age"]), "none", params, k=4).named_steps["kmeans"]
    assert (km.n_clusters, km.init, km.n_init, km.max_iter, km.tol, km.algorithm, km.random_state) == (
        4, "random", 7, 50, 1e-3, "elkan", 3,
    )  # fmt: skip


def test_pipeline_scores_rows_with_unseen_category_and_extra_columns():
    fs = FeatureSet("x", numeric=["age"], categorical=["gender"])
    pipe = build_pipeline(fs, "standard", KMeansParams(n_init=1), k=2).fit(TABLE)
    new = pd.DataFrame({"age": [25.0], "gender": ["Other"], "unused": ["zzz"]})
    assert pipe.predict(new).shape == (1,)


def test_empty_feature_set_is_an_error():
    with pytest.raises(ValueError, match="has no columns"):
        build_pipeline(FeatureSet("empty"), "none", KMeansParams(), 2)
