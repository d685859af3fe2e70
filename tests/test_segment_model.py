"""SegmentModel: scoring by hand-computed cases, canonical bytes, agreement with the fit."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.segment_model import (
    SIGNIFICANT_DIGITS,
    InputError,
    SegmentModel,
    canonical_order,
)

from conftest import MALL_FEATURE_SETS, generated_table


def small_model(**changes) -> SegmentModel:
    """x scaled by (x - 10) / 2, y by (y - 0) / 1; three centroids; gender one-hot."""
    fields = dict(
        feature_set="toy",
        numeric=["x", "y"],
        categorical=["gender"],
        center=[10.0, 0.0],
        scale=[2.0, 1.0],
        categories={"gender": ["Female", "Male"]},
        centroids=[[0.0, 0.0, 1.0, 0.0], [5.0, 0.0, 0.0, 1.0], [0.0, 5.0, 0.5, 0.5]],
        segments=[7, 3, 9],
        names=["Seven", "Three", "Nine"],
        data_sha256="ab" * 32,
    )
    return SegmentModel(**(fields | changes))


def test_transform_scales_numeric_and_one_hot_encodes_with_unknown_as_zeros():
    table = pd.DataFrame({"x": [10.0, 20.0], "y": [1.0, -2.0], "gender": ["Male", "Other"]})
    np.testing.assert_array_equal(
        small_model().transform(table), [[0.0, 1.0, 0.0, 1.0], [5.0, -2.0, 0.0, 0.0]]
    )


@pytest.mark.parametrize(
    ("row", "segment"),
    [
        ({"x": 10.0, "y": 0.0, "gender": "Female"}, 7),  # on centroid row 0
        ({"x": 20.0, "y": 0.0, "gender": "Male"}, 3),  # on centroid row 1
        ({"x": 10.0, "y": 5.0, "gender": "Female"}, 9),  # on centroid row 2
        ({"x": 15.0, "y": 0.0, "gender": "Other"}, 7),  # tie of rows 0 and 1: the lower row
    ],
)
def test_predict_returns_the_segment_id_of_the_nearest_centroid(row, segment):
    assert small_model().predict(pd.DataFrame([row])).tolist() == [segment]


def test_predict_works_in_chunks_like_at_once():
    model = small_model()
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "x": rng.uniform(0, 30, 1000),
            "y": rng.uniform(-3, 8, 1000),
            "gender": rng.choice(["Female", "Male"], 1000),
        }
    )
    rows, dist = model.nearest(table, chunk=7)
    whole = model.distances(table)
    np.testing.assert_array_equal(rows, whole.argmin(axis=1))
    np.testing.assert_allclose(dist, whole.min(axis=1))
    assert model.inertia(table) == pytest.approx(whole.min(axis=1).sum())


def test_centroid_table_and_input_example_are_in_original_units():
    model = small_model()
    table = model.centroid_table()
    assert list(table.index) == [3, 7, 9]  # by segment id
    assert table.loc[3, "x"] == 20.0 and table.loc[9, "y"] == 5.0
    assert table.loc[9, "gender=Male"] == 0.5
    example = model.input_example()
    assert list(example.columns) == ["x", "y", "gender"]
    assert example["gender"].tolist() == ["Male", "Female", "Female"]  # ties: first category
    # the example scores as the segments it stands for
    assert model.predict(example).tolist() == [3, 7, 9]


def test_json_round_trip_is_exact_and_canonical():
    model = small_model()
    text = model.to_json()
    again = SegmentModel.from_json(text)
    assert again == model
    assert again.to_json() == text
    assert json.loads(text)["segments"] == [7, 3, 9]
    assert text.endswith("\n") and list(json.loads(text)) == sorted(json.loads(text))


def test_last_bit_noise_does_not_change_the_bytes_or_the_fingerprint():
    model = small_model()
    noisy = dataclasses.replace(
        model, centroids=[[v * (1 + 1e-14) for v in row] for row in model.centroids]
    )
    assert noisy.to_json() == model.to_json()
    assert noisy.fingerprint == model.fingerprint
    moved = dataclasses.replace(model, center=[10.0 + 10 ** -(SIGNIFICANT_DIGITS - 3), 0.0])
    assert moved.fingerprint != model.fingerprint


@pytest.mark.parametrize(
    "change", [{"names": ["Other", "Three", "Nine"]}, {"segments": [7, 3, 8]}, {"data_sha256": "x"}]
)
def test_the_fingerprint_covers_names_ids_and_data(change):
    assert small_model(**change).fingerprint != small_model().fingerprint


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"segments": [7, 3]}, "one id and one name per centroid"),
        ({"segments": [7, 7, 9]}, "distinct"),
        ({"scale": [1.0]}, "per numeric column"),
        ({"centroids": [[0.0]] * 3}, "4 coordinates"),
    ],
)
def test_inconsistent_descriptions_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        small_model(**change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"limits": {"z": [0, 1]}}, "per numeric input column"),
        ({"limits": {"x": [0]}}, r"\[min, max\]"),
        ({"allowed": {"x": ["a"]}}, "categorical input columns only"),
    ],
)
def test_limits_and_allowed_values_must_fit_the_inputs(change, message):
    with pytest.raises(ValueError, match=message):
        small_model(**change)


SCHEMA = {"limits": {"x": [0, 100], "y": [None, 5]}, "allowed": {"gender": ["Female", "Male", "X"]}}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"x": -1.0}, "x=-1.0: below the minimum 0"),
        ({"x": 100.5}, "x=100.5: above the maximum 100"),
        ({"y": 6.0}, "y=6.0: above the maximum 5"),
        ({"y": -1e9}, None),  # no lower bound
        ({"x": 0.0, "y": 5.0}, None),  # bounds are inclusive
        ({"x": float("nan")}, "x: missing"),
        ({"x": float("inf")}, "x=inf: not a finite number"),
        ({"x": "ten"}, "x='ten': not a finite number"),
        ({"gender": None}, "gender: missing"),
        (
            {"gender": "Robot"},
            "gender='Robot': not among the allowed values ['Female', 'Male', 'X']",
        ),
        ({"gender": "X"}, None),  # allowed, though the fit never saw it
        ({"x": -1.0, "gender": "Robot"}, "x=-1.0: below the minimum 0; gender='Robot': not"),
    ],
)
def test_input_problems_name_the_column_value_and_reason(row, reason):
    model = small_model(**SCHEMA)
    good = {"x": 10.0, "y": 0.0, "gender": "Female"}
    table = pd.DataFrame([good, good | row], dtype=object)
    problems = model.input_problems(table)
    if reason is None:
        assert problems.empty
    else:
        assert problems.index.tolist() == [1]  # the good row is not named
        assert problems[1].startswith(reason)


def test_score_returns_ids_and_names_or_refuses_the_whole_batch():
    model = small_model(**SCHEMA)
    table = pd.DataFrame({"x": [20.0, 10.0], "y": [0.0, 5.0], "gender": ["Male", "Female"]})
    scored = model.score(table)
    assert scored.to_dict("list") == {"segment": [3, 9], "segment_name": ["Three", "Nine"]}
    table.loc[1, "y"] = 7.0
    with pytest.raises(InputError, match=r"1 of 2 rows cannot be scored.*row 1: y=7.0: above"):
        model.score(table)
    with pytest.raises(InputError, match=r"lacks column\(s\) \['gender'\]"):
        model.score(table.drop(columns="gender"))


def test_a_model_without_schema_keeps_its_bytes_and_checks_only_presence():
    plain = small_model()
    assert "limits" not in plain.to_dict() and "allowed" not in plain.to_dict()
    with_schema = small_model(**SCHEMA)
    assert SegmentModel.from_json(with_schema.to_json()) == with_schema
    assert with_schema.fingerprint != plain.fingerprint
    table = pd.DataFrame({"x": [-1e6, None], "y": [1e6, 0.0], "gender": ["Robot", "Male"]})
    assert plain.input_problems(table).to_dict() == {1: "x: missing"}


def test_other_format_versions_are_refused():
    data = small_model().to_dict() | {"format_version": 99}
    with pytest.raises(ValueError, match="format 99"):
        SegmentModel.from_dict(data)


def test_canonical_order_sorts_by_coordinates_and_ignores_noise():
    centroids = pd.DataFrame({"a": [3.0, 1.0, 1.0 + 1e-12], "b": [0.0, 9.0, 2.0]})
    assert canonical_order(centroids) == [2, 1, 0]


@pytest.fixture(scope="module")
def customers(tmp_path_factory) -> pd.DataFrame:
    return generated_table(tmp_path_factory.mktemp("segment-model"), 300, seed=5)


@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust", "none"])
@pytest.mark.parametrize("feature_set", MALL_FEATURE_SETS)
def test_the_description_scores_like_the_fitted_pipeline(customers, scaler, feature_set):
    result = fit_model(customers, feature_set, scaler, ModelParams(n_init=3), 4)
    model = segment_model(result, scaler, {i: f"s{i}" for i in range(4)})
    np.testing.assert_array_equal(model.predict(customers), result.labels)
    np.testing.assert_array_equal(model.predict(customers), result.predict(customers))
    assert model.inertia(customers) == pytest.approx(result.metrics["inertia"], rel=1e-8)
    # and so does its JSON form
    np.testing.assert_array_equal(
        SegmentModel.from_json(model.to_json()).predict(customers), result.labels
    )


# ------------------------------------------------------------------- transforms
#: x through log1p, y through quantiles [0, 1, 2, 4] (ranks 0, 1/3, 2/3, 1)
TRANSFORMS = {
    "x": {"kind": "log1p"},
    "y": {"kind": "quantile", "quantiles": [0.0, 1.0, 2.0, 4.0]},
}


def transformed_model(**changes) -> SegmentModel:
    """:func:`small_model` with transforms: log1p(x) scaled by (v - 1) / 2, quantile
    rank of y scaled by (v - 0) / 1."""
    return small_model(**({"transforms": TRANSFORMS, "center": [1.0, 0.0]} | changes))


def test_transform_applies_the_transforms_before_the_scaler():
    table = pd.DataFrame({"x": [0.0, np.e**3 - 1], "y": [1.0, 3.0], "gender": ["Male", "Male"]})
    np.testing.assert_allclose(
        transformed_model().transform(table), [[-0.5, 1 / 3, 0, 1], [1.0, 5 / 6, 0, 1]]
    )


def test_centroid_table_inverts_the_transforms():
    table = transformed_model().centroid_table()  # centroid rows (0, 0), (5, 0), (0, 5)
    np.testing.assert_allclose(table.loc[[7, 3, 9], "x"], np.expm1([1.0, 11.0, 1.0]))
    # ranks 0 and 5 clip to the lowest and highest quantile
    np.testing.assert_allclose(table.loc[[7, 3, 9], "y"], [0.0, 0.0, 4.0])
    np.testing.assert_allclose(
        transformed_model(centroids=[[0, 0.5, 1, 0], [5, 0, 0, 1], [0, 0, 1, 0]])
        .centroid_table()
        .loc[7, "y"],
        1.5,  # rank 1/2: halfway between the quantiles at 1/3 and 2/3
    )


def test_an_rfm_score_column_reports_its_score():
    model = small_model(
        transforms={"y": {"kind": "rfm_score", "edges": [None, 1.0, 2.0, 3.0]}},
        center=[10.0, 3.0],
    )
    assert model.score_columns == ["y"]
    assert model.centroid_table().loc[9, "y"] == 8.0  # a score: 5 * 1 + 3, not inverted
    table = pd.DataFrame({"x": [10.0] * 3, "y": [-7.0, 1.5, 99.0], "gender": ["Male"] * 3})
    np.testing.assert_allclose(model.transform(table)[:, 1], [2 - 3, 3 - 3, 5 - 3])


def test_a_model_with_transforms_round_trips_through_json():
    model = transformed_model(
        transforms=TRANSFORMS | {"y": {"kind": "rfm_score", "edges": [None, 0.1, 2.5, 1e6]}}
    )
    text = model.to_json()
    assert json.loads(text)["transforms"] == {
        "x": {"kind": "log1p"},
        "y": {"edges": [None, 0.1, 2.5, 1e6], "kind": "rfm_score"},
    }
    again = SegmentModel.from_json(text)
    assert again == model and again.to_json() == text
    assert model.fingerprint != small_model().fingerprint


def test_transform_parameters_are_stored_exactly():
    """Edges are training values: rounding one would move the training value equal to it
    to the next score."""
    edge = 123.456789012345678
    model = small_model(transforms={"y": {"kind": "rfm_score", "edges": [None, None, None, edge]}})
    again = SegmentModel.from_json(model.to_json())
    assert again.transforms["y"]["edges"][-1] == edge


def test_a_model_without_transforms_keeps_its_bytes():
    assert "transforms" not in small_model().to_dict()
    assert small_model(transforms={}).to_json() == small_model().to_json()


PERSONAS = {"personas": ["P7", "P3", "P9"], "levels": [{"x": "low"}, {"x": "high"}, {"x": "mid"}]}


def test_personas_and_levels_round_trip_and_follow_a_relabel():
    model = small_model(**PERSONAS)
    assert SegmentModel.from_json(model.to_json()) == model
    assert model.segment_personas == {3: "P3", 7: "P7", 9: "P9"}
    relabelled = model.relabel({7: 0, 3: 1, 9: 2}, {0: "a", 1: "b", 2: "c"})
    assert relabelled.segment_personas == {0: "P7", 1: "P3", 2: "P9"}
    assert relabelled.segment_levels == {0: {"x": "low"}, 1: {"x": "high"}, 2: {"x": "mid"}}


def test_a_model_without_personas_keeps_its_bytes_and_scores_without_the_column():
    """The current format, as the catalog and registered versions hold it, still reads."""
    old = small_model()
    assert "personas" not in old.to_dict() and "levels" not in old.to_dict()
    assert old.segment_personas == {} and old.segment_levels == {}
    table = pd.DataFrame({"x": [10.0, 20.0], "y": [0.0, 0.0], "gender": ["Female", "Male"]})
    assert list(old.score(table).columns) == ["segment", "segment_name"]
    scored = small_model(**PERSONAS).score(table)
    assert list(scored.columns) == ["segment", "segment_name", "persona"]
    assert scored["persona"].tolist() == ["P7", "P3"]


def test_personas_need_one_per_segment():
    with pytest.raises(ValueError, match="personas need one entry per centroid"):
        small_model(personas=["only one"])


def test_the_champion_catalog_keeps_its_bytes_and_fingerprint():
    path = Path(__file__).resolve().parents[1] / "catalog" / "champion.json"
    text = path.read_text(encoding="utf-8")
    model = SegmentModel.from_json(text)
    assert model.transforms == {}
    assert model.to_json() == text
    assert model.fingerprint == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ({"gender": {"kind": "log1p"}}, "transforms are for numeric input columns only"),
        ({"x": {"kind": "cube"}}, "transform of 'x': kind 'cube' is not one of"),
        ({"x": {"edges": [1, 2, 3, 4]}}, "transform of 'x': kind None"),
        ({"x": {"kind": "quantile", "quantiles": [2.0, 1.0]}}, "non-decreasing"),
        ({"x": {"kind": "quantile", "quantiles": []}}, "non-empty"),
        ({"x": {"kind": "rfm_score", "edges": [1.0, 2.0]}}, "rfm_score needs 4 edges"),
    ],
)
def test_inconsistent_transforms_are_refused(transforms, message):
    with pytest.raises(ValueError, match=message):
        small_model(transforms=transforms)


def test_a_log1p_column_refuses_negative_values():
    table = pd.DataFrame({"x": [-0.5, 0.0], "y": [1.0, 1.0], "gender": ["Male", "Male"]})
    problems = transformed_model().input_problems(table)
    assert problems.to_dict() == {0: "x=-0.5: below 0, and its log1p transform needs >= 0"}


def test_the_input_example_of_a_transformed_model_scores_as_its_segments():
    model = transformed_model(
        centroids=[[0.0, 0.2, 1.0, 0.0], [2.0, 0.5, 0.0, 1.0], [0.0, 0.9, 0.0, 1.0]]
    )
    example = model.input_example()
    # x = expm1(2 * 0 + 1), y = the quantile at rank 0.9 (between 2 and 4), rounded
    assert example.loc[2, ["x", "y"]].tolist() == [1.72, 3.4]
    assert model.predict(example).tolist() == [3, 7, 9]


@pytest.mark.parametrize("scaler", ["standard", "minmax", "none"])
@pytest.mark.parametrize(
    "transforms",
    [
        {"annual_income": "log1p", "spending_score": "quantile"},
        {"annual_income": "rfm_score", "age": "log1p"},
        {"spending_score": "rfm_score", "annual_income": "quantile", "age": "none"},
    ],
    ids=["log1p-quantile", "rfm-log1p", "rfm-quantile"],
)
def test_a_model_with_transforms_scores_like_the_fitted_pipeline(customers, scaler, transforms):
    """Scoring new customers with the JSON description is the fit: same labels on the
    training table, through the stored transforms."""
    fs = FeatureSet(
        "all", ["age", "annual_income", "spending_score"], ["gender"], transforms=transforms
    )
    result = fit_model(customers, fs, scaler, ModelParams(n_init=3), 4)
    model = SegmentModel.from_json(
        segment_model(result, scaler, {i: f"s{i}" for i in range(4)}).to_json()
    )
    assert {c: t["kind"] for c, t in model.transforms.items()} == fs.active_transforms
    np.testing.assert_array_equal(model.predict(customers), result.labels)
    np.testing.assert_array_equal(model.predict(customers), result.predict(customers))
    assert model.inertia(customers) == pytest.approx(result.metrics["inertia"], rel=1e-8)


def test_centroids_compare_only_when_the_same_columns_are_scores():
    from custseg.domain.identity import comparable

    scored = small_model(transforms={"y": {"kind": "rfm_score", "edges": [None, 1, 2, 3]}})
    assert comparable(transformed_model(), small_model())  # log1p, quantile: original units
    assert comparable(scored, scored)
    assert not comparable(scored, small_model())


def test_transform_kinds_follow_the_column_order_as_a_feature_set_logs_them():
    from custseg.domain.features import FeatureSet

    # the JSON stores transforms sorted by column name; the columns are x, y
    model = transformed_model(transforms={"y": TRANSFORMS["y"], "x": TRANSFORMS["x"]})
    assert list(model.transform_kinds) == ["x", "y"]
    fs = FeatureSet("toy", numeric=["x", "y"], transforms={"y": "quantile", "x": "log1p"})
    assert FeatureSet("toy", ["x", "y"], transforms=model.transform_kinds).transforms_label == (
        fs.transforms_label
    )


def test_next_id_is_stored_only_above_the_largest_id():
    assert "next_id" not in small_model(next_id=10).to_dict()  # ids 3, 7, 9: 10 is the default
    assert small_model().first_free_id == 10
    model = small_model(next_id=12)
    assert model.to_dict()["next_id"] == 12 and model.first_free_id == 12
    assert SegmentModel.from_json(model.to_json()) == model
