import numpy as np
import pandas as pd
import pytest

from custseg.domain.clustering import (
    LastEncoding,
    centroids_in_original_units,
    cluster_metrics,
    cluster_sizes,
    encode,
    fit_encoded,
    fit_model,
    silhouette_sample,
    silhouette_values,
)
from custseg.domain.features import FeatureSet, ModelParams

# two tight pairs 10 apart: k=2 splits them, centroids (0, .5) and (10, .5)
SQUARE = pd.DataFrame({"x": [0.0, 0.0, 10.0, 10.0], "y": [0.0, 1.0, 0.0, 1.0]})
XY = FeatureSet("xy", numeric=["x", "y"])


def same_partition(a, b) -> bool:
    """Whether two labelings group the points identically, whatever the cluster ids."""
    a, b = np.asarray(a), np.asarray(b)
    return all(len(set(b[a == label])) == 1 for label in set(a)) and len(set(a)) == len(set(b))


def test_fit_model_hand_computed_metrics():
    result = fit_model(SQUARE, XY, "none", ModelParams(n_init=5, random_state=0), k=2)
    assert same_partition(result.labels, [0, 0, 1, 1])
    m = result.metrics
    assert m["inertia"] == pytest.approx(1.0)  # 4 points, each 0.5 from its centroid
    assert m["davies_bouldin"] == pytest.approx((0.5 + 0.5) / 10)
    # between-cluster dispersion 2*25 + 2*25 = 100 over k-1 = 1; within 1.0 over n-k = 2
    assert m["calinski_harabasz"] == pytest.approx(200.0)
    b = (10 + np.sqrt(101)) / 2  # mean distance to the other pair
    assert m["silhouette"] == pytest.approx(1 - 1 / b)
    assert (m["min_cluster_size"], m["max_cluster_size"]) == (2, 2)
    assert m["n_iter"] >= 1 and m["fit_seconds"] >= 0


def test_fit_model_with_scaling_transforms_space():
    result = fit_model(SQUARE, XY, "minmax", ModelParams(n_init=5, random_state=0), k=2)
    assert result.transformed.min() == 0 and result.transformed.max() == 1
    # scaled: pairs at x=0 and x=1, y in {0, 1}; the split may now go either way, but inertia
    # is the optimum 1.0 for both (each point 0.5 from its centroid)
    assert result.metrics["inertia"] == pytest.approx(1.0)


def test_fit_model_rejects_k_above_row_count():
    with pytest.raises(ValueError, match="k=5 is larger than the number of customers"):
        fit_model(SQUARE, XY, "none", ModelParams(), k=5)


def test_a_kept_encoding_serves_every_k_of_its_feature_set_only():
    """A sweep worker encodes a feature set once: the same table object and settings get
    the kept encoding (read-only, so no fit can change it for the next), anything else a
    new one; fits of either are those of fit_model."""
    encodings = LastEncoding()
    first = encodings(SQUARE, XY, "minmax")
    assert encodings(SQUARE, XY, "minmax") is first
    assert not first.X.flags.writeable
    params = ModelParams(n_init=3, random_state=0)
    for k in (2, 3):
        kept, fresh = fit_encoded(first, params, k), fit_model(SQUARE, XY, "minmax", params, k)
        np.testing.assert_array_equal(kept.centres, fresh.centres)
        assert kept.metrics | {"fit_seconds": 0} == fresh.metrics | {"fit_seconds": 0}
    x_only = FeatureSet("x", numeric=["x"])
    others = [(SQUARE.copy(), XY, "minmax"), (SQUARE, x_only, "minmax"), (SQUARE, XY, "none")]
    for table, feature_set, scaler in others:
        encoding = encodings(table, feature_set, scaler)
        assert encoding is not first and encoding.feature_set == feature_set
        np.testing.assert_array_equal(encoding.X, encode(table, feature_set, scaler).X)


@pytest.mark.parametrize("permutation", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_metrics_do_not_depend_on_cluster_ids(permutation):
    X = np.array([[0.0], [0.1], [5.0], [5.2], [9.0], [9.5]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    relabelled = np.asarray(permutation)[labels]
    assert cluster_metrics(X, labels, 3) == pytest.approx(cluster_metrics(X, relabelled, 3))


def test_metrics_undefined_for_a_single_cluster():
    m = cluster_metrics(np.arange(4.0).reshape(-1, 1), np.zeros(4, dtype=int), 2)
    assert np.isnan(m["silhouette"]) and np.isnan(m["davies_bouldin"])
    assert (m["min_cluster_size"], m["max_cluster_size"]) == (0, 4)


def test_silhouette_sampling_is_seeded_and_close():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (300, 2))])
    labels = np.repeat([0, 1], 300)
    exact = cluster_metrics(X, labels, 2)["silhouette"]
    a = cluster_metrics(X, labels, 2, silhouette_sample_size=200, random_state=1)["silhouette"]
    b = cluster_metrics(X, labels, 2, silhouette_sample_size=200, random_state=1)["silhouette"]
    assert a == b
    assert a == pytest.approx(exact, abs=0.05)


def test_cluster_sizes_counts_empty_clusters():
    np.testing.assert_array_equal(cluster_sizes(np.array([0, 2, 2]), 4), [1, 0, 2, 0])


def test_silhouette_sample_caps_rows():
    X = np.concatenate([np.arange(50.0), 1000 + np.arange(50.0)]).reshape(-1, 1)
    labels = (X[:, 0] >= 1000).astype(int)
    sample = silhouette_sample(X, labels, 10, random_state=0)
    assert sample.values.shape == sample.rows.shape == (10,)
    assert np.all(sample.values > 0.9)  # two far-apart groups


def test_centroids_in_original_units():
    centroids = centroids_in_original_units(SQUARE, np.array([1, 1, 0, 0]), ["x", "y"])
    assert centroids.loc[1].tolist() == [0.0, 0.5]
    assert centroids.loc[0].tolist() == [10.0, 0.5]


@pytest.mark.parametrize("sample_size", [None, 500, 150, 60])
def test_silhouette_sample_mean_is_scikit_learns_sampled_score(sample_size):
    """The fit's silhouette and its diagram come from one sample: the same rows and the
    same mean as ``silhouette_score(..., sample_size, random_state)``."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(c, 1.0, size=(100, 2)) for c in (0.0, 6.0)])
    labels = np.repeat([0, 1], 100)
    sample = silhouette_sample(X, labels, sample_size, random_state=7)
    expected_rows = 200 if sample_size is None else min(sample_size, 200)
    assert len(sample.rows) == len(sample.values) == expected_rows
    assert len(set(sample.rows.tolist())) == expected_rows  # without replacement
    expected = silhouette_score(X, labels, sample_size=sample_size, random_state=7)
    assert np.mean(sample.values) == pytest.approx(expected, abs=1e-12)
    result = fit_model(pd.DataFrame(X, columns=["x", "y"]), XY, "none", ModelParams(), 2, 60)
    assert result.metrics["silhouette"] == pytest.approx(np.mean(result.silhouettes.values))


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]])
def test_silhouette_sample_is_zero_where_the_silhouette_is_undefined(labels):
    """One cluster, or only singletons: the diagram draws zeros, the score stays NaN."""
    sample = silhouette_sample(SQUARE.to_numpy(), np.array(labels), None, random_state=0)
    np.testing.assert_array_equal(sample.values, np.zeros(4))
    metrics = cluster_metrics(SQUARE.to_numpy(), np.array(labels), 4)
    assert np.isnan(metrics["silhouette"])


def test_silhouette_values_hand_computed():
    # SQUARE split in its two pairs: a = 1 (the pair's other point), b = mean of 10 and
    # sqrt(101) (the other pair), the same for every point
    b = (10 + np.sqrt(101)) / 2
    values = silhouette_values(SQUARE.to_numpy(), np.array(["p", "p", "q", "q"]))
    np.testing.assert_allclose(values, np.full(4, 1 - 1 / b), rtol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_silhouette_values_are_scikit_learns(seed):
    """Random tables with singletons, duplicated rows and shuffled ids of any type."""
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(3, 400)), int(rng.integers(1, 6)), int(rng.integers(2, 8))
    X = np.round(rng.normal(size=(n, d)) * rng.uniform(0.1, 100), int(rng.integers(0, 3)))
    labels = rng.integers(0, min(k, n - 1), n)
    labels[rng.integers(0, n)] = k + 5  # a singleton (or a new cluster id)
    if len(np.unique(labels)) < 2:
        labels[0] = 1 - labels[1]
    ids = np.array(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"])
    named = ids[rng.permutation(len(ids))][np.unique(labels, return_inverse=True)[1]]
    np.testing.assert_allclose(
        silhouette_values(X, named), silhouette_samples(X, labels), rtol=0, atol=1e-12
    )
