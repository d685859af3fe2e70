"""Segment profiles, names, personas and the profile chart (core, pure)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custseg.config import ConfigError
from custseg.domain.clustering import fit_model
from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.profiling.naming import (
    describe_segments,
    name_segments,
    segment_levels,
    segment_scores,
    segment_table,
)
from custseg.domain.profiling.profiles import profile_columns, profile_segments
from custseg.domain.profiling.rules import AttributeWords, NamingRules, PersonaRule
from custseg.reporting import figures as plots
from custseg.storage.data import load_customers

from conftest import compose_settings, with_data_path

PERMUTATIONS = [(0, 1), (1, 0)]


def tiny_table() -> pd.DataFrame:
    """Two segments of three customers; hand-computable statistics."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "gender": ["F", "F", "M", "M", "M", "M"],
            "x": [1.0, 2.0, 3.0, 7.0, 8.0, 9.0],
            "y": [5.0, 5.0, 5.0, 5.0, 5.0, 5.0],  # constant
            "tenure": [1.0, np.nan, 3.0, 10.0, 10.0, np.nan],  # extra column with gaps
        }
    )


def labels_for(groups: list[int], ids: tuple[int, ...]) -> np.ndarray:
    """Labels of a fixed grouping under a permutation of the segment ids."""
    return np.array([ids[g] for g in groups])


# ---------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("ids", PERMUTATIONS)
def test_profile_statistics_are_hand_computed(ids):
    table = tiny_table()
    labels = labels_for([0, 0, 0, 1, 1, 1], ids)
    p = profile_segments(table, labels, ["x", "y", "tenure"], ["gender"])
    first, second = ids  # segment of rows a-c, of rows d-f

    assert p.segments == [0, 1]
    assert p.sizes.loc[first, "size"] == 3
    assert p.sizes.loc[second, "share"] == pytest.approx(0.5)
    assert p.n_customers == 6

    means = p.wide("mean")
    assert means.loc[first, "x"] == pytest.approx(2.0)
    assert means.loc[second, "x"] == pytest.approx(8.0)
    assert means.loc[first, "tenure"] == pytest.approx(2.0)  # NaN skipped
    assert p.wide("median").loc[first, "x"] == pytest.approx(2.0)
    assert p.wide("q1").loc[first, "x"] == pytest.approx(1.5)
    assert p.wide("q3").loc[second, "x"] == pytest.approx(8.5)

    std_x = math.sqrt(58 / 5)  # deviations from 5: -4 -3 -2 2 3 4
    diffs = p.wide("std_diff")
    assert diffs.loc[first, "x"] == pytest.approx(-3 / std_x)
    assert diffs.loc[second, "x"] == pytest.approx(3 / std_x)
    assert diffs.loc[first, "y"] == 0.0  # constant column: no difference
    assert p.overall.loc["x", "mean"] == pytest.approx(5.0)
    assert p.overall.loc["x", "std"] == pytest.approx(std_x)

    shares = p.category_shares("gender")
    assert shares.loc[first, "F"] == pytest.approx(2 / 3)
    assert shares.loc[second, "M"] == pytest.approx(1.0)
    assert shares.loc[second, "F"] == 0.0  # absent value listed with count 0
    overall = p.overall_categorical.set_index("value")
    assert overall.loc["M", "count"] == 4


def test_profile_long_frames_have_documented_columns():
    p = profile_segments(tiny_table(), [0, 0, 0, 1, 1, 1], ["x"], ["gender"])
    assert list(p.numeric.columns) == [
        "segment",
        "column",
        "mean",
        "median",
        "q1",
        "q3",
        "std_diff",
        "pct",
    ]
    assert list(p.categorical.columns) == ["segment", "column", "value", "count", "share"]
    assert len(p.numeric) == 2 and len(p.categorical) == 4
    assert p.numeric_columns == ("x",) and p.categorical_columns == ("gender",)


@pytest.mark.parametrize("seed", range(6))
def test_medians_and_quartiles_equal_pandas_to_the_bit(seed):
    """Reports printed before the faster order statistics keep their values: the same
    floats as pandas' groupby and DataFrame statistics, with missing values, ties, odd
    and even counts, groups of one and a group whose values are all missing."""
    rng = np.random.default_rng(seed)
    n = 300
    table = pd.DataFrame(
        {
            "spread": rng.normal(50.0, 20.0, n),
            "ties": rng.integers(0, 9, n) * 1.37,
            "ints": rng.integers(0, 3, n),
            "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2.0, 10.0, n)),
        }
    )
    labels = rng.integers(0, 4, n) * 5 + 2  # ids 2, 7, 12, 17 (not positions)
    labels[:4] = [30, 40, 50, 50]  # groups of one, and of two
    table.loc[labels == 30, "gappy"] = np.nan  # a group with no value
    # a pair whose median and quartiles come out one bit apart in other exact formulas
    # ((a + b) / 2 vs a + (b - a) / 2; numpy's b - (b - a) * 0.25 for pandas' q3)
    table.loc[[2, 3], "spread"] = [11.3, 45.2]
    columns = list(table.columns)
    profiles = profile_segments(table, labels, columns)
    values = table.astype(float)
    grouped = values.groupby(labels)
    expected = {"median": grouped.median(), "q1": grouped.quantile(0.25)}
    expected["q3"] = grouped.quantile(0.75)
    numeric = profiles.numeric.set_index(["segment", "column"])
    for statistic, frame in expected.items():
        wanted = frame.stack(future_stack=True).rename_axis(["segment", "column"])
        got = numeric[statistic].reindex(wanted.index)
        np.testing.assert_array_equal(got.to_numpy(), wanted.to_numpy(), strict=True)
    overall = {"median": values.median(), "q1": values.quantile(0.25)}
    overall["q3"] = values.quantile(0.75)
    for statistic, series in overall.items():
        np.testing.assert_array_equal(profiles.overall[statistic].to_numpy(), series.to_numpy())


def test_missing_categories_are_a_value_of_their_own():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["u", None, "u"]})
    p = profile_segments(table, [0, 0, 1], ["x"], ["c"])
    assert p.category_shares("c").loc[0, "(missing)"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "labels, numeric, categorical, message",
    [
        ([0, 1], ["x"], [], "shape"),
        ([0.5, 0, 0, 1, 1, 1], ["x"], [], "integer"),
        (["a", "a", "a", "b", "b", "b"], ["x"], [], "integer"),
        ([0, 0, 0, 1, 1, 1], ["nope"], [], "lacks"),
        ([0, 0, 0, 1, 1, 1], ["gender"], [], "not numeric"),
    ],
)
def test_profile_rejects_bad_input(labels, numeric, categorical, message):
    with pytest.raises(ValueError, match=message):
        profile_segments(tiny_table(), np.array(labels), numeric, categorical)


def test_float_labels_holding_integers_are_accepted():
    p = profile_segments(tiny_table(), np.array([0.0, 0, 0, 1, 1, 1]), ["x"])
    assert p.segments == [0, 1]


def test_profile_columns_puts_features_first_and_skips_identifiers():
    table = tiny_table()
    numeric, categorical = profile_columns(table, FeatureSet("f", ["y"], []))
    assert numeric == ["y", "x", "tenure"]
    assert categorical == ["gender"]  # customer_id: unique per row, not profiled
    numeric, _ = profile_columns(table, exclude=["tenure"])
    assert numeric == ["x", "y"]


# ------------------------------------------------------------------------------ levels


@pytest.mark.parametrize(
    "threshold, expected", [(0.5, ["low", "mid", "high"]), (1.5, ["mid", "mid", "mid"])]
)
def test_levels_follow_the_threshold(threshold, expected):
    # three segments with means -1, 0, 1 of a column with overall std 1 (ddof=1)
    values = [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0]
    std = float(np.std(values, ddof=1))
    table = pd.DataFrame({"x": [v / std for v in values]})
    p = profile_segments(table, [0, 0, 1, 1, 2, 2], ["x"])
    assert segment_levels(p, threshold)["x"].tolist() == expected


# ------------------------------------------------------------------------------- names


def rules(**overrides) -> NamingRules:
    """Rules like conf/personas/default.yaml, small enough to read in a test."""
    base = NamingRules(
        name_order=["income", "spending", "age"],
        attributes={
            "spending": AttributeWords(label="spending"),
            "age": AttributeWords(low="younger", mid="middle-aged", high="older"),
        },
        personas=[
            PersonaRule("Premium", {"income": "high", "spending": "high"}, "", "keep them"),
            PersonaRule("Careful", {"income": "high", "spending": "low"}, "", "win them"),
            PersonaRule("Impulsive", {"income": "low", "spending": "high"}, "", "time it"),
            PersonaRule("Price-sensitive", {"income": "low", "spending": "low"}, "", "discount"),
            PersonaRule("Mainstream", {"income": "mid", "spending": ["mid"]}, "", "broad"),
        ],
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


# five blobs of two customers each in (income, spending); ages break nothing
BLOBS = {
    "high/high": [(90, 90), (92, 88)],
    "low/low": [(10, 10), (12, 8)],
    "high/low": [(90, 10), (88, 12)],
    "low/high": [(10, 90), (12, 88)],
    "mid/mid": [(50, 50), (52, 48)],
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_five_blobs_get_their_names_and_personas_for_any_ids(seed):
    order = list(BLOBS)
    ids = np.random.default_rng(seed).permutation(len(order))
    rows, labels = [], []
    for blob, seg in zip(order, ids, strict=True):
        for income, spending in BLOBS[blob]:
            rows.append({"income": float(income), "spending": float(spending), "age": 40.0})
            labels.append(int(seg))
    table = pd.DataFrame(rows)
    p = profile_segments(table, np.array(labels), ["income", "spending", "age"])
    names = name_segments(p, rules(), ["income", "spending"])
    by_blob = {blob: names[int(seg)] for blob, seg in zip(order, ids, strict=True)}
    assert by_blob["high/high"].name == "High income, high spending"
    assert by_blob["low/low"].name == "Low income, low spending"
    assert by_blob["high/low"].name == "High income, low spending"
    assert by_blob["low/high"].name == "Low income, high spending"
    assert by_blob["mid/mid"].name == "Mid income, mid spending"
    assert [by_blob[b].persona for b in order] == [
        "Premium", "Price-sensitive", "Careful", "Impulsive", "Mainstream",
    ]  # fmt: skip
    assert by_blob["high/high"].recommendation == "keep them"
    assert by_blob["low/low"].levels == {"income": "low", "spending": "low", "age": "mid"}


def two_alike(age: tuple[float, float], income: tuple[float, float]) -> pd.DataFrame:
    """Segments 0 and 1 are both high income / high spending; segment 2 is low / low."""
    return pd.DataFrame(
        {
            "income": [income[0], income[0], income[1], income[1], 10.0, 10.0],
            "spending": [90.0, 90.0, 90.0, 90.0, 10.0, 10.0],
            "age": [age[0], age[0], age[1], age[1], 40.0, 40.0],
        }
    )


@pytest.mark.parametrize("ids", [(0, 1, 2), (1, 0, 2), (2, 1, 0)])
def test_ties_are_broken_by_another_attribute(ids):
    table = two_alike(age=(20.0, 60.0), income=(90.0, 90.0))
    labels = labels_for([0, 0, 1, 1, 2, 2], ids)
    p = profile_segments(table, labels, ["income", "spending", "age"])
    names = name_segments(p, rules(), ["income", "spending"])
    young, old, other = (names[i].name for i in ids)
    assert young == "High income, high spending, younger"
    assert old == "High income, high spending, older"
    assert other == "Low income, low spending"


@pytest.mark.parametrize(
    "name_columns, lower, higher",
    [
        # the splitting column is not in the name: plain relative qualifier
        (["spending", "age"], "(lower income)", "(higher income)"),
        # it is part of the name: "... of the two", so the name never reads "high (lower)"
        (["income", "spending"], "(lower income of the two)", "(higher income of the two)"),
    ],
)
@pytest.mark.parametrize("ids", [(0, 1, 2), (1, 0, 2)])
def test_a_tied_pair_gets_relative_qualifiers(ids, name_columns, lower, higher):
    table = two_alike(age=(40.0, 40.0), income=(88.0, 95.0))  # both "high"
    labels = labels_for([0, 0, 1, 1, 2, 2], ids)
    p = profile_segments(table, labels, ["income", "spending", "age"])
    names = name_segments(p, rules(), name_columns)
    low_income, high_income = names[ids[0]].name, names[ids[1]].name
    assert low_income.endswith(lower)
    assert high_income.endswith(higher)
    assert low_income.removesuffix(" " + lower) == high_income.removesuffix(" " + higher)


def test_identical_segments_get_numeric_suffixes():
    table = pd.DataFrame({"income": [50.0] * 6, "spending": [50.0] * 6})
    p = profile_segments(table, np.array([0, 0, 1, 1, 2, 2]), ["income", "spending"])
    names = [d.name for d in name_segments(p, rules()).values()]
    assert sorted(names) == [f"Mid income, mid spending ({i})" for i in (1, 2, 3)]


def test_dominant_category_names_segments_and_splits_ties():
    table = pd.DataFrame(
        {
            "income": [50.0] * 8,
            "gender": ["F", "F", "F", "F", "M", "M", "M", "M"],
        }
    )
    p = profile_segments(table, np.array([0, 0, 0, 0, 1, 1, 1, 1]), ["income"], ["gender"])
    words = {"gender": AttributeWords(values={"F": "women", "M": "men"})}
    names = name_segments(p, rules(attributes=words), ["income", "gender"])
    assert names[0].name == "Mid income, all women"
    assert names[1].name == "Mid income, all men"


def test_category_shared_by_the_whole_base_is_not_distinctive():
    table = pd.DataFrame({"income": [1.0, 2.0, 8.0, 9.0], "gender": ["F"] * 4})
    p = profile_segments(table, np.array([0, 0, 1, 1]), ["income"], ["gender"])
    names = name_segments(p, rules(), ["income", "gender"])
    assert {d.name for d in names.values()} == {"Low income", "High income"}


@pytest.mark.parametrize(
    "personas, expected",
    [
        ([PersonaRule("A", {"income": "high"}), PersonaRule("B", {})], "A"),  # first wins
        ([PersonaRule("A", {"income": ["low", "high"]})], "A"),  # list of levels
        ([PersonaRule("A", {"tenure": "high"}), PersonaRule("B", {})], "B"),  # absent column
        ([PersonaRule("A", {"income": "low"})], "General"),  # nothing matches: default
    ],
)
def test_persona_rule_table(personas, expected):
    table = pd.DataFrame({"income": [1.0, 1.0, 9.0, 9.0]})
    p = profile_segments(table, np.array([0, 0, 1, 1]), ["income"])
    rules_ = NamingRules(personas=personas)
    high = name_segments(p, rules_)[1]
    # the rule that matched (two segments under one persona are told apart by a qualifier)
    assert rules_.persona_rule(high.persona).name == expected


@pytest.mark.parametrize(
    "change, key",
    [
        ({"level_threshold": 0.0}, "level_threshold"),
        ({"dominance": 0.4}, "dominance"),
        ({"personas": [PersonaRule("A", {"income": "hgh"})]}, "personas[0].when.income"),
        ({"personas": [PersonaRule("", {})]}, "personas[0].name"),
        ({"personas": [PersonaRule("A", {"income": 6})]}, "personas[0].when.income"),
        ({"level_method": "zscore"}, "level_method"),
        ({"outlier_share": 0.5}, "outlier_share"),
        ({"attributes": {"income": AttributeWords(better="up")}}, "attributes.income.better"),
        ({"outlier_persona": PersonaRule("")}, "outlier_persona.name"),
    ],
)
def test_invalid_rules_are_reported_with_their_key(change, key):
    problems = rules(**change).problems()
    assert len(problems) == 1 and problems[0].startswith(key)
    assert rules().problems() == []


@pytest.mark.parametrize(
    "override, key",
    [
        ("personas.level_threshold=-1", "personas.level_threshold"),
        ("personas.personas.0.when.spending_score=medium", "personas.personas[0].when"),
    ],
)
def test_config_rejects_invalid_personas(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        compose_settings([override])


def test_default_persona_table_covers_the_issue_personas():
    settings = compose_settings()
    names = {rule.name for rule in settings.personas.personas}
    assert {"Premium", "Careful", "Impulsive", "Price-sensitive", "Mainstream"} <= names
    assert all(rule.recommendation for rule in settings.personas.personas)


def test_segment_table_one_row_per_segment():
    table = tiny_table()
    p = profile_segments(table, [1, 1, 1, 0, 0, 0], ["x"], ["gender"])
    names = name_segments(p, rules())
    out = segment_table(p, names)
    assert list(out.columns) == [
        "segment", "name", "persona", "size", "share", "mean_x", "recommendation",
    ]  # fmt: skip
    assert out["segment"].tolist() == [0, 1]
    assert out.set_index("segment").loc[1, "mean_x"] == pytest.approx(2.0)
    assert out["name"].tolist() == ["High x", "Low x"]


# ------------------------------------------------------------------------ the seed data


def seed_labels(seed_csv, feature_set: str, k: int):
    settings = with_data_path(compose_settings(), seed_csv)
    table, _ = load_customers(settings.data)
    fs = settings.feature_catalog[feature_set]
    params = ModelParams(n_init=10, random_state=42)
    labels = fit_model(table, fs, "standard", params, k).labels
    return settings, table, fs, labels


def test_seed_data_five_segments_get_five_correct_names(seed_csv):
    settings, table, fs, labels = seed_labels(seed_csv, "income_spending", 5)
    described = describe_segments(table, labels, fs, settings.personas, exclude=["customer_id"])
    assert len({d.name for d in described.values()}) == 5

    means = table.groupby(labels)[["annual_income", "spending_score"]].mean()
    z = (means - table[means.columns].mean()) / table[means.columns].std()
    total, contrast = z.sum(axis=1), z["annual_income"] - z["spending_score"]
    corners = {
        "high/high": int(total.idxmax()),
        "low/low": int(total.idxmin()),
        "high/low": int(contrast.idxmax()),
        "low/high": int(contrast.idxmin()),
    }
    assert len(set(corners.values())) == 4
    corners["mid/mid"] = next(int(s) for s in means.index if s not in corners.values())
    expected = {
        "high/high": ("High income, high spending", "Premium"),
        "low/low": ("Low income, low spending", "Price-sensitive"),
        "high/low": ("High income, low spending", "Careful"),
        "low/high": ("Low income, high spending", "Impulsive"),
        "mid/mid": ("Mid income, mid spending", "Mainstream"),
    }
    for corner, seg in corners.items():
        name, persona = expected[corner]
        assert described[seg].name.startswith(name), corner
        assert described[seg].persona == persona, corner
        assert described[seg].recommendation


@pytest.mark.parametrize(
    "feature_set", ["income_spending", "age_spending", "age_income_spending", "all"]
)
@pytest.mark.parametrize("k", [2, 5, 8, 10])
def test_seed_data_names_are_unique_for_every_feature_set_and_k(seed_csv, feature_set, k):
    settings, table, fs, labels = seed_labels(seed_csv, feature_set, k)
    described = describe_segments(table, labels, fs, settings.personas)
    names = [d.name for d in described.values()]
    assert len(described) == k
    assert len(set(names)) == k, names
    assert all(n and n[0].isupper() for n in names)


# ---------------------------------------------------------------------- profile chart


@pytest.mark.parametrize("ids", PERMUTATIONS)
def test_profile_chart_draws_a_panel_per_segment(ids):
    labels = labels_for([0, 0, 0, 1, 1, 1], ids)
    p = profile_segments(tiny_table(), labels, ["x", "tenure"], ["gender"])
    fig = plots.profile_chart(p, {ids[0]: "Low x", ids[1]: "High x"}, threshold=0.5)
    widths: dict[str, list[float]] = {}
    for ax in fig.axes:
        for patch in ax.patches:
            if (patch.get_gid() or "").startswith("profile-"):
                widths.setdefault(patch.get_gid(), []).append(patch.get_width())
    assert set(widths) == {"profile-0", "profile-1"}
    assert all(len(w) == 2 for w in widths.values())  # one bar per column: x, tenure
    # x is below the base for rows a-c and above it for rows d-f
    assert widths[f"profile-{ids[0]}"][0] < 0 < widths[f"profile-{ids[1]}"][0]
    titles = {ax.get_title() for ax in fig.axes}
    assert any(t.startswith("Low x\nn=3 (50%)") for t in titles)


def test_profile_chart_rejects_unknown_columns():
    p = profile_segments(tiny_table(), [0, 0, 0, 1, 1, 1], ["x"])
    with pytest.raises(ValueError, match="not profiled"):
        plots.profile_chart(p, columns=["age"])


# ------------------------------------------------------------- direction, scores, outliers


def test_median_percentile_is_mid_rank_hand_computed():
    # segment 0: median 1, tied with 4 of 6 customers -> (0 + 4) / 12; segment 1: 7.5,
    # above 5 customers and tied with none -> (5 + 5) / 12
    table = pd.DataFrame({"frequency": [1.0, 1.0, 1.0, 1.0, 5.0, 10.0]})
    for ids in PERMUTATIONS:
        p = profile_segments(table, labels_for([0, 0, 0, 0, 1, 1], ids), ["frequency"])
        pct = p.wide("pct")["frequency"]
        assert pct[ids[0]] == pytest.approx(4 / 12) and pct[ids[1]] == pytest.approx(10 / 12)


@pytest.mark.parametrize("better, expected", [("", (2, 5)), ("higher", (2, 5)), ("lower", (4, 1))])
def test_scores_read_in_the_declared_direction(better, expected):
    # medians at percentiles 1/3 and 5/6: quintile scores ceil(5/3) = 2 and ceil(25/6) = 5
    table = pd.DataFrame({"days": [1.0, 1.0, 1.0, 1.0, 5.0, 10.0]})
    p = profile_segments(table, np.array([0, 0, 0, 0, 1, 1]), ["days"])
    named = NamingRules(attributes={"days": AttributeWords(better=better)})
    assert tuple(segment_scores(p, named)["days"]) == expected


def rfm_like_table() -> tuple[pd.DataFrame, np.ndarray]:
    """Three behaviours of 30 customers each: best (recent, frequent, big spenders),
    lapsed big spenders, and recent one-off buyers; spend is heavy-tailed."""
    rng = np.random.default_rng(3)
    n = 30
    best = {"recency_days": rng.integers(1, 10, n), "frequency": rng.integers(8, 15, n)}
    lapsed = {"recency_days": rng.integers(300, 400, n), "frequency": rng.integers(6, 12, n)}
    new = {"recency_days": rng.integers(1, 10, n), "frequency": np.ones(n, dtype=int)}
    spend = rng.lognormal(5, 1, 3 * n)
    spend[: 2 * n] *= 20  # best and lapsed spend a lot, one-off buyers little
    spend[0] *= 300  # one giant customer
    frames = [pd.DataFrame(g) for g in (best, lapsed, new)]
    table = pd.concat(frames, ignore_index=True).astype(float)
    table["monetary_total"] = spend
    table["tenure_days"] = np.concatenate([rng.integers(400, 700, 2 * n), rng.integers(1, 12, n)])
    return table, np.repeat([0, 1, 2], n)


def rfm_rules(**change) -> NamingRules:
    """The RFM vocabulary of conf/personas/rfm.yaml, reduced to what the test needs."""
    words = {
        "recency_days": AttributeWords(
            label="recency", better="lower", low="lapsed", high="recent"
        ),
        "frequency": AttributeWords(better="higher", low="one-off", high="frequent"),
        "monetary_total": AttributeWords(better="higher", low="low spend", high="high spend"),
    }
    personas = [
        PersonaRule("Champions", {"recency_days": [4, 5], "frequency": [4, 5]}),
        PersonaRule("At risk", {"recency_days": [1, 2], "frequency": [3, 4, 5]}),
        PersonaRule("New customers", {"recency_days": "high", "frequency": "low"}),
    ]
    settings = {"level_method": "quintile", "name_order": list(words)} | change
    return NamingRules(attributes=words, personas=personas, **settings)


@pytest.mark.parametrize("ids", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_lapsed_customers_are_never_named_like_the_best(ids):
    table, groups = rfm_like_table()
    labels = np.array([ids[g] for g in groups])
    p = profile_segments(table, labels, list(table.columns))
    best, lapsed, new = (name_segments(p, rfm_rules())[i] for i in ids)
    assert (best.persona, lapsed.persona, new.persona) == ("Champions", "At risk", "New customers")
    assert best.name == "Recent, frequent, high spend"
    assert lapsed.name.startswith("Lapsed, ") and "recent" not in lapsed.name.lower()
    assert best.scores["recency_days"] > lapsed.scores["recency_days"]
    # by standard deviations the heavy-tailed spend of the lapsed group reads "mid", by
    # quintiles it is "high": std_diff levels lose the RFM vocabulary on skewed data
    std = name_segments(p, rfm_rules(level_method="std_diff"))
    assert std[ids[1]].levels["monetary_total"] == "mid"
    assert lapsed.levels["monetary_total"] == "high"


@pytest.mark.parametrize("share, outliers", [(0.0, 0), (0.02, 1), (0.3, 1)])
def test_segments_below_the_outlier_share_are_outlier_groups(share, outliers):
    # 99 ordinary customers and one whose spend is 300 times theirs, alone in segment 1
    table = pd.DataFrame({"spend": [10.0] * 50 + [12.0] * 49 + [3600.0]})
    labels = np.array([0] * 50 + [2] * 49 + [1])
    p = profile_segments(table, labels, ["spend"])
    named = name_segments(p, NamingRules(outlier_share=share))
    groups = [d for d in named.values() if d.persona == "Outlier group"]
    assert len(groups) == outliers
    if outliers:
        assert named[1] in groups and named[1].name.startswith("Outlier group: ")
        assert "one by one" in named[1].recommendation
    assert len({d.name for d in named.values()}) == 3


def test_rfm_personas_config_names_the_classic_segments():
    table, groups = rfm_like_table()
    p = profile_segments(table, groups, list(table.columns))
    rfm = compose_settings(["personas=rfm"]).personas
    named = name_segments(p, rfm, ["recency_days", "frequency", "monetary_total"])
    assert [named[i].persona for i in range(3)] == ["Champions", "At risk", "New customers"]
    assert [named[i].name for i in range(3)] == [
        "Recent, frequent, high spend",
        "Lapsed, occasional, high spend",
        "Recent, one-off, low spend",
    ]
    assert "Win them back" in named[1].recommendation
    assert "Onboard" in named[2].recommendation


def test_categories_are_the_text_of_the_values():
    # 1 and "1" read the same in a report: one category; a missing cell is its own
    table = pd.DataFrame({"code": pd.Series([1, "1", None, "b"], dtype=object)})
    p = profile_segments(table, np.array([0, 0, 1, 1]), [], ["code"])
    overall = p.overall_categorical.set_index("value")["count"].to_dict()
    assert overall == {"1": 2, "(missing)": 1, "b": 1}
    shares = p.category_shares("code")
    assert shares.loc[0].to_dict() == {"1": 1.0, "(missing)": 0.0, "b": 0.0}
    assert shares.loc[1].to_dict() == {"1": 0.0, "(missing)": 0.5, "b": 0.5}
