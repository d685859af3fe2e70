"""Segment identity: stable ids and names across refits, and what changed since the champion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from custseg.domain.agreement import adjusted_rand
from custseg.domain.clustering import fit_model
from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.identity import (
    compare_models,
    identify,
    jaccard,
    lineage,
    survivors,
)
from custseg.domain.segment_model import SegmentModel

from conftest import compose_settings, generated_table, identified

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


def counts(rows: list[list[int]], old: list[int], new: list[int]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=old, columns=new)


def test_jaccard_by_hand():
    # old 0 has 10 customers, old 1 has 10; new 5 has 8 + 0, new 6 has 2 + 10
    table = counts([[8, 2], [0, 10]], [0, 1], [5, 6])
    expected = [[8 / 10, 2 / (10 + 12 - 2)], [0.0, 10 / 12]]
    np.testing.assert_allclose(jaccard(table).to_numpy(), expected)


@pytest.mark.parametrize(
    ("min_overlap", "expected"),
    [(0.5, {5: 0, 6: 1}), (0.81, {6: 1}), (0.9, {})],
)
def test_a_segment_survives_only_above_the_overlap(min_overlap, expected):
    table = counts([[8, 2], [0, 10]], [0, 1], [5, 6])
    assert survivors(table, min_overlap) == expected


def test_survival_is_one_to_one_by_the_largest_total_overlap():
    # new 7 overlaps old 0 and old 1 equally (0.5 each): only one of them can continue
    table = counts([[5, 0], [5, 0], [0, 10]], [0, 1, 2], [7, 8])
    assert survivors(table, 0.5) in ({7: 0, 8: 2}, {7: 1, 8: 2})
    assert len(survivors(table, 0.5)) == 2


def test_a_bad_match_is_not_a_match():
    """Centroid matching always matched; shared customers say these segments are new."""
    # three new segments, each a mix of two old ones: every Jaccard is below 0.5
    table = counts([[30, 30, 0], [0, 30, 30], [30, 0, 30]], [0, 1, 2], [0, 1, 2])
    assert survivors(table, 0.5) == {}


def test_splits_and_merges_by_hand():
    # old 2 (40 customers) split into new 5 and 6; old 0 and old 1 merged into new 7;
    # old 3 kept its id
    table = counts(
        [[0, 0, 0, 10], [0, 0, 0, 12], [0, 20, 20, 0], [30, 0, 0, 0]],
        [0, 1, 2, 3],
        [3, 5, 6, 7],
    )
    events = lineage(table)
    assert events == [
        {"event": "split", "from": [2], "to": [5, 6]},
        {"event": "merge", "from": [0, 1], "to": [7]},
    ]


def test_without_reference_ids_follow_the_centroids_not_the_labels(customers):
    # two fits whose KMeans labels differ by a permutation give the same ids
    settings = compose_settings()
    result = fit_model(customers, INCOME_SPENDING, "standard", ModelParams(), 3)
    permuted = dataclasses.replace(
        result, centres=result.centres[[2, 0, 1]], labels=np.array([1, 2, 0])[result.labels]
    )
    a = identify(result, customers, settings.personas, "standard", "sha")[0]
    b = identify(permuted, customers, settings.personas, "standard", "sha")[0]
    assert a == b
    income = a.centroid_table()["annual_income"]
    assert list(income.index) == [0, 1, 2]


@pytest.fixture(scope="module")
def customers(tmp_path_factory) -> pd.DataFrame:
    return generated_table(tmp_path_factory.mktemp("identity"), 200, seed=42)


def fit_named(
    table: pd.DataFrame,
    k: int,
    reference: SegmentModel | None,
    feature_set: FeatureSet = INCOME_SPENDING,
    fresh: bool = False,
):
    """The select stage's identity of a fit of ``table`` against ``reference``."""
    return identified(table, k, reference, feature_set=feature_set, fresh=fresh)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_retrain_on_shuffled_rows_keeps_ids_and_names(customers, seed):
    """KMeans numbers clusters by chance; a shuffled table must not swap segment ids."""
    first = fit_named(customers, 5, None).model
    shuffled = customers.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    again = fit_named(shuffled, 5, first).model
    assert again.segment_names == first.segment_names
    assert again.segment_personas == first.segment_personas
    assert again.fingerprint == first.fingerprint  # same model, same bytes
    changes = compare_models(first, again, customers)
    assert changes["reference"] == "same" and changes["moved"] == 0
    # and without a reference, the canonical order gives the same ids too
    assert fit_named(shuffled, 5, None).model.segment_names == first.segment_names


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_retrain_with_five_percent_new_customers_keeps_ids_names_and_personas(seed, tmp_path):
    """New customers drawn like the old ones change no id, name or persona."""
    old = generated_table(tmp_path, 400, seed=seed)
    extra = generated_table(tmp_path, 420, seed=seed + 100).iloc[:20]
    extra = extra.assign(customer_id=[f"new{i}" for i in range(20)])
    grown = pd.concat([old, extra], ignore_index=True)
    first = fit_named(old, 5, None).model
    found = fit_named(grown, 5, first)
    assert not found.fresh
    assert set(found.survived) == set(first.segments)
    assert found.model.segment_names == first.segment_names
    assert found.model.segment_personas == first.segment_personas


def test_a_sixth_segment_keeps_the_surviving_ids_and_numbers_the_new_above(customers):
    five = fit_named(customers, 5, None).model
    found = fit_named(customers, 6, five)
    six = found.model
    assert not found.fresh and len(found.survived) >= 3
    assert set(found.survived) <= set(five.segments)
    assert all(s >= 5 for s in set(six.segments) - set(found.survived))
    changes = compare_models(five, six, customers)
    new = [s for s, info in changes["segments"].items() if info["status"] == "new"]
    assert new and all(int(s) >= 5 for s in new)
    counts_ = np.asarray(changes["transitions"]["counts"])
    assert counts_.sum() == len(customers)


def test_a_reference_on_other_columns_starts_a_new_catalog(customers):
    reference = fit_named(customers, 5, None).model
    other = FeatureSet("age_spending", numeric=["age", "spending_score"])
    found = fit_named(customers, 3, reference, feature_set=other)
    assert found.model.segments == [5, 6, 7]  # never an id that meant something else
    assert "champion reads" in found.fresh and not found.survived


def test_catalog_fresh_starts_a_new_catalog_whatever_the_overlap(customers):
    reference = fit_named(customers, 5, None).model
    found = fit_named(customers, 5, reference, fresh=True)
    assert found.model.segments == [5, 6, 7, 8, 9]
    assert found.fresh == "catalog.fresh is set"
    # names are read from the same numbers: the same names under the new ids
    assert sorted(found.model.names) == sorted(reference.names)


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
    assert changes["events"] == []


def test_compare_reports_a_renamed_kept_segment():
    reference = line_model([10.0, 20.0], ids=[0, 1], names=["Low", "High"])
    new = line_model([10.0, 20.0], ids=[0, 1], names=["Low", "Higher"])
    changes = compare_models(reference, new, pd.DataFrame({"x": [9.0, 21.0]}))
    assert changes["segments"]["1"]["was_name"] == "High"
    assert "was_name" not in changes["segments"]["0"]


def test_compare_same_model_and_no_reference():
    model = line_model([10.0, 20.0])
    table = pd.DataFrame({"x": [9.0, 21.0]})
    same = compare_models(model, model, table)
    assert same["reference"] == "same" and same["moved"] == 0 and same["adjusted_rand"] == 1.0
    assert compare_models(None, model, table)["reference"] == "none"
    other = dataclasses.replace(model, numeric=["z"])
    assert compare_models(other, model, table)["reference"] == "incomparable"


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
    from custseg.storage.outputs import StaleInputError, read_sweep_model, write_sweep_models

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


def test_a_kept_segment_is_an_outlier_group_exactly_when_it_is_one_now():
    """A surviving segment keeps its id; whether it is an outlier group (name prefix and
    persona) follows its current share (personas.outlier_share), both ways."""
    outlier = compose_settings().personas.outlier_persona.name
    prefix = f"{outlier}: "
    big = fit_named(three_groups((100, 60, 40)), 3, None).model
    shrunk = fit_named(three_groups((100, 96, 3)), 3, big).model  # 3 of 199: 1.5%
    assert set(shrunk.segments) == set(big.segments)
    top = max(big.segments, key=lambda s: big.centroid_table().at[s, "annual_income"])
    assert not big.segment_names[top].startswith(prefix)
    assert shrunk.segment_names[top].startswith(prefix)
    assert shrunk.segment_personas[top] == outlier
    others = [s for s in big.segments if s != top]
    assert not any(shrunk.segment_names[s].startswith(prefix) for s in others)
    grown = fit_named(three_groups((100, 60, 40)), 3, shrunk).model
    assert grown.segment_names == big.segment_names
    assert grown.segment_personas == big.segment_personas


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
    model, ids = identify(fit, sample, settings.personas, "standard", "sha")

    assert sorted(ids) == [0, 1, 2] and sorted(ids.values()) == sorted(model.segments)
    for cluster, segment in ids.items():  # the model's segment of each cluster's rows
        rows = result.labels == cluster
        assert set(model.predict(sample[rows]).tolist()) == {segment}
    share = settings.personas.outlier_share
    outliers = {ids[c] for c in range(3) if sizes[c] / sizes.sum() < share}
    named = {s for s, n in model.segment_names.items() if n.startswith(prefix)}
    assert named == outliers
    assert len(outliers) == (whole[2] == 3)


def test_survival_maximises_the_total_overlap_not_the_number_of_pairs():
    # old 0: 75 customers to new 10, 25 to new 11; old 1: 20 to new 10
    table = counts([[75, 25], [20, 0]], [0, 1], [10, 11])
    # Jaccard (0, 10) 0.625, (0, 11) 0.25, (1, 10) 0.21: new 10 continues old 0
    assert survivors(table, 0.2) == {10: 0}


def test_a_split_is_said_also_when_one_part_keeps_the_id():
    # old 2 (50 customers): 30 stay in 2, 20 make up the new 6; old 3 stays whole
    table = counts([[30, 0, 20], [0, 40, 0]], [2, 3], [2, 3, 6])
    assert lineage(table) == [{"event": "split", "from": [2], "to": [2, 6]}]
    # a boundary shift is no split: the 20 join a segment made mostly of others
    shifted = counts([[30, 20], [0, 40]], [2, 3], [2, 3])
    assert lineage(shifted) == []


def test_an_id_dropped_on_the_way_is_never_given_out_again(customers):
    """v1 has five segments, v2 three, v3 five again: v3's new segments never take an id
    that v1 gave a segment v2 dropped."""
    first = fit_named(customers, 5, None).model
    second = fit_named(customers, 3, first).model
    third = fit_named(customers, 5, second).model
    dropped = set(first.segments) - set(second.segments)
    assert dropped and second.first_free_id >= 5
    assert not set(third.segments) & dropped
    assert all(s >= second.first_free_id for s in set(third.segments) - set(second.segments))
    # the high-water mark survives the model file
    assert SegmentModel.from_json(second.to_json()).first_free_id == second.first_free_id


@pytest.mark.parametrize(
    ("moved", "phrase"),
    [
        (0, "0 customers change segment"),
        (1, "1 customer changes segment"),
        (2, "2 customers change segment"),
        (1234, "1,234 customers change segment"),
    ],
)
def test_how_many_customers_move_is_said_in_good_grammar(moved, phrase):
    from custseg.domain.identity import moving

    assert moving(moved) == phrase
