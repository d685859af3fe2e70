"""The Spark engine (engine=spark) on a real local[2] SparkSession, started once per test
session, against the scikit-learn engine on the Mall table (real MLflow store in tmp_path)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from custseg.config import EngineConfig, Settings
from custseg.domain.agreement import adjusted_rand
from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.features import categorical_scale
from custseg.domain.identity import compare_models
from custseg.storage.data import (
    generate_customers,
    load_customers,
    write_csv_atomic,
    write_validated,
)
from custseg.storage.outputs import StaleInputError, read_sweep_model, write_segment_model

from conftest import PROJECT_ROOT, SPARK_LOCAL, compose_settings

#: the test session's Spark (conftest's ``spark`` fixture)
LOCAL = SPARK_LOCAL
SPARK_OVERRIDES = [
    "engine=spark",
    f"engine.master='{LOCAL.master}'",
    f"engine.driver_memory={LOCAL.driver_memory}",
    f"engine.partitions={LOCAL.partitions}",
]
#: fewer restarts than the default 10 (each is a Spark job here): the same for both engines
SWEEP = ["sweep.feature_sets=[income_spending]", "features=income_spending", "model.n_init=3"]


def assert_same_partition(model_rows: np.ndarray, spark_rows: np.ndarray) -> None:
    """Every customer in the converted model's segment is in one Spark cluster and back.

    Spark's own clusters come from a second fit: its ids may come out permuted (k-means||
    merges partial sums in task completion order, so under load the centres' order can
    differ), never the partition."""
    pairs = set(zip(model_rows.tolist(), spark_rows.tolist(), strict=True))
    assert len(pairs) == len(set(model_rows.tolist())) == len(set(spark_rows.tolist()))


def validated_settings(seed_csv: Path, tmp_path: Path, overrides: list[str]) -> Settings:
    """Settings on the Mall table whose validated Parquet is written below ``tmp_path``
    (what custseg-validate writes, without its metrics files)."""
    settings = compose_settings(
        [
            f"data.path={seed_csv}",
            f"data.validated={tmp_path / 'validated' / 'customers.parquet'}",
            *overrides,
        ]
    )
    if not Path(settings.data.validated).is_file():
        table, info = load_customers(settings.data)
        write_validated(table, info, settings.data)
    return settings


@pytest.mark.slow
def test_spark_sweep_agrees_with_sklearn_on_k_and_segments(
    spark, seed_csv, tmp_path, tracking_overrides, monkeypatch
):
    from custseg.backends.spark.engine import SPARK_SILHOUETTE
    from custseg.pipeline.publish import run_publish
    from custseg.pipeline.report import run_report
    from custseg.pipeline.select import run_select
    from custseg.pipeline.sweep import run_sweep

    outcomes, models, settings_of = {}, {}, {}
    for engine, extra in [("sklearn", []), ("spark", SPARK_OVERRIDES)]:
        out = tmp_path / f"sweeps-{engine}"
        settings = validated_settings(
            seed_csv, tmp_path, [*tracking_overrides, *SWEEP, *extra, f"sweep.output_dir={out}"]
        )
        start = time.perf_counter()
        settings_of[engine] = settings
        outcomes[engine] = outcome = run_sweep(settings, progress=False)
        print(f"{engine} sweep: {time.perf_counter() - start:.1f} s, k={outcome.selected_k}")
        table, info = load_customers(settings.data)
        fitted_with = settings.fitted_with(info.sha256)
        models[engine] = read_sweep_model(out, "income_spending", outcome.selected_k, fitted_with)[
            0
        ]

    assert outcomes["spark"].selected_k == outcomes["sklearn"].selected_k == 5
    ari = adjusted_rand(models["sklearn"].nearest(table)[0], models["spark"].nearest(table)[0])
    print(f"ARI spark vs sklearn at k=5: {ari:.4f}")
    assert ari >= 0.95

    client = MlflowClient()
    spark_runs = client.search_runs([outcomes["spark"].experiment_id], max_results=100)
    by_engine: dict[str, list] = {}
    for run in spark_runs:
        by_engine.setdefault(run.data.params.get("engine"), []).append(run)
    # both sweeps, parent and 9 children each, every run says its engine
    assert {e: len(r) for e, r in by_engine.items()} == {"sklearn": 10, "spark": 10}
    spark_children = [r for r in by_engine["spark"] if "mlflow.parentRunId" in r.data.tags]
    assert len(spark_children) == 9
    for run in spark_children:
        assert run.data.params["engine.partitions"] == "4"
        # Spark's silhouette is its own metric, never the scikit-learn one
        assert 0 < run.data.metrics["silhouette"] < run.data.metrics[SPARK_SILHOUETTE] < 1
    assert all(SPARK_SILHOUETTE not in r.data.metrics for r in by_engine["sklearn"])

    # custseg-select takes the Spark sweep's model (its inertia on the table, computed in
    # Spark, is the curve's) and compares it in Spark with the champion of the catalog
    monkeypatch.chdir(tmp_path)  # select writes models/ and metrics/ where it runs
    # the champion: the scikit-learn sweep's k=6 (its k=5 can be the Spark one in canonical form)
    champion = read_sweep_model(
        tmp_path / "sweeps-sklearn",
        "income_spending",
        6,
        settings_of["sklearn"].fitted_with(info.sha256),
    )[0]
    write_segment_model(champion, settings_of["spark"].catalog.path)
    selected = run_select(settings_of["spark"])
    # the Spark sweep's model, its segments matched to the champion's ids
    assert sorted(selected.model.centroids) == sorted(models["spark"].centroids)
    identity = selected.changes.pop("identity")  # select's own record of the match
    assert selected.changes == compare_models(champion, selected.model, table)
    kept = {s for s, info in selected.changes["segments"].items() if info["status"] == "kept"}
    assert identity["carried"] and set(identity["overlap"]) == kept
    assert selected.changes["reference"] == "different"

    # custseg-report profiles in Spark and Spark writes the assignments: the report of
    # the table in memory, file for file (200 customers: the plots' sample is every one)
    reports = {}
    for engine in ("spark", "sklearn"):
        out = tmp_path / "reports" if engine == "spark" else tmp_path / "reports-sklearn"
        report = dataclasses.replace(
            settings_of["spark"].report,
            output_dir=str(out),
            metrics_file=str(out / "metrics.json"),
        )
        configured = dataclasses.replace(
            settings_of["spark"], report=report, engine=settings_of[engine].engine
        )
        outcome = run_report(configured)
        reports[engine] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert reports["spark"] == reports["sklearn"]
    assert len(reports["spark"]) == 5 and len(outcome.labels) == len(table)

    # custseg-publish scores in Spark too: it registers the model and, as it differs from
    # the catalog's, the catalog's champion, each with the Spark sweep's kind of scores
    published = run_publish(settings_of["spark"])
    assert published.registered.created
    assert published.aliases == {"challenger": "1", "champion": "2"}
    assert client.get_run(published.registered.version.run_id).data.params["engine"] == "spark"
    for version, model in [("1", selected.model), ("2", champion)]:
        run_id = client.get_model_version("customer-segmentation", version).run_id
        run = client.get_run(run_id)
        assert run.data.params["n_rows"] == "200"
        assert run.data.metrics["inertia"] == pytest.approx(model.inertia(table), rel=1e-12)
        sizes = np.bincount(model.nearest(table)[0], minlength=model.k)
        assert run.data.metrics["min_cluster_size"] == sizes.min()


@pytest.mark.slow
@pytest.mark.parametrize(
    "features, weight",
    [("income_spending", 1.0), ("all", 1.0), ("all", 2.5)],
    ids=["numeric", "gender", "gender-weight-2.5"],
)
def test_the_spark_segment_model_scores_as_spark_does(spark, seed_csv, tmp_path, features, weight):
    from custseg.backends.spark.engine import fit_spark, read_validated, spark_segments

    restarts = 3 if weight == 1.0 else 10  # k-means|| needs more to near the optimum
    overrides = [*SPARK_OVERRIDES, *SWEEP, f"features={features}", f"model.n_init={restarts}"]
    settings = validated_settings(seed_csv, tmp_path, overrides)
    data = read_validated(settings.data, settings.engine, 10_000, seed=42)
    table, _ = load_customers(settings.data)
    assert data.sample.shape == table.shape and data.info.n_rows == 200  # all, in order
    assert (data.sample["customer_id"].astype(str) == table["customer_id"].astype(str)).all()

    fs = settings.features
    start = time.perf_counter()
    result = fit_spark(data, fs, 5, settings.model, categorical_weight=weight)
    print(f"Spark fit k=5 ({restarts} restarts) and scores: {time.perf_counter() - start:.1f} s")
    model = segment_model(result, "standard", {})
    own = spark_segments(data, fs, 5, settings.model, categorical_weight=weight)
    assert_same_partition(model.nearest(own[fs.columns])[0], own["spark_cluster"].to_numpy())

    # the model is in the project's standard convention (population std, ddof=0), one-hot
    # columns times categorical_scale: scikit-learn's encoding of the same table, so its
    # inertia is the one of scikit-learn's space
    values = table[fs.numeric].to_numpy(dtype=float)
    np.testing.assert_allclose(model.center, values.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(model.scale, values.std(axis=0, ddof=0), rtol=1e-9)
    scale = categorical_scale(table, fs, "standard", weight)
    assert result.scale == pytest.approx(scale, rel=1e-12)
    reference = fit_model(table, fs, "standard", settings.model, 5, categorical_weight=weight)
    np.testing.assert_allclose(
        result.preprocess.transform(table), reference.preprocess.transform(table), atol=1e-12
    )
    rows, distances = model.nearest(table)
    assert result.metrics["inertia"] == pytest.approx(distances.sum(), rel=1e-9)
    ari = adjusted_rand(reference.labels, rows)
    inertia = result.metrics["inertia"], reference.metrics["inertia"]
    print(f"ARI {ari:.3f}, inertia Spark {inertia[0]:.2f}, scikit-learn {inertia[1]:.2f}")
    if weight == 1.0:
        assert ari >= 0.95
    else:  # gender weighs more: k-means|| and k-means++ stop in other optima
        assert inertia[0] <= 1.03 * inertia[1]
    assert result.metrics["min_cluster_size"] == np.bincount(rows).min()


def test_a_stale_validated_table_is_named_before_spark_starts(seed_csv, tmp_path):
    pytest.importorskip("pyspark")
    from custseg.backends.spark.engine import read_validated

    settings = compose_settings(
        [f"data.path={seed_csv}", f"data.validated={tmp_path / 'absent.parquet'}"]
    )
    with pytest.raises(StaleInputError, match="run custseg-validate first"):
        read_validated(settings.data, LOCAL, 100, seed=0)


def test_the_engine_is_chosen_once_by_name():
    """The names config accepts, the backends they open and the files of conf/engine/ are
    one set; the default is scikit-learn's."""
    from custseg import config
    from custseg.backends import backend_of

    files = {path.stem for path in (PROJECT_ROOT / "conf" / "engine").glob("*.yaml")}
    backends = {backend_of(EngineConfig(name=name)).name for name in config.ENGINES}
    assert backends == set(config.ENGINES) == files == {"sklearn", "spark"}
    assert compose_settings().engine.name == "sklearn"


def test_session_settings_keep_the_quiet_driver_log_and_the_users_java_options():
    from custseg.backends.spark.engine import session_settings

    java = "spark.driver.extraJavaOptions"
    default = session_settings(LOCAL)
    assert "-Dlog4j2.configurationFile=" in default[java]
    assert (default["spark.driver.memory"], default["spark.sql.shuffle.partitions"]) == ("1g", "4")
    conf = {java: "-Dsite.proxy=on", "spark.executor.memory": "8g"}
    mine = session_settings(dataclasses.replace(LOCAL, conf=conf))
    assert mine[java] == f"{default[java]} -Dsite.proxy=on"  # appended, not replaced
    assert mine["spark.executor.memory"] == "8g"


@pytest.mark.slow
def test_a_larger_table_gets_a_seeded_driver_sample_in_row_order(spark, tmp_path):
    from custseg.backends.spark.engine import fit_spark, read_validated
    from custseg.pipeline.sweep import trusted_fit

    csv = tmp_path / "customers.csv"
    write_csv_atomic(generate_customers(3000, seed=3), csv)
    settings = validated_settings(csv, tmp_path, [*SPARK_OVERRIDES, *SWEEP])
    table, _ = load_customers(settings.data)
    first = read_validated(settings.data, settings.engine, 500, seed=42)
    again = read_validated(settings.data, settings.engine, 500, seed=42)
    other = read_validated(settings.data, settings.engine, 500, seed=7)

    ids = first.sample["customer_id"].astype(str)
    assert len(first.sample) == 500 and ids.is_unique and first.info.n_rows == 3000
    assert ids.tolist() == again.sample["customer_id"].astype(str).tolist()  # same rows
    assert ids.tolist() != other.sample["customer_id"].astype(str).tolist()  # seeded
    position = table["customer_id"].astype(str).reset_index(drop=True)
    rows = position[position.isin(set(ids))].index
    assert (np.diff(rows) > 0).all() and position[rows].tolist() == ids.tolist()  # row order

    # Spark's counts are over every customer; the driver's criteria over the sample
    result = fit_spark(first, settings.features, 4, settings.model)
    assert len(result.labels) == 500
    assert result.metrics["max_cluster_size"] >= 3000 / 4  # counted over 3000, not 500
    # ... and so are the sizes the fit's run plots count, by the segment ids of its model
    # (a cluster's customers in the sample are in the same segment)
    fit, ids, _ = trusted_fit(result, first.sample, settings)
    assert sum(fit.sizes.values()) == 3000 and set(fit.sizes) <= set(fit.model.segments)
    assert result.metrics["max_cluster_size"] == max(fit.sizes.values())
    for cluster, size in enumerate(result.sizes):
        (segment,) = set(ids[result.labels == cluster].tolist())
        assert fit.sizes[segment] == size


@pytest.mark.slow
def test_make_run_engine_spark_on_a_fresh_clone(spark, tmp_path):
    """Issue 12: `make run ENGINE=spark` on a fresh clone sets the engine where DVC tracks
    it, sweeps on Spark, registers a champion whose runs say engine=spark, and writes the
    report. The sweep is a user's smaller one (k = 2..3 of a numeric and a mixed set,
    three restarts, as the other Spark sweeps here): Spark's per-job latency makes each
    restart about a second on 200 rows."""
    import mlflow
    import mlflow.spark
    import pandas as pd
    from mlflow import MlflowClient

    from custseg.backends.spark.engine import to_pandas
    from test_dvc import VENV_BIN, Registry, fingerprint, git_status, make_clone, run

    repo = make_clone(tmp_path)
    sweep_conf = repo / "conf" / "sweep" / "default.yaml"
    text = sweep_conf.read_text(encoding="utf-8")
    text = text.replace("k_max: 10", "k_max: 3").replace(
        "feature_sets: [income_spending, age_spending, age_income_spending, all]",
        "feature_sets: [income_spending, all]",
    )
    assert "k_max: 3" in text and "feature_sets: [income_spending, all]" in text
    sweep_conf.write_text(text, encoding="utf-8")
    kmeans_conf = repo / "conf" / "model" / "kmeans.yaml"
    text = kmeans_conf.read_text(encoding="utf-8")
    assert "\nn_init: 10\n" in text
    kmeans_conf.write_text(text.replace("\nn_init: 10\n", "\nn_init: 3\n"), encoding="utf-8")
    run(["git", "commit", "-qam", "a smaller sweep"], repo)
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    for stamp in (".installed", ".installed-spark"):  # installed: make must not reinstall
        if (repo / ".venv" / stamp).exists():
            os.utime(repo / ".venv" / stamp)

    made = run(["make", "run", "ENGINE=spark"], repo)
    # Spark's start-up chatter (log4j's profile, WARN lines) stays out of the user's way
    printed = made.stdout + made.stderr
    for chatter in ("log4j", " WARN ", "Setting default log level"):
        assert chatter not in printed, printed[-3000:]

    # the engine is a param in conf/config.yaml, changed where git and DVC see it; the
    # rest of the change is the pipeline's outputs (the lock, git-tracked metrics)
    changed = {line[3:] for line in git_status(repo).splitlines()}
    assert {"conf/config.yaml", "dvc.lock"} <= changed, changed
    assert all(
        p.startswith(("conf/config.yaml", "dvc.lock", "metrics/", "reports/")) for p in changed
    )
    assert "\n  - engine: spark\n" in (repo / "conf" / "config.yaml").read_text()
    # Spark validated the data (its table is a directory) to the same metrics and profile
    assert (repo / "validated" / "customers.parquet" / "_custseg.json").is_file()
    assert not {"metrics/data.json", "metrics/data_profile.json"} & changed
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo).stdout
    # the committed catalog's model stays @champion (nothing moves it but `custseg
    # promote`); the Spark model is @challenger, every run that says its engine says spark
    registry = Registry(repo)
    champion, challenger = registry.alias("champion"), registry.alias("challenger")
    assert champion.tags["fingerprint"] == fingerprint(repo / "catalog/champion.json")
    assert challenger.tags["fingerprint"] == fingerprint(repo / "models/segmentation.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    assert client.get_run(challenger.run_id).data.params["engine"] == "spark"
    runs = client.search_runs([client.get_run(challenger.run_id).info.experiment_id])
    engines = [r.data.params["engine"] for r in runs if "engine" in r.data.params]
    assert len(engines) >= 6 and set(engines) == {"spark"}  # sweep parent, 4 fits, final
    # the registered Spark model scores in Spark as its light pyfunc scores without it
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    try:
        version_uri = f"models:/{challenger.name}/{challenger.version}"
        table = spark.read.parquet(str(repo / "validated" / "customers.parquet"))
        in_spark = to_pandas(mlflow.spark.load_model(version_uri).transform(table))
        in_pandas = pd.DataFrame(mlflow.pyfunc.load_model(version_uri).predict(to_pandas(table)))
    finally:
        mlflow.set_tracking_uri(previous)
    pd.testing.assert_frame_equal(
        in_spark[["segment", "segment_name"]], in_pandas[["segment", "segment_name"]],
        check_dtype=False,
    )  # fmt: skip
    report = (repo / "reports" / "segments.html").read_text(encoding="utf-8")
    selection = json.loads((repo / "models" / "selection.json").read_text(encoding="utf-8"))
    assert all(name in report for name in selection["segment_names"].values())

    # promoted, the Spark model is the champion (--force: the gate refuses a k <= 3 model,
    # whose silhouette is below the reference k = 5's, as it should)
    run(["custseg", "promote", "--version", str(challenger.version), "--force"], repo)
    assert registry.alias("champion").version == challenger.version
    assert fingerprint(repo / "catalog/champion.json") == challenger.tags["fingerprint"]


def rows_of_spark_and_model(data, settings, k: int):
    """Spark's own cluster of every customer and the converted model's nearest centroid."""
    from custseg.backends.spark.engine import fit_spark, spark_segments

    fs = settings.features
    result = fit_spark(data, fs, k, settings.model)
    model = segment_model(result, "standard", {})
    own = spark_segments(data, fs, k, settings.model)
    return model, own["spark_cluster"].to_numpy(), model.nearest(own[fs.columns])[0]


@pytest.mark.slow
def test_a_category_the_driver_sample_lacks_is_encoded_as_in_the_whole_table(spark, tmp_path):
    """The one-hot columns come from the whole table's categories, not the sample's: a
    region on one customer outside the sample still has its column, and every customer
    gets Spark's cluster."""
    from custseg.backends.spark.engine import read_validated

    customers = generate_customers(600, seed=4)
    customers["Region"] = np.where(np.arange(600) % 2 == 0, "north", "south")
    path = tmp_path / "customers.csv"
    overrides = [
        f"data.path={path}",
        f"data.validated={tmp_path / 'validated.parquet'}",
        "+data.columns.region={source: Region, kind: categorical}",
        "features=all",
        "features.categorical=[gender,region]",
        "model.n_init=2",
        *SPARK_OVERRIDES,
    ]
    settings = compose_settings(overrides)

    def validated_sample():
        write_csv_atomic(customers, path)
        write_validated(*load_customers(settings.data), settings.data)
        return read_validated(settings.data, settings.engine, 50, seed=0)

    outside = sorted(
        set(customers["CustomerID"].astype(str)) - set(validated_sample().sample["customer_id"])
    )
    customers.loc[customers["CustomerID"].astype(str) == outside[0], "Region"] = "island"
    data = validated_sample()  # the same rows: the sample depends on row numbers only
    assert "island" not in set(data.sample["region"]) and len(data.sample) == 50

    model, spark_rows, model_rows = rows_of_spark_and_model(data, settings, 4)
    assert model.categories["region"] == ["island", "north", "south"]
    assert_same_partition(model_rows, spark_rows)


@pytest.mark.slow
def test_a_categorical_only_feature_set_fits_on_spark(spark, seed_csv, tmp_path):
    """No numeric column: the one-hot columns alone, k = 2 splits the genders."""
    from custseg.backends.spark.engine import read_validated

    overrides = [
        *SPARK_OVERRIDES,
        "features=all",
        "features.name=gender_only",
        "features.numeric=[]",
        "features.categorical=[gender]",
        "model.n_init=2",
    ]
    settings = validated_settings(seed_csv, tmp_path, overrides)
    data = read_validated(settings.data, settings.engine, 10_000, seed=42)
    model, spark_rows, model_rows = rows_of_spark_and_model(data, settings, 2)
    assert_same_partition(model_rows, spark_rows)
    genders = data.sample["gender"].to_numpy()
    assert adjusted_rand(genders, model_rows) == pytest.approx(1.0)
