"""A segment model scoring in Spark (custseg.backends.spark.scoring) against its numpy scoring
(the pyfunc's), on a real local[2] SparkSession."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.segment_model import SEGMENT_COLUMN, SEGMENT_NAME_COLUMN, SegmentModel
from custseg.storage.data import load_customers

from conftest import compose_settings


def fitted(seed_csv, overrides: list[str]) -> tuple[SegmentModel, pd.DataFrame]:
    """The scikit-learn model of the Mall table at k = 5 under ``overrides``, and the table."""
    settings = compose_settings([f"data.path={seed_csv}", *overrides])
    table, _ = load_customers(settings.data)
    preprocess = settings.preprocess
    result = fit_model(
        table, settings.features, preprocess.scaler, settings.model, 5,
        categorical_weight=preprocess.categorical_weight,
    )  # fmt: skip
    names = {i: f"segment {i}" for i in range(5)}
    return segment_model(result, preprocess.scaler, names), table


def random_model(n_numeric: int, categories: list[str], k: int, seed: int) -> SegmentModel:
    """A model of ``n_numeric`` numeric columns and one categorical one, random centres."""
    rng = np.random.default_rng(seed)
    width = n_numeric + len(categories)
    return SegmentModel(
        feature_set="random",
        numeric=[f"x{i}" for i in range(n_numeric)],
        categorical=["kind"] if categories else [],
        center=rng.normal(size=n_numeric).tolist(),
        scale=rng.uniform(0.5, 2, size=n_numeric).tolist(),
        categories={"kind": categories} if categories else {},
        centroids=rng.normal(size=(k, width)).tolist(),
        segments=[10 * (i + 1) for i in range(k)],  # ids that are not positions
        names=[f"group {i}" for i in range(k)],
        categorical_scale=0.7,
    )


def random_table(model: SegmentModel, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(n, len(model.numeric))), columns=model.numeric)
    for column in model.categorical:
        table[column] = rng.choice([*model.categories[column], "unseen"], size=n)
    return table


def spark_distances(spark, model: SegmentModel, table: pd.DataFrame) -> np.ndarray:
    from pyspark.sql import functions as F

    from custseg.backends.spark.sql import distance_sql

    frame = spark.createDataFrame(table)
    rows = frame.select(F.array(*map(F.expr, distance_sql(model))).alias("d")).collect()
    return np.array([r["d"] for r in rows])


def spark_scores(spark, model: SegmentModel, table: pd.DataFrame) -> pd.DataFrame:
    from custseg.backends.spark.engine import to_pandas
    from custseg.backends.spark.scoring import score_frame

    scored = to_pandas(score_frame(model, spark.createDataFrame(table)))
    return scored[[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]]


@pytest.mark.parametrize(
    "overrides",
    [
        ["features=income_spending"],
        ["features=all"],
        ["features=all", "preprocess.categorical_weight=2.5"],
        ["features=age_income_spending", "preprocess.scaler=minmax"],
    ],
    ids=["numeric", "gender", "gender-weight-2.5", "minmax"],
)
def test_spark_scores_every_customer_as_the_model_does(spark, seed_csv, overrides):
    model, table = fitted(seed_csv, overrides)
    expected = model.score(table)
    pd.testing.assert_frame_equal(spark_scores(spark, model, table), expected, check_dtype=False)
    np.testing.assert_array_equal(spark_distances(spark, model, table), model.distances(table))


@pytest.mark.parametrize(
    ("n_numeric", "categories"),
    [(2, []), (3, ["a", "b"]), (9, ["a", "b", "c"]), (30, []), (140, ["u", "v"])],
)
def test_spark_distances_are_numpys_to_the_last_bit(spark, n_numeric, categories):
    """Past eight columns numpy adds in blocks (pairwise): Spark adds in the same order."""
    model = random_model(n_numeric, categories, k=4, seed=n_numeric)
    table = random_table(model, 300, seed=1)
    np.testing.assert_array_equal(spark_distances(spark, model, table), model.distances(table))
    pd.testing.assert_frame_equal(
        spark_scores(spark, model, table), model.score(table), check_dtype=False
    )


def test_transformed_columns_score_as_the_model_does(spark):
    """rfm_score is exact; log1p is Java's (StrictMath), which may differ from numpy's in
    the last bit for some values (175.0): the distances agree to rounding and the
    segments are the same (a near-tie within one bit aside)."""
    model = dataclasses.replace(
        random_model(3, [], k=3, seed=3),
        center=[4.0, 0.0, 0.0],
        transforms={
            "x0": {"kind": "log1p"},
            "x2": {"kind": "rfm_score", "edges": [0.5, 1, 2, None]},
        },
    )
    table = random_table(model, 400, seed=2).abs()
    table["x0"] = np.r_[np.arange(200.0), table["x0"].to_numpy()[200:]]  # days, as recency
    np.testing.assert_allclose(
        spark_distances(spark, model, table), model.distances(table), rtol=1e-14, atol=0
    )
    pd.testing.assert_frame_equal(
        spark_scores(spark, model, table), model.score(table), check_dtype=False
    )


@pytest.mark.parametrize("offset", [0, 100], ids=["shared-ids", "new-ids"])
@pytest.mark.parametrize(
    "overrides",
    [["features=income_spending"], ["features=all", "preprocess.categorical_weight=2.5"]],
    ids=["numeric", "gender"],
)
def test_the_spark_table_answers_select_as_the_table_in_memory(spark, seed_csv, overrides, offset):
    """custseg-select on Spark: the model's inertia and the champion comparison are
    computed in Spark (aggregates only reach the driver) and equal the pandas table's,
    the transitions count for count; the new model's ids are the champion's and one
    more (some customers keep their id) or all new (every customer moves)."""
    from custseg.backends.local import PandasTable
    from custseg.backends.spark.scoring import SparkCustomerTable
    from custseg.domain.identity import model_changes
    from custseg.storage.data import DataInfo

    champion, table = fitted(seed_csv, overrides)
    settings = compose_settings([f"data.path={seed_csv}", *overrides, "model.n_init=2"])
    preprocess = settings.preprocess
    result = fit_model(
        table, settings.features, preprocess.scaler, settings.model, 6,
        categorical_weight=preprocess.categorical_weight,
    )  # fmt: skip
    new = segment_model(result, preprocess.scaler, {})
    new = new.relabel({s: s + offset for s in new.segments}, {s + offset: "" for s in range(6)})
    info = DataInfo(str(seed_csv), "0" * 64, len(table), len(table.columns))
    in_memory = PandasTable(table, info)
    in_spark = SparkCustomerTable(spark.createDataFrame(table), info, 60, 0)
    for model in (champion, new):
        assert in_spark.inertia(model) == pytest.approx(in_memory.inertia(model), rel=1e-12)
    pd.testing.assert_frame_equal(
        in_spark.transitions(champion, new).sort_index().sort_index(axis=1),
        in_memory.transitions(champion, new).sort_index().sort_index(axis=1),
        check_names=False,
    )
    changes = {
        name: model_changes(champion, new, t.columns, lambda t=t: t.transitions(champion, new))
        for name, t in [("spark", in_spark), ("pandas", in_memory)]
    }
    assert changes["spark"] == changes["pandas"]
    moved = int(np.count_nonzero(champion.predict(table) != new.predict(table)))
    assert changes["spark"]["moved"] == moved
    assert 0 < moved < len(table) if offset == 0 else moved == len(table)


def test_the_spark_table_scores_a_model_as_the_spark_sweep_scores_a_fit(spark, seed_csv):
    """custseg-publish on Spark: inertia and cluster sizes over every customer, in Spark;
    silhouette, Calinski-Harabasz and Davies-Bouldin on the seeded driver sample (the
    rows the Spark sweep scores), which the plots and the registration gate use."""
    from pyspark.sql import functions as F

    from custseg.backends.spark.engine import ROW_ID, driver_sample
    from custseg.backends.spark.scoring import SparkCustomerTable
    from custseg.domain.clustering import model_metrics
    from custseg.storage.data import DataInfo

    model, table = fitted(seed_csv, ["features=all"])
    frame = spark.createDataFrame(table).withColumn(ROW_ID, F.monotonically_increasing_id())
    info = DataInfo(str(seed_csv), "0" * 64, len(table), len(table.columns))
    in_spark = SparkCustomerTable(frame, info, sample_size=60, seed=3)
    assert ROW_ID not in in_spark.columns
    scored = in_spark.scores(model, 60)
    sample = driver_sample(frame, len(table), 60, 3)
    pd.testing.assert_frame_equal(scored.rows, sample)
    assert len(sample) == 60
    ids, on_sample, silhouettes = model_metrics(model, sample, None, 3)
    np.testing.assert_array_equal(scored.ids, ids)
    np.testing.assert_array_equal(scored.silhouettes.values, silhouettes.values)
    for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        assert scored.metrics[name] == on_sample[name]
    sizes = np.bincount(model.nearest(table)[0], minlength=model.k)
    assert scored.metrics["inertia"] == pytest.approx(model.inertia(table), rel=1e-12)
    segments, counts = np.unique(model.predict(table), return_counts=True)
    assert scored.sizes == dict(zip(segments.tolist(), counts.tolist(), strict=True))
    assert (scored.metrics["min_cluster_size"], scored.metrics["max_cluster_size"]) == (
        sizes.min(),
        sizes.max(),
    )


def test_the_pipeline_model_scores_as_the_columns_do_and_loads_back(spark, seed_csv, tmp_path):
    """The Spark ML PipelineModel (a SQL statement) gives the same segments, saved and
    loaded back without custseg."""
    from pyspark.ml import PipelineModel

    from custseg.backends.spark.engine import to_pandas
    from custseg.backends.spark.scoring import scoring_pipeline

    model, table = fitted(seed_csv, ["features=all"])
    scoring_pipeline(model).save(str(tmp_path / "spark_model"))
    loaded = PipelineModel.load(str(tmp_path / "spark_model"))
    scored = to_pandas(loaded.transform(spark.createDataFrame(table)))
    pd.testing.assert_frame_equal(
        scored[[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]], model.score(table), check_dtype=False
    )


def test_the_pipeline_model_refuses_rows_the_pyfunc_refuses(spark, seed_csv):
    """The Spark flavour scores on a cluster without custseg's checks before it: a row
    outside the model's allowed values or limits fails the job, as the pyfunc refuses it."""
    from custseg.backends.spark.scoring import scoring_pipeline

    model, table = fitted(seed_csv, ["features=all"])
    model = dataclasses.replace(
        model, limits={"annual_income": [0, None]}, allowed={"gender": ["Female", "Male"]}
    )
    pipeline = scoring_pipeline(model)
    for bad in (table.assign(gender="Robot"), table.assign(annual_income=-1.0)):
        scored = pipeline.transform(spark.createDataFrame(bad))
        for kept in (SEGMENT_COLUMN, SEGMENT_NAME_COLUMN):  # either column alone refuses
            with pytest.raises(Exception, match="a row the model cannot score"):
                scored.select(kept).collect()
    assert len(pipeline.transform(spark.createDataFrame(table)).collect()) == len(table)


def test_rows_outside_the_model_are_refused_and_nothing_is_scored(spark, seed_csv):
    from custseg.backends.spark.scoring import SparkScoringError, score_frame

    model, table = fitted(seed_csv, ["features=all"])
    model = dataclasses.replace(
        model, limits={"annual_income": [0, 100]}, allowed={"gender": ["Female", "Male"]}
    )
    table.loc[3, "gender"] = "Other"
    with pytest.raises(SparkScoringError, match=r"annual_income: \d+ row\(s\), gender: 1 row"):
        score_frame(model, spark.createDataFrame(table))
    with pytest.raises(SparkScoringError, match="already has column"):
        score_frame(model, spark.createDataFrame(table.assign(segment=1)))
    with pytest.raises(SparkScoringError, match="lacks column"):
        score_frame(model, spark.createDataFrame(table.drop(columns="gender")))


def test_a_quantile_transform_is_refused_with_what_to_do(spark):
    from custseg.backends.spark.sql import SparkScoringError, nearest_sql

    model = dataclasses.replace(
        random_model(2, [], k=2, seed=0),
        transforms={"x1": {"kind": "quantile", "quantiles": [0.0, 0.5, 1.0]}},
    )
    with pytest.raises(SparkScoringError, match="engine=sklearn"):
        nearest_sql(model)


def test_a_champion_spark_cannot_score_stops_a_stage_with_what_to_do(spark, capsys):
    """custseg-select or -publish on Spark against a catalog champion with a quantile
    transform: the stage ends with its message (exit 1), not a traceback."""
    from custseg.backends.spark.scoring import SparkCustomerTable
    from custseg.pipeline.errors import exit_on_user_error
    from custseg.storage.data import DataInfo

    champion = dataclasses.replace(
        random_model(2, [], k=2, seed=0),
        transforms={"x1": {"kind": "quantile", "quantiles": [0.0, 0.5, 1.0]}},
    )
    new = random_model(2, [], k=3, seed=1)
    table = random_table(new, 20, seed=0)
    info = DataInfo("customers", "0" * 64, len(table), len(table.columns))
    in_spark = SparkCustomerTable(spark.createDataFrame(table), info, 10, 0)

    @exit_on_user_error("custseg-select")
    def select() -> None:
        in_spark.transitions(champion, new)

    with pytest.raises(SystemExit) as stopped:
        select()
    assert stopped.value.code == 1
    assert capsys.readouterr().err.startswith(
        "custseg-select: error: model random: its transforms {'x1': 'quantile'}"
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from test_predict import Registry

    return Registry(tmp_path_factory.mktemp("spark-predict-store"))


def test_predict_on_spark_scores_the_champion_as_the_sklearn_engine_does(spark, registry, tmp_path):
    """custseg-predict engine=spark: the registered champion scores the table in Spark,
    every customer to the segment the scikit-learn engine gives, in input order."""
    from custseg.pipeline.predict import run_predict
    from test_predict import write_new_customers

    source = write_new_customers(tmp_path)
    by_csv = run_predict(registry.settings(source, tmp_path / "scored.csv"))
    output = tmp_path / "out" / "scored.parquet"
    outcome = run_predict(registry.settings(source, output, "engine=spark"))

    written = pd.read_parquet(output)
    expected = pd.read_csv(tmp_path / "scored.csv", dtype=str, keep_default_na=False)
    assert written["customer_id"].tolist() == expected["CustomerID"].tolist()
    assert written[SEGMENT_COLUMN].tolist() == expected[SEGMENT_COLUMN].astype(int).tolist()
    assert written[SEGMENT_NAME_COLUMN].tolist() == expected[SEGMENT_NAME_COLUMN].tolist()
    assert list(written.columns[-3:]) == ["Note", SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]
    assert outcome.counts == by_csv.counts and str(outcome.version.version) == "1"
    assert outcome.summary() == by_csv.summary().replace(str(tmp_path / "scored.csv"), str(output))
    assert sorted(p.name for p in output.parent.iterdir()) == ["scored.parquet"]


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (["predict.rejects=rejects.csv"], "ConfigError", "without predict.rejects"),
        (["predict.output=scored.csv"], "ConfigError", r"\*\.parquet"),
        (
            ["predict.model_uri=models:/customer-segmentation@nobody"],
            "ModelNotFoundError",
            "nobody",
        ),
    ],
    ids=["rejects", "csv-output", "no-such-alias"],
)
def test_predict_on_spark_refuses_clearly_and_writes_nothing(
    spark, registry, tmp_path, monkeypatch, overrides, error, match
):
    import custseg.config
    import custseg.tracking.registry
    from custseg.pipeline.predict import run_predict

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "new.csv"
    source.write_text("CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
                      "1,Male,27,44,52\n", encoding="utf-8")  # fmt: skip
    errors = {"ConfigError": custseg.config.ConfigError,
              "ModelNotFoundError": custseg.tracking.registry.ModelNotFoundError}  # fmt: skip
    settings = registry.settings(source, None, "engine=spark", *overrides)
    with pytest.raises(errors[error], match=match):
        run_predict(settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]


def test_predict_on_spark_refuses_invalid_input_with_its_lines(spark, registry, tmp_path):
    from custseg.pipeline.predict import run_predict
    from custseg.storage.data import DataValidationError

    source = tmp_path / "new.csv"
    source.write_text("CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
                      "1,Male,27,44,52\n2,Male,old,44,52\n", encoding="utf-8")  # fmt: skip
    output = tmp_path / "scored.parquet"
    with pytest.raises(DataValidationError, match=r"'Age' \(age\): 1 non-numeric value .* line 3"):
        run_predict(registry.settings(source, output, "engine=spark"))
    assert not output.exists()


def test_a_model_logged_with_its_spark_flavour_scores_alike_in_spark_and_pyfunc(
    spark, seed_csv, tmp_path
):
    """Issue 12: the registered model scores a large table in Spark (mlflow.spark) and a
    small one without a cluster (its light pyfunc): the same segments."""
    import mlflow
    import mlflow.spark

    from custseg.backends.spark.engine import to_pandas
    from custseg.backends.spark.scoring import scoring_pipeline
    from custseg.tracking.runs import log_segment_model, setup_experiment

    model, table = fitted(seed_csv, ["features=all"])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = setup_experiment(uri, "spark-flavour", str(tmp_path / "mlruns"))
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_segment_model(model, spark_model=scoring_pipeline(model))
    assert set(info.flavors) == {"python_function", "spark"}
    assert info.flavors["python_function"]["loader_module"] != "mlflow.spark"  # the light one

    in_pandas = mlflow.pyfunc.load_model(info.model_uri).predict(table)
    in_spark = to_pandas(
        mlflow.spark.load_model(info.model_uri).transform(spark.createDataFrame(table))
    )
    expected = model.score(table)
    pd.testing.assert_frame_equal(
        in_spark[[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]], expected, check_dtype=False
    )
    saved = Path(mlflow.artifacts.download_artifacts(info.model_uri)) / "sparkml"
    assert not [p.name for p in saved.rglob("*.crc")]  # Spark's files only
    pd.testing.assert_frame_equal(
        pd.DataFrame(in_pandas)[[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]], expected, check_dtype=False
    )


#: run on a Spark cluster by the test below: validate the Mall table in Spark, log the
#: model with its Spark flavour (custseg's publish path) and score the table with the
#: flavour as loaded back by MLflow; prints the executors the cluster ran
_ON_A_CLUSTER = """
import sys
from pathlib import Path

import mlflow
import mlflow.spark

from conftest import compose_settings
from custseg.domain.segment_model import SegmentModel
from custseg.backends.spark.data import validate_spark
from custseg.backends.spark.engine import spark_session, to_pandas
from custseg.backends.spark.scoring import scoring_pipeline
from custseg.tracking.runs import log_segment_model, setup_experiment

out = Path(sys.argv[1])
settings = compose_settings(sys.argv[2:])
frame, _ = validate_spark(settings.data, settings.engine)
model = SegmentModel.from_json((out / "model.json").read_text(encoding="utf-8"))
uri = f"sqlite:///{out / 'mlflow.db'}"
experiment_id = setup_experiment(uri, "on-a-cluster", str(out / "mlruns"))
with mlflow.start_run(experiment_id=experiment_id):
    info = log_segment_model(model, spark_model=scoring_pipeline(model))
scored = to_pandas(mlflow.spark.load_model(info.model_uri).transform(frame))
scored[["segment", "segment_name"]].to_csv(out / "scored.csv", index=False)
context = spark_session(settings.engine).sparkContext
print(context.master, context._jsc.sc().getExecutorMemoryStatus().size() - 1, flush=True)
"""


@pytest.mark.slow
def test_on_a_cluster_the_registered_model_keeps_its_spark_flavour(seed_csv, tmp_path):
    """Issue 12: with engine.master naming a cluster (here Spark's local-cluster: a master,
    a worker and an executor JVM apart from the driver), validation runs and the logged
    model has its Spark flavour, saved through the temporary directory of the cluster's
    file system, which scores as the pyfunc does. The executor shares the driver's disk:
    what executors on other machines would write elsewhere is missing_parts' test."""
    import os
    import subprocess
    import sys

    from conftest import PROJECT_ROOT

    model, table = fitted(seed_csv, ["features=all"])
    (tmp_path / "model.json").write_text(model.to_json(), encoding="utf-8")
    job = tmp_path / "job.py"  # a file: under python -c, pyspark runs a module's doctests
    job.write_text(_ON_A_CLUSTER, encoding="utf-8")
    master = "local-cluster[1,1,1024]"
    overrides = [
        f"data.path={seed_csv}", "engine=spark", f"engine.master='{master}'",
        "engine.driver_memory=1g", "engine.partitions=2",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "tests"),
        "MLFLOW_DFS_TMP": str(tmp_path / "dfs"),
    }
    done = subprocess.run(
        [sys.executable, str(job), str(tmp_path), *overrides],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [master, "1"]  # one executor, not the driver's threads
    scored = pd.read_csv(tmp_path / "scored.csv", dtype={SEGMENT_NAME_COLUMN: str})
    expected = model.score(table)[[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN]]
    pd.testing.assert_frame_equal(scored, expected, check_dtype=False)
    assert not any((tmp_path / "dfs").iterdir())  # the temporary copy is gone


def test_a_saved_pipeline_is_whole_or_refused_with_the_part_it_lacks(spark, seed_csv, tmp_path):
    """save_pipeline writes a new directory holding every part of the pipeline;
    missing_parts names what a copy from executors the driver cannot see would lack."""
    import shutil

    from custseg.backends.spark.scoring import missing_parts, save_pipeline, scoring_pipeline

    model, _ = fitted(seed_csv, ["features=income_spending"])
    saved = tmp_path / "pipeline"
    save_pipeline(scoring_pipeline(model), saved)
    assert missing_parts(saved, 1) == []
    with pytest.raises(FileExistsError, match="new directory"):
        save_pipeline(scoring_pipeline(model), saved)
    (stage,) = (saved / "stages").iterdir()
    shutil.rmtree(stage / "metadata")
    assert missing_parts(saved, 1) == [f"stages/{stage.name}/metadata"]
    shutil.rmtree(saved / "stages")
    shutil.rmtree(saved / "metadata")
    assert missing_parts(saved, 1) == ["metadata", "1 of its 1 stage(s)"]


def test_a_spark_flavour_that_cannot_be_saved_leaves_the_pyfunc_and_says_why(
    spark, seed_csv, tmp_path, monkeypatch, caplog
):
    """Spark cannot write its temporary directory (here: under a file): the pipeline is
    refused with the reason, nothing is left behind, and the logged model keeps its
    pyfunc, which scores, with a warning that it has no Spark flavour."""
    import mlflow

    from custseg.backends.spark.scoring import save_pipeline, scoring_pipeline
    from custseg.errors import SparkScoringError
    from custseg.tracking.runs import log_segment_model, setup_experiment

    model, table = fitted(seed_csv, ["features=income_spending"])
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("MLFLOW_DFS_TMP", str(blocker / "tmp"))
    with pytest.raises(SparkScoringError, match="could not save the pipeline through"):
        save_pipeline(scoring_pipeline(model), tmp_path / "pipeline")
    assert not (tmp_path / "pipeline").exists()

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = setup_experiment(uri, "no-flavour", str(tmp_path / "mlruns"))
    with caplog.at_level(logging.WARNING), mlflow.start_run(experiment_id=experiment_id):
        info = log_segment_model(model, spark_model=scoring_pipeline(model))
    assert set(info.flavors) == {"python_function"}
    assert "has no Spark flavour" in caplog.text and "a-file" in caplog.text
    scored = pd.DataFrame(mlflow.pyfunc.load_model(info.model_uri).predict(table))
    pd.testing.assert_frame_equal(scored, model.score(table), check_dtype=False)
