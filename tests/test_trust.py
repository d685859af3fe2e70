"""Stability, the gap statistic, fit health, and the default choice of k on planted groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.backends.parallel import fit_limits
from custseg.domain.algorithms import make_kmeans
from custseg.domain.clustering import fit_model, fit_warnings
from custseg.domain.features import FeatureSet, ModelParams
from custseg.domain.selection import select_k
from custseg.domain.stability import (
    TrustParams,
    best_jaccard,
    sample_rows,
    seed_agreement,
    trust,
    within_ss,
)
from custseg.pipeline.sweep import fit_and_trust

from conftest import compose_settings
from planted import planted_customers

FAST = TrustParams(resamples=10, references=5)


def kmeans(n_init: int):
    """A refit by KMeans with ``n_init`` k-means++ starts (the engine of the default model)."""
    return lambda X, k, seed: (
        make_kmeans(ModelParams(n_init=n_init, random_state=seed), k).fit(X).labels_
    )


def trust_kmeans(X, labels, k, params):
    """:func:`trust` with KMeans refits of ``params.n_init`` starts."""
    return trust(X, labels, k, params, kmeans(params.n_init))


def blobs(
    k: int, per: int = 60, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` tight groups on a circle of radius 10 and each row's group."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(k) / k
    centres = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    labels = np.repeat(np.arange(k), per)
    return centres[labels] + spread * rng.normal(size=(k * per, 2)), labels


def test_best_jaccard_by_hand():
    reference = np.array([0, 0, 0, 0, 1, 1])
    other = np.array([5, 5, 5, 7, 7, 7])
    # cluster 0 = {0,1,2,3}: best is {0,1,2} -> 3/4; cluster 1 = {4,5}: {3,4,5} -> 2/3
    np.testing.assert_allclose(best_jaccard(reference, other, 2), [3 / 4, 2 / 3])
    # a cluster with no member among these customers has no Jaccard
    assert np.isnan(best_jaccard(reference, other, 3)[2])


def test_within_ss_by_hand():
    X = np.array([[0.0], [2.0], [10.0], [14.0]])
    assert within_ss(X, np.array([0, 0, 1, 1])) == pytest.approx(1 + 1 + 4 + 4)


def test_sample_rows_is_bounded_seeded_and_sorted():
    rows = sample_rows(10_000, 500, random_state=3)
    assert len(rows) == 500 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_rows(10_000, 500, random_state=3))
    np.testing.assert_array_equal(sample_rows(40, 500, random_state=3), np.arange(40))


def test_separated_groups_are_stable_at_their_k():
    X, truth = blobs(4)
    found = trust_kmeans(X, truth, 4, FAST)
    assert found.stability == pytest.approx(1.0)
    np.testing.assert_allclose(found.jaccard, 1.0)
    assert found.min_jaccard == pytest.approx(1.0)


def test_noise_split_in_many_clusters_is_unstable():
    X = np.random.default_rng(0).uniform(size=(300, 2))
    labels = kmeans(3)(X, 8, 0)
    found = trust_kmeans(X, labels, 8, FAST)
    assert found.stability < 0.9
    assert found.min_jaccard < 0.75


def test_stability_does_not_depend_on_cluster_ids():
    """Renaming the clusters renames the per-cluster Jaccards and changes nothing else."""
    X, truth = blobs(3, spread=3.0)
    permutation = np.array([2, 0, 1])
    plain, renamed = trust_kmeans(X, truth, 3, FAST), trust_kmeans(X, permutation[truth], 3, FAST)
    assert renamed.stability == pytest.approx(plain.stability)
    np.testing.assert_allclose(renamed.jaccard[permutation], plain.jaccard)


@pytest.mark.parametrize("resampling", ["bootstrap", "subsample"])
def test_resampling_schemes_agree_on_clear_groups(resampling):
    X, truth = blobs(3)
    params = TrustParams(resamples=5, references=0, resampling=resampling)
    found = trust_kmeans(X, truth, 3, params)
    assert found.stability == pytest.approx(1.0)
    assert np.isnan(found.gap)  # references=0 turns the gap off


def test_fewer_distinct_customers_than_k_have_no_stability_or_gap():
    """Duplicates only: k clusters of identical points would look perfectly stable and
    give a huge gap (log of ~0); both are undefined instead."""
    X = np.repeat([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]], 30, axis=0)
    labels = np.repeat([0, 1, 2], 30)
    found = trust_kmeans(X, labels, 3, FAST)
    assert np.isnan(found.stability) and np.isnan(found.gap) and found.resamples == 0
    assert np.isfinite(trust_kmeans(X, labels[:] % 2, 2, FAST).gap)  # k below the distinct rows


def test_the_resamples_used_are_counted():
    """With k near the number of customers, bootstraps with fewer distinct customers than
    k are skipped; the count says how many the stability stands on."""
    X, _ = blobs(2, per=6, spread=1.0)
    labels = kmeans(1)(X, 9, 0)
    found = trust_kmeans(X, labels, 9, TrustParams(resamples=30, references=0))
    assert 0 <= found.resamples < 30
    assert trust_kmeans(*blobs(3), 3, FAST).resamples == FAST.resamples


def test_an_empty_cluster_is_flagged_not_fatal():
    """Two distinct customers and k=3: KMeans leaves a cluster empty; the fit is named,
    flagged and has no stability, and the sweep goes on."""
    settings = compose_settings()
    table = pd.DataFrame(
        {
            "customer_id": range(40),
            "annual_income": [20.0, 90.0] * 20,
            "spending_score": [10.0, 80.0] * 20,
        }
    )
    with fit_limits(), pytest.warns(Warning):  # scikit-learn: fewer distinct clusters than k
        fit, ids, _ = fit_and_trust(table, settings.features, 3, settings)
    assert fit.warnings == ["an empty cluster"]
    assert "Empty segment" in " ".join(fit.model.names)
    assert len(set(ids)) == 2 and np.isnan(fit.metrics["stability"])


def test_turned_off_trust_is_nan():
    X, truth = blobs(2)
    found = trust_kmeans(X, truth, 2, TrustParams(resamples=0, references=0))
    assert np.isnan(found.stability) and np.isnan(found.gap)
    assert np.isnan(found.jaccard).all() and np.isnan(found.min_jaccard)


def test_gap_peaks_at_the_planted_k_and_is_seeded():
    X, truth = blobs(3)
    refit = kmeans(3)
    gaps = {k: trust_kmeans(X, refit(X, k, 0), k, FAST).gap for k in (2, 3, 4)}
    assert max(gaps, key=gaps.get) == 3
    again = trust_kmeans(X, refit(X, 3, 0), 3, FAST)
    assert again.gap == gaps[3]


def test_seed_agreement_is_one_for_clear_groups_and_lower_for_noise():
    X, truth = blobs(3)
    assert seed_agreement(X, truth, 3, [1, 2], kmeans(1)) == pytest.approx([1.0, 1.0])
    noise = np.random.default_rng(1).uniform(size=(300, 2))
    labels = kmeans(1)(noise, 9, 0)
    assert min(seed_agreement(noise, labels, 9, [1, 2, 3], kmeans(1))) < 0.95


@pytest.mark.parametrize(
    "metrics, expected",
    [
        ({"n_iter": 12, "min_cluster_size": 20}, []),
        ({"n_iter": 300, "min_cluster_size": 20}, ["stopped at max_iter=300 before converging"]),
        ({"n_iter": 3, "min_cluster_size": 1}, ["a cluster of a single customer"]),
        ({"n_iter": 3, "min_cluster_size": 0}, ["an empty cluster"]),
    ],
)
def test_fit_warnings(metrics, expected):
    assert fit_warnings(metrics, max_iter=300) == expected


def test_a_fit_cut_short_by_max_iter_is_flagged():
    table, _ = planted_customers(5, seed=0)
    fs = FeatureSet("income_spending", ["annual_income", "spending_score"], [])
    params = ModelParams(max_iter=1, n_init=1, init="random")
    result = fit_model(table, fs, "standard", params, 5)
    assert fit_warnings(result.metrics, max_iter=1) == ["stopped at max_iter=1 before converging"]


def planted_choice(k: int, seed: int) -> tuple[int, dict]:
    """k chosen by the default config for a planted table, fitted as the sweep fits."""
    settings = compose_settings()
    table, _ = planted_customers(k, seed)
    rows = []
    with fit_limits():
        for candidate in settings.sweep.ks:
            fit, _, _ = fit_and_trust(table, settings.features, candidate, settings)
            rows.append({"k": candidate, **fit.metrics})
    selection = select_k(pd.DataFrame(rows), settings.selection.method)
    return selection.k, selection.picks


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", range(2, 9))
def test_the_default_method_finds_the_planted_number_of_groups(k, seed):
    chosen, picks = planted_choice(k, seed)
    assert chosen == k, f"planted {k}, chose {chosen}; criteria picked {picks}"


def test_the_elbow_alone_misses_planted_groups_the_default_finds():
    """The case that motivated the consensus: 7 unequal groups, where the knee is at 5."""
    chosen, picks = planted_choice(7, seed=0)
    assert chosen == 7
    assert picks["elbow"] != 7
