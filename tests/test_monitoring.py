"""Monitoring's statistics and verdicts (pure): hand-computed cases, then the statistics
users rely on, on the real seed table with its five named segments."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custseg.domain.monitoring import statistics as st
from custseg.domain.monitoring.batch import ALL, count_batch, count_scored
from custseg.domain.monitoring.reference import ReferenceParams, model_reference
from custseg.domain.monitoring.rules import DriftRules
from custseg.domain.monitoring.verdict import assess
from custseg.storage.data import load_customers

from conftest import (
    compose_settings,
    generated_table,
    identified,
    named_reference,
    with_data_path,
)

# ------------------------------------------------------------------ the statistics


@pytest.mark.parametrize(
    ("reference", "batch"),
    [
        ([1, 2, 3, 4, 5], [2, 3, 4, 5, 6, 7]),
        ([1, 1, 2, 2, 2, 3], [1, 2, 2, 3, 3, 3, 3]),  # ties on both sides
        ([10, 20, 30], [0, 5, 40, 50]),  # the batch beyond both ends of the grid
        ([0.5, 1.5, 2.5], [1.0, 2.0]),  # the batch between grid values
    ],
)
def test_ks_statistic_from_counts_is_scipys(reference, batch):
    grid = np.unique(reference)
    ref_cdf = np.searchsorted(np.sort(reference), grid, side="right") / len(reference)
    below, at_or_below = st.ecdf_counts(np.sort(batch), grid)
    found = st.ks_statistic(ref_cdf, below, at_or_below, len(batch))
    assert found == pytest.approx(stats.ks_2samp(reference, batch).statistic)


def _wasserstein(reference, batch) -> float:
    grid = np.unique(reference)
    ref_cdf = np.searchsorted(np.sort(reference), grid, side="right") / len(reference)
    values = np.sort(np.asarray(batch, float))
    below, at_or_below = st.ecdf_counts(values, grid)
    low = float(np.sum(grid[0] - values[values < grid[0]]))
    high = float(np.sum(values[values > grid[-1]] - grid[-1]))
    return st.wasserstein(grid, ref_cdf, below, at_or_below, len(values), low, high)


@pytest.mark.parametrize(
    ("reference", "batch"),
    [([1, 2, 3, 4], [2, 3, 4, 4, 4]), ([1, 2, 3], [-2, 0, 3, 7]), ([5, 5, 6], [5, 6, 6, 6])],
)
def test_wasserstein_is_exact_when_the_batch_lies_on_the_grid_or_beyond_it(reference, batch):
    assert _wasserstein(reference, batch) == pytest.approx(
        stats.wasserstein_distance(reference, batch)
    )


def test_wasserstein_between_grid_values_is_close():
    rng = np.random.default_rng(0)
    reference, batch = rng.normal(size=1000), rng.normal(0.3, 1.2, size=5000)
    exact = stats.wasserstein_distance(reference, batch)
    assert _wasserstein(reference, batch) == pytest.approx(exact, rel=0.02)


def test_z_test_of_proportions_by_hand():
    # 30/100 against 50/100: pooled 0.4, spread sqrt(0.4 * 0.6 * 0.02) = 0.069282,
    # z = 0.2 / 0.069282 = 2.886751, two-sided p = 0.003892
    assert st.proportions_pvalue(30, 100, 50, 100) == pytest.approx(0.003892, abs=1e-6)
    # two categories: the chi-square test is the same test
    chi = st.chi_square_pvalue(np.array([30, 70]), np.array([50, 50]))
    assert chi == pytest.approx(st.proportions_pvalue(30, 100, 50, 100))


@pytest.mark.parametrize(
    ("reference", "batch", "expected"),
    [
        # (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5) = 0.173287 + 0.101366
        ([50, 50], [25, 75], 0.274653),
        ([1, 2, 3], [10, 20, 30], 0.0),
        # an empty bin counts as 1e-4: (0.5 - 1e-4) ln(0.5 / 1e-4) + (0.5 - 1) ln(0.5)
        ([100, 0], [50, 50], 0.4999 * np.log(5000) - 0.5 * np.log(0.5)),
    ],
)
def test_psi_by_hand(reference, batch, expected):
    assert st.psi(reference, batch) == pytest.approx(expected, abs=1e-6)


def test_holm_steps_down_and_keeps_non_tests():
    # sorted: 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> max(0.06, 0.04) = 0.06
    assert st.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert st.holm([]) == []


def test_jensen_shannon_is_zero_for_one_mix_and_grows_with_the_change():
    same = st.js_distance(np.array([10, 30]), np.array([1, 3]))
    assert same == pytest.approx(0.0, abs=1e-12)
    assert 0 < st.js_distance([10, 30], [20, 20]) < st.js_distance([10, 30], [30, 10])


# ------------------------------------------------------------------ the seed table

RULES = dataclasses.asdict(compose_settings().monitor.rules)


@pytest.fixture(scope="module")
def seed(request):
    """The seed table, its five named segments on income x spending and their reference."""
    settings = compose_settings()
    path = request.getfixturevalue("seed_csv")
    table, _ = load_customers(with_data_path(settings, path).data)
    model = identified(table, 5, None)[0].model
    ids = model.predict(table)
    sizes = dict(zip(*np.unique(ids, return_counts=True), strict=True))
    params = ReferenceParams(sample_size=1000, bins=10, seed=42)
    columns = {"numeric": ["annual_income", "spending_score", "age"], "categorical": ["gender"]}
    reference = model_reference(model, table, sizes, silhouette=0.55, params=params, **columns)
    return table, model, ids, reference


def judge(seed, batch: pd.DataFrame, **rules) -> dict:
    _, model, _, reference = seed
    return assess(reference, count_scored(model, batch, reference), DriftRules(**RULES | rules))


def resampled(table: pd.DataFrame, n: int, random_state: int) -> pd.DataFrame:
    return table.sample(n, replace=True, random_state=random_state).reset_index(drop=True)


def test_the_reference_is_the_same_bytes_each_time_and_holds_no_id(seed):
    table, model, _, reference = seed
    again = model_reference(
        model,
        table,
        {int(k): v["count"] for k, v in reference["segments"].items()},
        numeric=["annual_income", "spending_score", "age"],
        categorical=["gender"],
        silhouette=0.55,
        params=ReferenceParams(sample_size=1000, bins=10, seed=42),
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(reference, sort_keys=True)
    assert "customer_id" not in reference["sample"]
    assert set(table["customer_id"]).isdisjoint(map(str, reference["sample"]["annual_income"]))
    assert reference["n_rows"] == 200 and len(reference["sample"]["segment"]) == 200


def test_the_sample_is_bounded_and_seeded(seed):
    table, model, _, _ = seed
    sizes = {s: 1 for s in model.segments}

    def drawn(seed_value: int) -> list:
        params = ReferenceParams(sample_size=50, bins=4, seed=seed_value)
        found = model_reference(
            model, table, sizes, numeric=["age"], categorical=[], silhouette=None, params=params
        )
        return found["sample"]["age"]

    assert len(drawn(1)) == 50 and drawn(1) == drawn(1) and drawn(1) != drawn(2)


def test_counts_of_chunks_add_up_to_the_counts_of_the_whole(seed):
    table, model, ids, reference = seed
    whole = count_scored(model, table, reference)
    chunked = count_scored(model, table, reference, chunk=37)
    assert chunked.groups.keys() == whole.groups.keys() and chunked.beyond == whole.beyond
    for key, group in whole.groups.items():
        other = chunked.groups[key]
        assert other.n == group.n and other.categories == group.categories
        for column, counts in group.numeric.items():
            np.testing.assert_array_equal(other.numeric[column].at_or_below, counts.at_or_below)
            np.testing.assert_array_equal(other.numeric[column].bins, counts.bins)
            assert other.numeric[column].total == pytest.approx(counts.total)
    assert whole.groups[ALL].n == len(table)


def test_a_batch_drawn_from_the_training_table_stays_stable(seed):
    """At least 95 of 100 resamples of the training customers are ``stable``."""
    table = seed[0]
    verdicts = [judge(seed, resampled(table, len(table), s))["verdict"] for s in range(100)]
    assert verdicts.count("stable") >= 95, verdicts


def test_income_shifted_by_one_standard_deviation_names_that_column_and_no_other(seed):
    table = seed[0]
    batch = resampled(table, len(table), 1)
    batch["annual_income"] += table["annual_income"].std(ddof=0)
    report = judge(seed, batch)
    assert report["verdict"] in ("watch", "resegment")
    drifted = {c for c, r in report["columns"].items() if r["drifted"]}
    assert drifted == {"annual_income"}
    assert report["columns"]["annual_income"]["shift_sd"] == pytest.approx(1.0, abs=0.15)
    assert any("annual_income drifted up by" in r["text"] for r in report["reasons"])


def test_a_segment_grown_by_twenty_points_is_named(seed):
    table, model, ids, _ = seed
    segment = int(pd.Series(ids).value_counts().index[-1])  # the smallest segment
    share = np.mean(ids == segment)
    members = table[ids == segment]
    n = 400
    grown = round((share + 0.20) * n)
    rest = table[ids != segment].sample(n - grown, replace=True, random_state=3)
    batch = pd.concat([members.sample(grown, replace=True, random_state=4), rest])
    report = judge(seed, batch.reset_index(drop=True))
    entry = report["segments"][str(segment)]
    assert report["verdict"] == "resegment"
    assert entry["drifted"] and entry["share_delta"] == pytest.approx(0.20, abs=0.01)
    assert [s for s, e in report["segments"].items() if e["drifted"] and e["share_delta"] > 0] == [
        str(segment)
    ]
    name = model.segment_names[segment]
    assert any(r["text"].startswith(f"{name} grew from") for r in report["reasons"])


def test_a_trivial_shift_on_a_million_rows_is_not_drift(seed):
    table = seed[0]
    batch = resampled(table, 1_000_000, 5)
    batch["annual_income"] += 0.01 * table["annual_income"].std(ddof=0)
    report = judge(seed, batch)
    assert report["verdict"] == "stable", report["reasons"]
    assert not report["columns"]["annual_income"]["drifted"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A reference of 5,000 generated customers (more than the 1,000 the sample keeps)."""
    folder = tmp_path_factory.mktemp("generated-monitoring")
    return (folder, *named_reference(generated_table(folder, 5000, 42)))


@pytest.mark.parametrize(
    ("reference_rows", "batch_rows"), [(200, 50), (200, 500), (5000, 50), (5000, 200)]
)
def test_fresh_batches_of_the_training_distribution_stay_stable(
    tmp_path, generated, reference_rows, batch_rows
):
    """New customers of the generator that made the training table (not resamples of its
    rows, whose 95th-percentile lines they share) are judged stable, small batches too."""
    folder, model, reference = generated
    if reference_rows == 200:
        model, reference = named_reference(generated_table(tmp_path, 200, 42))
    rules = DriftRules(**RULES)
    verdicts = [
        assess(
            reference,
            count_scored(model, generated_table(tmp_path, batch_rows, s), reference),
            rules,
        )["verdict"]
        for s in range(1000, 1030)
    ]
    assert verdicts.count("stable") >= 27, verdicts


def test_a_large_reference_flags_a_real_shift_and_not_a_trivial_one(generated, tmp_path):
    """Past 1,000 reference customers the tests run against the seeded sample: half a
    standard deviation drifts, 0.01 on 200,000 customers does not."""
    _, model, reference = generated
    spread = reference["columns"]["spending_score"]["std"]
    shifted = generated_table(tmp_path, 400, 6)
    shifted["spending_score"] += 0.5 * spread
    rules = DriftRules(**RULES)
    spending = assess(reference, count_scored(model, shifted, reference), rules)["columns"][
        "spending_score"
    ]
    assert spending["drifted"] and spending["test"] == "ks"
    big = generated_table(tmp_path, 200_000, 7)
    big["spending_score"] += 0.01 * spread
    report = assess(reference, count_scored(model, big, reference), rules)
    assert not report["columns"]["spending_score"]["drifted"]


# ------------------------------------------------------------------ awkward batches


def test_an_empty_segment_gets_a_clear_entry(seed):
    table, model, ids, _ = seed
    segment = int(ids[0])
    report = judge(seed, resampled(table[ids != segment], 200, 7))
    entry = report["segments"][str(segment)]
    assert entry["customers"] == 0 and entry["share"] == 0 and entry["drifted"]
    assert entry["beyond_p95"] is None and entry["columns_drifted"] is None
    assert report["verdict"] == "resegment"


def test_an_unseen_category_and_an_all_missing_column_are_reported(seed):
    table = seed[0]
    batch = resampled(table, 200, 8)
    batch.loc[:9, "gender"] = "Other"
    batch["age"] = np.nan
    report = judge(seed, batch)
    assert report["quality"]["unseen"] == {"gender": {"Other": 10}}
    assert report["quality"]["missing"] == {"age": 200}
    assert report["columns"]["age"] == {"status": "empty", "drifted": False}


def test_a_column_the_batch_lacks_is_absent(seed):
    batch = resampled(seed[0], 200, 9).drop(columns=["age", "gender"])
    report = judge(seed, batch)
    assert report["quality"]["absent"] == ["age", "gender"]
    assert report["columns"]["age"] == {"status": "absent", "drifted": False}
    assert report["columns"]["annual_income"]["status"] == "compared"
    assert not any("age" in r["text"] or "gender" in r["text"] for r in report["reasons"])


def test_nullable_and_string_dtypes_give_the_same_report(seed):
    batch = resampled(seed[0], 200, 10)
    typed = batch.astype({"age": "Int64", "gender": "string"})
    typed.loc[0, "age"] = pd.NA
    plain = batch.astype({"age": float})
    plain.loc[0, "age"] = np.nan
    assert judge(seed, typed) == judge(seed, plain)


@pytest.mark.parametrize("rows", [0, 1])
def test_a_tiny_batch_is_insufficient(seed, rows):
    report = judge(seed, resampled(seed[0], rows, 11) if rows else seed[0].iloc[:0])
    assert report["verdict"] == "insufficient" and report["customers"] == rows
    assert "at least 50" in report["reasons"][0]["text"]


def test_counting_a_batch_needs_no_segment_model(seed):
    """The counts are plain arrays in: what an engine's aggregation would give."""
    table, _, ids, reference = seed
    distances = np.zeros(len(table))
    counts = count_batch(table, ids, distances, reference)
    assert sum(counts.groups[int(k)].n for k in reference["segments"]) == len(table)


def test_a_wider_spread_is_said_as_a_changed_distribution(seed):
    """The mean barely moves when the spread triples: the reason says the distribution
    changed, not that the column drifted by a fraction of a standard deviation."""
    table = seed[0]
    batch = resampled(table, 400, 12)
    mean = table["spending_score"].mean()
    batch["spending_score"] = mean + 3 * (batch["spending_score"] - mean)
    report = judge(seed, batch)
    texts = [r["text"] for r in report["reasons"]]
    assert any(t.startswith("spending_score's distribution changed (Wasserstein") for t in texts)
