"""Names that never lie: names read from the numbers shown, personas kept only while they
fit, and the demo catalog never naming a user's own data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.domain.features import FeatureSet
from custseg.domain.identity import jaccard, transitions
from custseg.domain.profiling.naming import Earlier, name_contradictions, name_segments
from custseg.domain.profiling.profiles import profile_segments
from custseg.domain.profiling.rules import NamingRules, PersonaRule
from custseg.domain.rfm import rfm_table
from custseg.domain.segment_model import SegmentModel
from custseg.storage.transactions import generate_transactions

from conftest import compose_settings, identified
from planted import planted_customers

ROOT = Path(__file__).resolve().parents[1]
INCOME_SPENDING = FeatureSet("income_spending", numeric=["annual_income", "spending_score"])


def demo_catalog() -> SegmentModel:
    """The shipped catalog: the embedded demo's five segments."""
    return SegmentModel.from_json((ROOT / "catalog" / "champion.json").read_text())


def two_segments(high: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Segment 1: ten customers at ``high``, segment 0: ten at 0, on one column ``x``."""
    table = pd.DataFrame({"x": [0.0] * 10 + [high] * 10})
    return table, np.array([0] * 10 + [1] * 10)


def rules(**changes) -> NamingRules:
    return dataclasses.replace(NamingRules(), **changes)


# ------------------------------------------------------------------ by hand


def test_a_name_that_contradicts_its_numbers_is_found():
    table, labels = two_segments(10.0)
    profiles = profile_segments(table, labels, ["x"])
    assert name_contradictions(profiles, {0: "Low x", 1: "High x"}, rules()) == []
    lies = name_contradictions(profiles, {0: "High x", 1: "Low x"}, rules())
    assert len(lies) == 3  # both words, and the high one not above the low one
    assert "segment 0 ('High x') is called high on x" in lies[0]
    # qualifiers, outlier prefixes and unknown phrases are not levels
    said = {0: "Outlier group: Low x (lower x)", 1: "High x, mostly women"}
    assert name_contradictions(profiles, said, rules()) == []


@pytest.mark.parametrize(
    ("fraction_of_threshold", "earlier", "expected"),
    [
        (1.2, None, "High x"),  # clearly high
        (0.9, None, "Mid x"),  # fresh: below the threshold is mid
        (0.9, "high", "High x"),  # survived: kept within the hysteresis band (0.8-1.0)
        (0.7, "high", "Mid x"),  # beyond the band: the numbers win
        (1.1, "mid", "Mid x"),  # mid kept up to 1.2 thresholds
        (1.3, "mid", "High x"),
    ],
)
def test_level_words_keep_within_the_hysteresis_band(fraction_of_threshold, earlier, expected):
    table, labels = two_segments(10.0)
    profiles = profile_segments(table, labels, ["x"])
    d = float(profiles.wide("std_diff").at[1, "x"])
    # the level threshold set so that segment 1 sits at the given fraction of it
    r = rules(level_threshold=d / fraction_of_threshold, level_hysteresis=0.2)
    before = {1: Earlier({"x": earlier})} if earlier else None
    assert name_segments(profiles, r, ["x"], before)[1].name.split(" (")[0] == expected


def test_a_kept_level_word_never_contradicts_the_numbers():
    # earlier "high", but the segment is now below the base: never kept
    table, labels = two_segments(-10.0)
    profiles = profile_segments(table, labels, ["x"])
    r = rules(level_threshold=100.0, level_hysteresis=0.99)
    named = name_segments(profiles, r, ["x"], {1: Earlier({"x": "high"})})
    assert named[1].name.split(" (")[0] == "Mid x"


def persona_rules() -> NamingRules:
    return rules(
        personas=[
            PersonaRule(name="Big", when={"x": "high"}, recommendation="upsell"),
            PersonaRule(name="Middling", when={"x": ["mid", "high"]}, recommendation="keep"),
            PersonaRule(name="Small", when={"x": "low"}, recommendation="discount"),
        ]
    )


def test_a_persona_stays_while_its_rule_holds_and_is_renamed_when_not():
    table, labels = two_segments(10.0)
    profiles = profile_segments(table, labels, ["x"])
    fresh = name_segments(profiles, persona_rules(), ["x"])
    assert (fresh[0].persona, fresh[1].persona) == ("Small", "Big")
    # "Middling" still holds for a high segment: kept with its id, no rename
    kept = name_segments(profiles, persona_rules(), ["x"], {1: Earlier({}, "Middling")})
    assert kept[1].persona == "Middling" and kept[1].was_persona == ""
    assert kept[1].recommendation == "keep"
    # "Small" does not hold for it: derived again, and the report says what it was
    renamed = name_segments(profiles, persona_rules(), ["x"], {1: Earlier({}, "Small")})
    assert renamed[1].persona == "Big" and renamed[1].was_persona == "Small"


def test_two_segments_under_one_persona_are_told_apart():
    table = pd.DataFrame({"x": [0.0] * 10 + [9.0] * 10 + [10.0] * 10})
    labels = np.repeat([0, 1, 2], 10)
    profiles = profile_segments(table, labels, ["x"])
    named = name_segments(profiles, persona_rules(), ["x"])
    assert named[0].persona == "Small"
    assert {named[1].persona, named[2].persona} == {"Big, lower x", "Big, higher x"}
    assert named[2].persona == "Big, higher x"  # the higher one by the numbers
    assert persona_rules().persona_rule(named[2].persona).name == "Big"


# ------------------------------------------------------- planted tables, demo catalog


def three_groups_of_the_issue() -> pd.DataFrame:
    """Three groups of 60 customers, mean incomes about 37, 58 and 113 k$."""
    rng = np.random.default_rng(26)
    centres = [(37.0, 30.0), (58.0, 45.0), (113.0, 70.0)]
    points = np.vstack([c + rng.normal(0, 4.0, (60, 2)) for c in centres])
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, 181),
            "annual_income": points[:, 0],
            "spending_score": np.clip(points[:, 1], 1, 100),
        }
    )


def test_the_issues_three_groups_are_named_from_their_own_numbers():
    """The issue's table: two of three segments were called "High income" after the
    demo's names, one of them at the table's median income."""
    settings = compose_settings()
    table = three_groups_of_the_issue()
    found, profiles = identified(table, 3, demo_catalog(), settings)
    names = found.model.segment_names
    assert sum("High income" in n for n in names.values()) == 1
    by_income = profiles.wide("mean")["annual_income"].sort_values().index
    assert names[by_income[0]].startswith("Low income")
    assert names[by_income[-1]].startswith("High income")
    # an id is kept only where the segment shares most of its customers with the demo's
    overlap = jaccard(transitions(demo_catalog(), found.model, table))
    for seg, shared in found.survived.items():
        assert shared == pytest.approx(overlap.at[seg, seg], abs=1e-6)
        assert shared >= settings.identity.min_overlap
    assert name_contradictions(profiles, names, settings.personas) == []
    personas = list(found.model.segment_personas.values())
    assert len(set(personas)) == len(personas)


@pytest.mark.parametrize("k", [3, 4, 6, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_names_agree_with_the_numbers_on_planted_tables_after_the_demo_catalog(k, seed):
    settings = compose_settings()
    table, _ = planted_customers(k, seed=seed)
    found, profiles = identified(table, k, demo_catalog(), settings)
    names = found.model.segment_names
    assert name_contradictions(profiles, names, settings.personas) == []
    assert len(set(names.values())) == k
    personas = list(found.model.segment_personas.values())
    assert len(set(personas)) == k  # personas distinct within the model
    if found.survived:  # what kept its id shares most of its customers with the demo's
        assert all(j >= settings.identity.min_overlap for j in found.survived.values())
    else:
        assert min(names) == 5


# ------------------------------------------------------------------ RFM logs


LOG_SHAPES = {
    "default": {},
    "mostly one-time buyers": {"orders_per_year": (-1.5, 0.8)},
    "mostly loyal": {"orders_per_year": (2.0, 0.5), "churn_share": 0.05},
}


@pytest.mark.parametrize("shape", list(LOG_SHAPES))
@pytest.mark.parametrize("features", ["rfm_quantile", "rfm_log"])
def test_rfm_names_agree_with_recency_frequency_and_spend(shape, features):
    settings = compose_settings(["pipeline=transactions"])
    fs = settings.feature_catalog[features]
    raw = generate_transactions(1500, seed=11, **LOG_SHAPES[shape])
    log = pd.DataFrame(
        {
            "customer_id": raw["CustomerID"],
            "order_id": raw["OrderID"],
            "date": pd.to_datetime(raw["Date"]),
            "amount": raw["Amount"],
        }
    )
    table = rfm_table(log, "2026-06-30").table.reset_index()
    champion = None
    for k in (5, 6):  # a first model, then a retrain against it as the champion
        found, profiles = identified(table, k, champion, settings, fs)
        names = found.model.segment_names
        assert name_contradictions(profiles, names, settings.personas) == [], shape
        personas = list(found.model.segment_personas.values())
        assert len(set(personas)) == len(personas)
        champion = found.model


# --------------------------------------------------------- review: order, rules, absence


def three_on_x(values: tuple[float, float, float]) -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.DataFrame({"x": np.repeat(values, 10)})
    return table, np.repeat([0, 1, 2], 10)


def test_a_kept_word_never_ranks_a_segment_above_a_higher_one():
    # segments 1 and 2 both just below the threshold: fresh, both are mid; segment 1
    # (the lower) was "high" and is within the band, but keeping it would put a "high"
    # below a "mid": dropped
    table, labels = three_on_x((0.0, 9.6, 10.0))
    profiles = profile_segments(table, labels, ["x"])
    d = profiles.wide("std_diff")["x"]
    r = rules(level_threshold=float(d.at[2]) / 0.95, level_hysteresis=0.2)
    assert d.at[1] / r.level_threshold > 0.8  # inside the band on its own
    named = name_segments(profiles, r, ["x"], {1: Earlier({"x": "high"})})
    assert not named[1].name.startswith("High")
    names = {s: n.name for s, n in named.items()}
    assert name_contradictions(profiles, names, r) == []
    # and the check finds the order problem in names that would have said it
    lying = names | {1: "High x"}
    assert any("does not sit above" in p for p in name_contradictions(profiles, lying, r))


def test_a_named_segment_with_no_customers_is_a_contradiction():
    table, labels = two_segments(10.0)
    profiles = profile_segments(table, labels, ["x"])
    found = name_contradictions(profiles, {0: "Low x", 1: "High x", 7: "High x"}, rules())
    assert found == ["segment 7 ('High x') has no customers in this table"]


def test_of_two_rules_with_one_name_the_one_that_holds_is_read():
    """conf/personas/default.yaml has two "Enthusiast" rules (with and without income)."""
    r = compose_settings().personas
    assert r.persona_rule("Enthusiast").when == {"annual_income": "mid", "spending_score": "high"}
    spending_only = r.persona_rule("Enthusiast", {"spending_score": "high"}, {"spending_score": 5})
    assert spending_only.when == {"spending_score": "high"}
