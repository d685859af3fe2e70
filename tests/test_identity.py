"""Segment identity: stable ids and names across refits, and what changed since the champion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from custseg.core.agreement import adjusted_rand
from custseg.core.clustering import fit_model
from custseg.core.features import FeatureSet, ModelParams
from custseg.core.identity import (
    assign_identity,
    compare_models,
    identify,
    match_segments,
)
from custseg.core.segment_model import SegmentModel

from conftest import compose_settings, generated_table

INCOME_SPENDING = FeatureSet("income_spending", numeric=["annual_income", "spending_score"])


def line_model(xs: list[float], ids: list[int] | None = None, names=None) -> SegmentModel:
    """Centroids on one numeric axis (no scaling): easy to reason about by hand."""
    ids = ids if ids is not None else list(range(len(xs)))
    return SegmentModel(
        feature_set="line",
        numeric=["x"],
        categorical=[],
        center=[0.0],
        scale=[1.0],
        categories={},
        centroids=[[x] for x in xs],
        segments=ids,
        names=names or [f"at {x:g}" for x in xs],
    )


def test_without_reference_ids_follow_the_centroids_not_the_labels():
    # provisional labels in any order give the same ids: 0 for the lowest centroid
    a = line_model([30.0, 10.0, 20.0])
    b = line_model([20.0, 30.0, 10.0])
    for model in (a, b):
        named = assign_identity(model, model.segment_names, None)
        assert named.segment_names == {0: "at 10", 1: "at 20", 2: "at 30"}


def test_matched_segments_keep_the_reference_ids_and_names():
    reference = line_model([10.0, 20.0, 30.0], ids=[4, 0, 7], names=["Low", "Mid", "High"])
    new = line_model([29.0, 11.0, 21.0], names=["n0", "n1", "n2"])  # same three, moved a bit
    assert match_segments(new, reference) == {0: 7, 1: 4, 2: 0}
    named = assign_identity(new, new.segment_names, reference)
    assert named.segment_names == {0: "Mid", 4: "Low", 7: "High"}
    np.testing.assert_array_equal(named.centroids, [[21.0], [11.0], [29.0]])


def test_an_extra_segment_gets_a_new_id_and_a_distinct_name():
    reference = line_model([10.0, 30.0], ids=[0, 1], names=["Low", "High"])
    new = line_model([31.0, 9.0, 20.0], names=["High", "Low", "Low"])
    named = assign_identity(new, new.segment_names, reference)
    assert named.segment_names == {0: "Low", 1: "High", 2: "Low (new)"}


def test_fewer_segments_keep_their_matches_and_the_rest_are_dropped():
    reference = line_model([10.0, 20.0, 30.0], names=["Low", "Mid", "High"])
    new = line_model([29.0, 12.0], names=["a", "b"])
    named = assign_identity(new, new.segment_names, reference)
    assert named.segment_names == {0: "Low", 2: "High"}
    table = pd.DataFrame({"x": [9.0, 19.0, 31.0]})
    changes = compare_models(reference, named, table)
    assert changes["dropped"] == [1]


def test_a_reference_on_other_columns_gives_only_new_ids():
    reference = line_model([10.0, 20.0], ids=[3, 5])
    other = dataclasses.replace(line_model([1.0, 2.0]), numeric=["y"], feature_set="other")
    named = assign_identity(other, other.segment_names, reference)
    assert named.segments == [6, 7]  # never an id that meant something else


def test_compare_by_hand():
    reference = line_model([10.0, 20.0], ids=[0, 1], names=["Low", "High"])
    new = line_model([10.0, 16.0], ids=[0, 1], names=["Low", "High"])
    table = pd.DataFrame({"x": [9.0, 12.0, 14.0, 17.0, 21.0]})
    # reference: 0 0 0 1 1 (boundary 15); new: 0 0 1 1 1 (boundary 13)
    changes = compare_models(reference, new, table)
    assert changes["reference"] == "different"
    assert changes["moved"] == 1 and changes["moved_share"] == 0.2
    assert changes["transitions"] == {"from": [0, 1], "to": [0, 1], "counts": [[2, 1], [0, 2]]}
    assert changes["segments"]["1"] == {"status": "kept", "centroid_shift": {"x": -4.0}}
    assert 0 < changes["adjusted_rand"] < 1


def test_compare_same_model_and_no_reference():
    model = line_model([10.0, 20.0])
    table = pd.DataFrame({"x": [9.0, 21.0]})
    same = compare_models(model, model, table)
    assert same["reference"] == "same" and same["moved"] == 0 and same["adjusted_rand"] == 1.0
    assert compare_models(None, model, table)["reference"] == "none"
    other = dataclasses.replace(model, numeric=["z"])
    assert compare_models(other, model, table)["reference"] == "incomparable"


@pytest.fixture(scope="module")
def customers(tmp_path_factory) -> pd.DataFrame:
    return generated_table(tmp_path_factory.mktemp("identity"), 200, seed=42)


def fit_named(table: pd.DataFrame, k: int, reference: SegmentModel | None) -> SegmentModel:
    settings = compose_settings()
    result = fit_model(table, INCOME_SPENDING, "standard", ModelParams(), k)
    return identify(result, table, settings.personas, "standard", "sha", reference)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_retrain_on_shuffled_rows_keeps_ids_and_names(customers, seed):
    """KMeans numbers clusters by chance; a shuffled table must not swap segment ids."""
    first = fit_named(customers, 5, None)
    shuffled = customers.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    again = fit_named(shuffled, 5, first)
    assert again.segment_names == first.segment_names
    assert again.fingerprint == first.fingerprint  # same model, same bytes
    changes = compare_models(first, again, customers)
    assert changes["reference"] == "same" and changes["moved"] == 0
    # and without a reference, the canonical order gives the same ids too
    assert fit_named(shuffled, 5, None).segment_names == first.segment_names


def test_a_sixth_segment_keeps_the_five_and_adds_one(customers):
    five = fit_named(customers, 5, None)
    six = fit_named(customers, 6, five)
    assert set(six.segments) == {0, 1, 2, 3, 4, 5}
    kept = {s: n for s, n in six.segment_names.items() if s < 5}
    assert sum(kept[s] == five.segment_names[s] for s in kept) == 5
    changes = compare_models(five, six, customers)
    assert changes["segments"]["5"] == {"status": "new"}
    counts = np.asarray(changes["transitions"]["counts"])
    assert counts.sum() == len(customers)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),  # renamed clusters: identical partitions
        ([0, 0, 0, 0], [0, 0, 0, 0], 1.0),  # one cluster on both sides
        ([0, 1, 2, 3], [0, 1, 2, 3], 1.0),  # all singletons
        # by hand: pairs together in both 2, in a 6, in b 3, of 15 pairs: expected
        # 6 * 3 / 15 = 1.2, best (6 + 3) / 2 = 4.5
        ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2], (2 - 1.2) / (4.5 - 1.2)),
        ([0, 1, 0, 1], [0, 0, 1, 1], -0.5),
    ],
)
def test_adjusted_rand_by_hand(a, b, expected):
    assert adjusted_rand(np.array(a), np.array(b)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_rand_equals_scikit_learn(seed):
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 6, 500), rng.integers(0, 4, 500)
    b[:250] = a[:250] % 4  # partly agreeing
    assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


def test_select_takes_the_swept_model_and_refuses_one_fitted_otherwise(tmp_path):
    """The sweep's models go to select unchanged; models of other settings, data or naming
    rules are refused with the keys that differ."""
    from custseg.io.outputs import StaleInputError, read_sweep_model, write_sweep_models

    models = [line_model([10.0, 20.0]), line_model([10.0, 20.0, 30.0])]
    fitted_with = compose_settings().fitted_with("abc")
    jaccard = {2: {0: 0.9, 1: 0.8}, 3: {0: 0.95, 1: float("nan"), 2: 0.5}}
    write_sweep_models(models, fitted_with, tmp_path, jaccard)
    model, stability = read_sweep_model(tmp_path, "line", 3, fitted_with)
    assert model == models[1]
    assert stability == {0: 0.95, 1: None, 2: 0.5}  # NaN (never resampled) is null in JSON
    with pytest.raises(StaleInputError, match="no valid model for k=4"):
        read_sweep_model(tmp_path, "line", 4, fitted_with)
    other_rules = compose_settings(["personas.level_threshold=0.9"]).fitted_with("abc")
    with pytest.raises(StaleInputError, match=r"\(personas differ"):
        read_sweep_model(tmp_path, "line", 3, other_rules)
    other_data = compose_settings(["preprocess.scaler=minmax"]).fitted_with("def")
    with pytest.raises(StaleInputError, match=r"\(data_sha256, scaler differ"):
        read_sweep_model(tmp_path, "line", 3, other_data)


def three_groups(sizes: tuple[int, int, int]) -> pd.DataFrame:
    """Customers in three tight groups of income and spending, of the given sizes."""
    rng = np.random.default_rng(sum(sizes))
    centres = [(20.0, 20.0), (60.0, 50.0), (110.0, 90.0)]
    rows = [c + rng.normal(0, 1.5, (n, 2)) for c, n in zip(centres, sizes, strict=True)]
    values = np.vstack(rows)
    ids = [f"c{i}" for i in range(len(values))]
    return pd.DataFrame(
        {"customer_id": ids, "annual_income": values[:, 0], "spending_score": values[:, 1]}
    )


def test_a_kept_name_says_outlier_group_exactly_when_the_segment_is_one_now():
    """A matched segment keeps its id and name; whether it is an outlier group follows
    its current share (personas.outlier_share), both ways."""
    prefix = f"{compose_settings().personas.outlier_persona.name}: "
    big = fit_named(three_groups((100, 60, 40)), 3, None)
    shrunk = fit_named(three_groups((100, 96, 3)), 3, big)  # 3 of 199 customers: 1.5%
    assert set(shrunk.segments) == set(big.segments)
    top = max(big.segments, key=lambda s: big.centroid_table().at[s, "annual_income"])
    assert not big.segment_names[top].startswith(prefix)
    assert shrunk.segment_names[top] == prefix + big.segment_names[top]
    others = [s for s in big.segments if s != top]
    assert all(shrunk.segment_names[s] == big.segment_names[s] for s in others)
    grown = fit_named(three_groups((100, 60, 40)), 3, shrunk)
    assert grown.segment_names == big.segment_names


@pytest.mark.parametrize("whole", [(100, 60, 40), (100, 96, 3)])
def test_a_fit_of_a_sample_names_its_outliers_by_the_whole_tables_shares(whole):
    """A fit whose rows are a sample (the Spark engine's) carries the whole table's
    cluster sizes: a segment is an outlier group by its share of every customer, not of
    the sample, and each cluster's segment id comes back with the model."""
    settings = compose_settings()
    prefix = f"{settings.personas.outlier_persona.name}: "
    sample = three_groups((100, 60, 40))  # no group under the outlier share here
    result = fit_model(sample, INCOME_SPENDING, "standard", ModelParams(), 3)
    # the whole table's customers per cluster (by centre): the sizes of ``whole``, put on
    # the clusters by their place along the income axis, as the groups are
    order = np.argsort(result.centres[:, 0])
    sizes = np.zeros(3, dtype=np.int64)
    sizes[order] = whole
    fit = dataclasses.replace(result, sizes=sizes)
    model, ids = identify(fit, sample, settings.personas, "standard", "sha", None)

    assert sorted(ids) == [0, 1, 2] and sorted(ids.values()) == sorted(model.segments)
    for cluster, segment in ids.items():  # the model's segment of each cluster's rows
        rows = result.labels == cluster
        assert set(model.predict(sample[rows]).tolist()) == {segment}
    share = settings.personas.outlier_share
    outliers = {ids[c] for c in range(3) if sizes[c] / sizes.sum() < share}
    named = {s for s, n in model.segment_names.items() if n.startswith(prefix)}
    assert named == outliers
    assert len(outliers) == (whole[2] == 3)
