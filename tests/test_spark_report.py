"""custseg-report on a table Spark holds (custseg.backends.spark.aggregates) against the table in
memory, on a real local[2] SparkSession: the same profiles, the same assignments CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.features import FeatureSet
from custseg.storage.data import DataInfo, load_customers

from conftest import MALL_FEATURE_SETS, compose_settings


def mall_with_extras(seed_csv) -> pd.DataFrame:
    """The Mall table and columns a profile treats each in its own way: a boolean, a
    text column with missing cells, a number with missing values (NaN) and a
    high-cardinality text column (not profiled)."""
    settings = compose_settings([f"data.path={seed_csv}"])
    table, _ = load_customers(settings.data)
    rng = np.random.default_rng(0)
    n = len(table)
    table["member"] = rng.random(n) < 0.3
    table["channel"] = pd.Series(rng.choice(["web", "store", "app"], n), dtype=object)
    table.loc[rng.random(n) < 0.1, "channel"] = None
    table["visits"] = np.where(rng.random(n) < 0.2, np.nan, rng.poisson(4.0, n).astype(float))
    table["note"] = [f"note {i}" for i in range(n)]
    return table


def the_tables(spark, table: pd.DataFrame):
    """The table in memory and the same rows in Spark (with their row numbers)."""
    from pyspark.sql import functions as F

    from custseg.backends.local import PandasTable
    from custseg.backends.spark.engine import ROW_ID
    from custseg.backends.spark.scoring import SparkCustomerTable

    info = DataInfo("customers", "0" * 64, len(table), len(table.columns))
    frame = spark.createDataFrame(table).withColumn(ROW_ID, F.monotonically_increasing_id())
    return PandasTable(table, info), SparkCustomerTable(frame, info, 80, 0)


def model_of(table: pd.DataFrame, feature_set: FeatureSet, k: int):
    result = fit_model(table, feature_set, "standard", compose_settings().model, k)
    model = segment_model(result, "standard", {i: f"segment {i}" for i in range(k)})
    return model.relabel(
        {s: 7 * s + 4 for s in model.segments},
        {7 * s + 4: n for s, n in model.segment_names.items()},
    )


@pytest.mark.parametrize("feature_set", MALL_FEATURE_SETS)
def test_spark_profiles_are_the_profiles_of_the_table_in_memory(spark, seed_csv, feature_set):
    """Counts exactly, means, deviations, medians and quartiles to rounding (Spark sums
    in its own order), the mid-rank percentiles exactly; booleans, missing text and NaN
    read as pandas reads them; segment ids that are not positions."""
    table = mall_with_extras(seed_csv)
    in_memory, in_spark = the_tables(spark, table)
    model = model_of(table, feature_set, 5)
    exclude = ["customer_id"]
    columns = in_memory.profile_columns(feature_set, exclude)
    assert in_spark.profile_columns(feature_set, exclude) == columns
    assert "note" not in columns[1] and "member" in columns[1] and "visits" in columns[0]
    expected = in_memory.profiles(model, *columns)
    got = in_spark.profiles(model, *columns)
    pd.testing.assert_frame_equal(got.sizes, expected.sizes)
    pd.testing.assert_frame_equal(got.categorical, expected.categorical)
    pd.testing.assert_frame_equal(got.overall_categorical, expected.overall_categorical)
    pd.testing.assert_frame_equal(got.numeric, expected.numeric, rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(got.overall, expected.overall, rtol=1e-12, atol=0)
    assert (got.numeric_columns, got.categorical_columns) == tuple(map(tuple, columns))


def test_spark_profiles_of_categorical_columns_only(spark, seed_csv):
    """A profile without a numeric column (a categorical-only feature set, nothing else
    profiled): the segments' sizes and category mixes, as in memory."""
    table = mall_with_extras(seed_csv)
    in_memory, in_spark = the_tables(spark, table)
    model = model_of(table, FeatureSet("gender", categorical=["gender"]), 2)
    expected = in_memory.profiles(model, [], ["gender", "channel"])
    got = in_spark.profiles(model, [], ["gender", "channel"])
    pd.testing.assert_frame_equal(got.sizes, expected.sizes)
    pd.testing.assert_frame_equal(got.categorical, expected.categorical)
    assert got.numeric.empty and got.overall.empty and len(got.categorical) == 2 * (2 + 4)


@pytest.mark.parametrize("id_column", ["customer_id", None], ids=["ids", "row-numbers"])
def test_spark_writes_the_assignments_csv_of_the_table_in_memory(
    spark, seed_csv, tmp_path, id_column
):
    """Byte for byte: ids that a spreadsheet could read as formulas, with commas,
    quotes, line breaks, spaces, a leading '#'; names with quotes; the table's order."""
    table = mall_with_extras(seed_csv)
    tricky = ["=1+1", "+x", "-2", "@a", "a,b", 'q"uote', "line\nbreak", "cr\rhere", " lead"]
    tricky += ["trail ", "#hash", "ü", "\ttab"]
    table.loc[: len(tricky) - 1, "customer_id"] = tricky
    in_memory, in_spark = the_tables(spark, table)
    model = model_of(table, FeatureSet("xy", numeric=["annual_income", "spending_score"]), 5)
    model = model.relabel(
        {s: s for s in model.segments},
        {
            s: f'{n}, "quoted"' if i % 2 else f"={n}"
            for i, (s, n) in enumerate(model.segment_names.items())
        },
    )
    in_memory.write_assignments(model, id_column, tmp_path / "memory.csv")
    in_spark.write_assignments(model, id_column, tmp_path / "spark.csv")
    expected = (tmp_path / "memory.csv").read_bytes()
    assert (tmp_path / "spark.csv").read_bytes() == expected
    assert expected.count(b"\n") > len(table)  # a header, every customer, a line break
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.csv", "spark.csv"]
