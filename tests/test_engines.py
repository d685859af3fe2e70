"""The clustering engines: KMeans and k-prototypes behind ``model.name``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.config import ConfigError
from custseg.domain.algorithms import (
    _restarts_on_sample,
    batch_kprototypes,
    categorical_blocks,
    refit_for,
)
from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.features import FeatureSet, ModelParams
from test_dvc import Registry, make_clone, run

from conftest import compose_settings

KPROTOTYPES = ModelParams(name="kprototypes", init="Cao", n_init=3, max_iter=50)
MIXED = FeatureSet("mixed", numeric=["income"], categorical=["channel"])


def mixed_table(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups: two share an income level and differ only in channel."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1, 2], [40, 30, 30])
    income = np.where(group == 2, 90.0, 30.0) + rng.normal(0, 2, size=100)
    channel = np.array(["web", "store", "store"])[group]
    return pd.DataFrame({"income": income, "channel": channel}), group


def same_partition(a, b) -> bool:
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist(), strict=True))
    return len(pairs) == len(set(a)) == len(set(b))


def test_categorical_blocks_by_hand():
    assert categorical_blocks(2, [2, 3]) == [(2, 4), (4, 7)]
    assert categorical_blocks(0, []) == []


def test_batch_kprototypes_uses_modes_and_finds_the_groups():
    table, truth = mixed_table()
    result = fit_model(table, MIXED, "standard", ModelParams(n_init=1), 3, categorical_weight=3)
    blocks = categorical_blocks(1, [2])  # income, then channel's two one-hot columns
    labels = batch_kprototypes(result.transformed, 3, blocks, result.scale, seed=0)
    assert same_partition(labels, truth)


def test_kprototypes_centres_are_means_and_scaled_modes():
    table, truth = mixed_table()
    result = fit_model(table, MIXED, "standard", KPROTOTYPES, 3, categorical_weight=3)
    assert same_partition(result.labels, truth)
    onehot = result.centres[:, 1:]
    # each centre's categorical block is its mode, one-hot, times the weight's factor
    np.testing.assert_allclose(np.sort(onehot, axis=1), [[0, result.scale]] * 3)
    numeric = result.transformed[:, 0]
    for c in range(3):
        assert result.centres[c, 0] == pytest.approx(numeric[result.labels == c].mean())


def test_a_kprototypes_fit_is_a_segment_model_with_the_kprototypes_cost():
    """Its description scores like the fit, and the inertia is Huang's cost: squared
    numeric distance plus gamma = 2 * scale**2 per mismatched category."""
    table, _ = mixed_table(seed=1)
    result = fit_model(table, MIXED, "robust", KPROTOTYPES, 3, categorical_weight=1.5)
    model = segment_model(result, "robust", {i: f"s{i}" for i in range(3)})
    np.testing.assert_array_equal(model.predict(table), result.labels)
    assert model.inertia(table) == pytest.approx(result.metrics["inertia"], rel=1e-8)
    centres = result.centres[result.labels]
    numeric = ((result.transformed[:, :1] - centres[:, :1]) ** 2).sum()
    modes = np.asarray(["store", "web"])[centres[:, 1:].argmax(axis=1)]  # categories sorted
    mismatches = (modes != table["channel"].to_numpy()).sum()
    cost = numeric + 2 * result.scale**2 * mismatches
    assert result.metrics["inertia"] == pytest.approx(cost, rel=1e-8)
    assert model.to_dict()["categorical_scale"] == pytest.approx(result.scale)


def test_kprototypes_without_categorical_columns_is_kmeans():
    table, _ = mixed_table()
    numeric = FeatureSet("n", numeric=["income"])
    prototypes = fit_model(table, numeric, "standard", KPROTOTYPES, 2)
    kmeans = fit_model(table, numeric, "standard", ModelParams(n_init=3, max_iter=50), 2)
    np.testing.assert_array_equal(prototypes.labels, kmeans.labels)


@pytest.mark.parametrize("name", ["kmeans", "kprototypes"])
def test_refits_agree_with_the_fit_on_clear_groups(name):
    table, truth = mixed_table()
    params = ModelParams(name=name, init="k-means++" if name == "kmeans" else "Cao")
    result = fit_model(table, MIXED, "standard", params, 3, categorical_weight=3)
    model = segment_model(result, "standard", {i: f"s{i}" for i in range(3)})
    refit = refit_for(params, model, n_init=3)
    assert same_partition(refit(result.transformed, 3, 7), truth)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.init=Cao"], "model.init='Cao'; kmeans accepts"),
        (["model=kprototypes", "model.init=k-means++"], "kprototypes accepts"),
        (["model.name=dbscan"], "model.name='dbscan'"),
        (["preprocess.categorical_weight=-1"], "preprocess.categorical_weight=-1"),
    ],
)
def test_bad_model_settings_give_a_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        compose_settings(overrides)


def test_kprototypes_composes_from_its_config_file():
    settings = compose_settings(["model=kprototypes"])
    assert (settings.model.name, settings.model.init) == ("kprototypes", "Cao")


@pytest.mark.slow
def test_kprototypes_runs_end_to_end(tmp_path):
    """model=kprototypes through sweep, select, report, the registry and predict, as a user
    runs the stages in a fresh clone on the gender-including feature set."""
    repo = make_clone(tmp_path)
    args = ["model=kprototypes", "features=all", "sweep.feature_sets=[all]", "sweep.k_max=6"]
    run(["custseg", "generate"], repo)  # the embedded default table, as `make run` makes it
    run(["custseg-validate"], repo)
    swept = run(["custseg-sweep", *args], repo)
    assert "Sweep finished: 5 runs" in swept.stdout
    run(["custseg-select", *args], repo)
    record = json.loads((repo / "models/selection.json").read_text())
    assert (record["model"], record["feature_set"]) == ("kprototypes", "all")
    assert set(record["trust"]["jaccard"]) == set(record["segment_names"])
    run(["custseg-report", *args], repo)
    page = (repo / "reports/segments.html").read_text(encoding="utf-8")
    assert "k-prototypes (means and modes)" in page
    run(["custseg-publish", *args], repo)
    challenger = Registry(repo).alias("challenger")  # the catalog's champion is k-means
    assert challenger.tags["fingerprint"] == record["fingerprint"]
    scored_path = repo / "scores" / "customers.scored.csv"
    run(
        [
            "custseg-predict",
            "predict.input=data/customers.csv",
            "predict.model_uri=models:/customer-segmentation@challenger",
        ],
        repo,
    )
    scored = pd.read_csv(scored_path)
    assignments = pd.read_csv(repo / "reports/segment_assignments.csv")
    np.testing.assert_array_equal(scored["segment"], assignments["segment"])
    model = json.loads((repo / "models/segmentation.json").read_text())
    assert model["categorical"] == ["gender"] and 0 < model["categorical_scale"] < 1
    assert Path(repo / "sweeps/all/curve.csv").is_file()


def blob_table(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` customers in four well-separated blobs of two numeric columns."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    points = centres[rng.integers(0, 4, n)] + rng.normal(0, 1.0, (n, 2))
    return pd.DataFrame(points, columns=["x", "y"])


XY = FeatureSet(name="xy", numeric=["x", "y"])


@pytest.mark.parametrize("size", [1000, 3000])
def test_restarts_on_a_sample_find_the_segments_of_full_restarts(size):
    table = blob_table(6000)
    full = fit_model(table, XY, "standard", ModelParams(n_init=10), 4)
    sampled = fit_model(table, XY, "standard", ModelParams(n_init=10, restarts_sample_size=size), 4)
    assert same_partition(full.labels, sampled.labels)
    params = ModelParams(n_init=10, restarts_sample_size=size)
    X = table[["x", "y"]].to_numpy()
    assert _restarts_on_sample(X, params, 4) is not None  # the sample path was taken
    assert _restarts_on_sample(X[:size], params, 4) is None
    # refined to convergence on every row: no worse than the full restarts' optimum
    assert sampled.metrics["inertia"] <= full.metrics["inertia"] * (1 + 1e-9)


def test_tables_up_to_the_sample_size_are_fitted_as_before():
    table = blob_table(2000)
    plain = fit_model(table, XY, "standard", ModelParams(n_init=3), 4)
    same = fit_model(table, XY, "standard", ModelParams(n_init=3, restarts_sample_size=2000), 4)
    np.testing.assert_array_equal(plain.centres, same.centres)  # bit for bit


def test_a_tiny_restart_sample_is_refused():
    assert ModelParams(restarts_sample_size=10).problems() == [
        "restarts_sample_size=10: give at least 1000 rows, or null for restarts on every row"
    ]
