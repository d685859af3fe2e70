"""Monitoring with ``engine=spark``: a batch's counts by aggregation in Spark are the
counts in memory, and custseg-monitor gives the same report on both engines (a real
local[2] SparkSession)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from custseg.backends.spark.monitoring import spark_batch_counts
from custseg.domain.monitoring.batch import ALL, count_scored
from custseg.pipeline.monitor import run_monitor
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic

from conftest import compose_settings, named_reference, with_data_path


@pytest.fixture(scope="module")
def champion(seed_csv, tmp_path_factory):
    """The seed table's five named segments, their reference, as files a user passes."""
    settings = compose_settings()
    table, _ = load_customers(with_data_path(settings, seed_csv).data)
    model, reference = named_reference(table, sample_size=150, seed=3)
    folder = tmp_path_factory.mktemp("spark-monitor")
    (folder / "segmentation.json").write_text(model.to_json())
    (folder / "reference.json").write_text(json.dumps(reference))
    return model, table, reference, folder


def assert_same_counts(found, expected) -> None:
    assert found.groups.keys() == expected.groups.keys()
    assert found.beyond == expected.beyond and found.absent == expected.absent
    for key, group in expected.groups.items():
        other = found.groups[key]
        assert (other.n, other.categories, other.missing) == (
            group.n,
            group.categories,
            group.missing,
        )
        assert other.numeric.keys() == group.numeric.keys()
        for column, counts in group.numeric.items():
            mine = other.numeric[column]
            assert (mine.n, mine.missing) == (counts.n, counts.missing), (key, column)
            for part in ("below", "at_or_below", "bins"):
                np.testing.assert_array_equal(getattr(mine, part), getattr(counts, part))
            for part in ("low_sum", "high_sum", "total", "total_sq"):
                assert getattr(mine, part) == pytest.approx(getattr(counts, part), rel=1e-12)


@pytest.mark.parametrize("drop", [[], ["age", "gender"]], ids=["every-column", "model-columns"])
def test_spark_counts_are_the_counts_in_memory(spark, champion, drop):
    model, table, reference, _ = champion
    batch = table.sample(3000, replace=True, random_state=4).reset_index(drop=True)
    batch["annual_income"] += np.tile([0.0, 7.0, 0.5], 1000)  # values between grid points
    batch = batch.drop(columns=drop)
    found = spark_batch_counts(spark.createDataFrame(batch), model, reference)
    assert_same_counts(found, count_scored(model, batch, reference))
    assert found.groups[ALL].n == 3000


def test_a_segment_empty_in_the_batch_counts_zero_in_spark(spark, champion):
    model, table, reference, _ = champion
    ids = model.predict(table)
    batch = table[ids != ids[0]].reset_index(drop=True)
    found = spark_batch_counts(spark.createDataFrame(batch), model, reference)
    assert found.groups[int(ids[0])].n == 0
    assert_same_counts(found, count_scored(model, batch, reference))


def test_custseg_monitor_on_spark_gives_the_report_in_memory(spark, champion, tmp_path):
    _, _, _, folder = champion
    batch = tmp_path / "batch.csv"
    write_csv_atomic(generate_customers(600, seed=12), batch)

    def report(*overrides: str) -> dict:
        settings = compose_settings(
            [
                f"monitor.input={batch}",
                f"monitor.model={folder / 'segmentation.json'}",
                f"monitor.output_dir={tmp_path / 'out'}",
                f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                *overrides,
            ]
        )
        return run_monitor(settings).report

    in_memory, in_spark = report(), report("engine=spark")
    assert _close(in_spark, in_memory)


def _close(found, expected) -> bool:
    """Equal, floats to 1e-9 relative (sums in another order)."""
    if isinstance(expected, dict):
        assert found.keys() == expected.keys()
        return all(_close(found[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        assert len(found) == len(expected)
        return all(_close(f, e) for f, e in zip(found, expected, strict=True))
    if isinstance(expected, float):
        assert found == pytest.approx(expected, rel=1e-9, abs=1e-12)
        return True
    assert found == expected
    return True


def test_an_invalid_spark_batch_is_refused_with_its_lines(spark, champion, tmp_path):
    from custseg.storage.data import DataValidationError

    _, _, _, folder = champion
    table = generate_customers(60, seed=2)
    table.loc[4, "Annual Income (k$)"] = -3
    batch = tmp_path / "bad.csv"
    write_csv_atomic(pd.DataFrame(table), batch)
    settings = compose_settings(
        [f"monitor.input={batch}", f"monitor.model={folder / 'segmentation.json'}",
         f"monitor.output_dir={tmp_path / 'out'}", "engine=spark"]
    )  # fmt: skip
    with pytest.raises(DataValidationError, match="line 6"):
        run_monitor(settings)
    assert not (tmp_path / "out").exists()
