"""engine=spark's validation (custseg.backends.spark.data) against the scikit-learn engine's
(custseg.storage.data.load_customers), on a real local[2] SparkSession: every file is refused
with the same problems, or read to the same table."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from custseg.config import DataConfig
from custseg.storage.data import (
    DataValidationError,
    current_validated,
    generate_customers,
    load_customers,
    load_table,
    write_csv_atomic,
)

from conftest import SPARK_LOCAL, compose_settings, shown_outputs

HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"
ROWS = ["1,Male,27,44,52", "2,Female,21,16,81", "3,Female,35,70,50", "4,Male,64,137,1"]


def table(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def with_cell(row: int, column: int, value: str) -> str:
    rows = [r.split(",") for r in ROWS]
    rows[row][column] = value
    return table(*(",".join(r) for r in rows))


#: file contents, each read by both engines
CASES = {
    "good": table(*ROWS),
    "age-not-numeric": with_cell(1, 2, "abc"),
    "score-0": with_cell(2, 4, "0"),
    "score-101": with_cell(0, 4, "101"),
    "income-negative": with_cell(1, 3, "-5"),
    "gender-X": with_cell(2, 1, "X"),
    "age-empty": with_cell(1, 2, ""),
    "gender-NA": with_cell(3, 1, "NA"),
    "income-inf": with_cell(3, 3, "inf"),
    "duplicate-id": with_cell(2, 0, "1"),
    "id-blank": with_cell(0, 0, " "),
    "many-bad-rows": table(*(f"{i},Female,30,50,500" for i in range(1, 13))),
    "many-duplicated-ids": table(*(f"{i % 7},Male,30,50,50" for i in range(20))),
    "several-problems": table("1,Male,old,44,52", "2,?,21,16,81", "3,Female,35,70,250"),
    "missing-column": table("1,Male,44,52", header="CustomerID,Gender,Annual Income (k$),Score"),
    "near-miss-header": table(*ROWS, header=HEADER.replace("CustomerID", "customerid")),
    "extra-columns": table(
        *(f"{r},{i}.5,x{i},,{'' if i else 'NA'}" for i, r in enumerate(ROWS)),
        header=f"{HEADER},Visits,Region,Empty,Mostly empty",
    ),
    "trailing-commas": "\n".join(f"{line}," for line in [HEADER, *ROWS]) + "\n",
    "value-beyond-header": table(*(f"{r}," for r in ROWS[:1]), f"{ROWS[1]},stray", *ROWS[2:]),
    "record-of-empty-fields": table(ROWS[0], ",,,,"),
    "blank-lines": f"{HEADER}\n{ROWS[0]}\n\n  \n{ROWS[1]}\n\n{with_cell(2, 2, 'x').splitlines()[3]}\n",
    "header-only": table(),
    "blank-file": "\n \n\n",
    "zero-bytes": "",
    "duplicate-header": "CustomerID,Age,Age\n1,2,3\n",
    "semicolons-read-as-commas": "CustomerID;Gender;Age;Annual Income (k$);Spending Score (1-100)\n"
    "1;Male;27;44,5;52\n",
    "thousands": table('1,Male,27,"15,000",52', '2,Female,21,"1,250,000",81'),
    "gender-spellings": table(
        "1, male ,27,44,52", "2,FEMALE,21,16,81", "3,f,35,70,50", "4,x,1,1,1"
    ),
    "normalised": table("1, male ,27,44,52", "2,FEMALE,21,16,81", "3,f,35,70,50"),
    "byte-order-mark-and-crlf": "\ufeff" + table(*ROWS).replace("\n", "\r\n"),
    "quoted-values": table('1,"Male",27,44,52', '"2","Female","21","16","81"'),
}
#: cases read with another delimiter and decimal mark
SEMICOLON = "CustomerID;Gender;Age;Annual Income (k$);Spending Score (1-100)\n"
OTHER_FORMATS = {
    "decimal-comma-hint": (SEMICOLON + "1;Male;27;44,5;52\n", {"delimiter": ";"}),
    "decimal-comma": (SEMICOLON + "1;Male;27;44,5;52\n", {"delimiter": ";", "decimal": ","}),
    "thousands-configured": (CASES["thousands"], {"thousands": ","}),
}


@pytest.fixture(scope="module")
def data_config() -> DataConfig:
    return compose_settings([]).data


def both_engines(config: DataConfig):
    """What each engine makes of ``config``: (table, info) or the problems raised."""
    from custseg.backends.spark.data import LINE, validate_spark
    from custseg.backends.spark.engine import to_pandas

    outcomes = []
    for validate in (load_customers, lambda c: validate_spark(c, SPARK_LOCAL)):
        try:
            table, info = validate(config)
        except DataValidationError as exc:
            outcomes.append(exc)
            continue
        if not isinstance(table, pd.DataFrame):  # Spark's, in file order by its line
            table = to_pandas(table.orderBy(LINE).drop(LINE))
        outcomes.append((table, info))
    return outcomes


def assert_same(config: DataConfig) -> None:
    expected, spark = both_engines(config)
    if isinstance(expected, DataValidationError):
        assert isinstance(spark, DataValidationError), "Spark accepted what pandas refuses"
        assert spark.problems == expected.problems
        assert str(spark) == str(expected)
        return
    assert not isinstance(spark, DataValidationError), f"Spark refused: {spark}"
    pd.testing.assert_frame_equal(spark[0], expected[0], check_dtype=False)
    assert list(spark[0].dtypes.map(str)) == list(expected[0].dtypes.map(str))
    assert spark[1] == expected[1]


@pytest.mark.parametrize("content", CASES.values(), ids=CASES.keys())
def test_spark_refuses_or_reads_every_file_as_the_sklearn_engine_does(
    spark, tmp_path, data_config, content
):
    path = tmp_path / "customers.csv"
    path.write_text(content, encoding="utf-8", newline="")
    assert_same(dataclasses.replace(data_config, path=str(path)))


@pytest.mark.parametrize(("content", "settings"), OTHER_FORMATS.values(), ids=OTHER_FORMATS.keys())
def test_spark_reads_other_csv_formats_as_the_sklearn_engine_does(
    spark, tmp_path, data_config, content, settings
):
    path = tmp_path / "customers.csv"
    path.write_text(content, encoding="utf-8")
    assert_same(dataclasses.replace(data_config, path=str(path), **settings))


def test_the_docs_validation_example_reads_the_same_in_spark(
    spark, tmp_path, data_config, monkeypatch
):
    """docs/spark.md: `custseg-validate engine=spark` refuses the first example of
    docs/data.md in the same words. Checked with the call that command makes,
    ``validate_spark`` in this session's Spark, printed as the entry point prints errors."""
    from custseg.backends.spark.data import validate_spark

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rows = ["1,Male,29,110,85", "2,Female,21,15,181", "3,Male,41,52,46"]
    (tmp_path / "data" / "customers.csv").write_text(table(*rows), encoding="utf-8")
    with pytest.raises(DataValidationError) as refused:
        validate_spark(dataclasses.replace(data_config, path="data/customers.csv"), SPARK_LOCAL)
    assert shown_outputs() == [f"custseg-validate: error: {refused.value}\n"]


def test_line_numbers_hold_across_partitions(spark, tmp_path, data_config):
    """Bad values on lines read by different partitions are named by their file lines."""
    customers = generate_customers(3000, seed=1).astype(str)
    customers.loc[[5, 1400, 2998], "Age"] = ["old", "-1", "x"]
    customers.loc[2100, "CustomerID"] = customers.loc[17, "CustomerID"]
    path = tmp_path / "customers.csv"
    write_csv_atomic(customers, path)
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "8192")  # about 10 partitions
    try:
        assert spark.read.text(str(path)).rdd.getNumPartitions() > 5
        assert_same(dataclasses.replace(data_config, path=str(path)))
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)


@pytest.mark.parametrize(
    ("content", "encoding", "why"),
    [
        (table(*ROWS).replace("1,Male", "Zoé-1,Male").encode("cp1252"), "utf-8", "not UTF-8"),
        (table(*ROWS).encode("cp1252"), "cp1252", "engine=spark reads UTF-8"),
    ],
    ids=["latin-bytes", "cp1252-configured"],
)
def test_spark_refuses_text_that_is_not_utf8_and_says_so(
    spark, tmp_path, data_config, content, encoding, why
):
    from custseg.backends.spark.data import validate_spark

    path = tmp_path / "latin.csv"
    path.write_bytes(content)
    config = dataclasses.replace(data_config, path=str(path), encoding=encoding)
    with pytest.raises(DataValidationError, match=why) as excinfo:
        validate_spark(config, SPARK_LOCAL)
    assert "latin.csv" in str(excinfo.value)


def test_a_value_spanning_lines_is_refused_on_spark_with_its_line(spark, tmp_path, data_config):
    """Spark reads a record per line: a quoted value with a line break is named, never
    read as two records (the scikit-learn engine reads it)."""
    from custseg.backends.spark.data import validate_spark

    header = f"{HEADER},Note,Other"
    path = tmp_path / "customers.csv"
    path.write_text(table(ROWS[0], '2,Female,21,16,81,"two', 'lines",x', header=header))
    load_customers(dataclasses.replace(data_config, path=str(path)))  # pandas reads it
    # a stray quote earlier on the line does not hide the open one
    other = tmp_path / "other.csv"
    other.write_text(table(ROWS[0], '2,Female,21,16,81,"a"b,"two', 'lines"', header=header))
    for csv_file in (path, other):
        with pytest.raises(DataValidationError, match=r"does not close on its line, at line 3\b"):
            validate_spark(dataclasses.replace(data_config, path=str(csv_file)), SPARK_LOCAL)


def test_a_missing_file_is_refused_as_by_the_sklearn_engine(spark, tmp_path, data_config):
    config = dataclasses.replace(data_config, path=str(tmp_path / "nowhere.csv"))
    (expected, spark_error) = both_engines(config)
    assert str(spark_error) == str(expected)


def test_the_validated_directory_is_read_back_as_the_table_and_written_the_same_twice(
    spark, tmp_path, data_config, seed_csv
):
    """What later stages read (load_table, Spark) is the validated table, the directory's
    bytes depend on the data only, and a stale directory is not used."""
    from custseg.backends.spark.data import validate_spark, write_validated_spark

    dest = tmp_path / "validated" / "customers.parquet"
    config = dataclasses.replace(data_config, path=str(seed_csv), validated=str(dest))
    contents = []
    for _ in range(2):
        frame, info = validate_spark(config, SPARK_LOCAL)
        write_validated_spark(frame, info, config)
        contents.append({p.name: p.read_bytes() for p in sorted(dest.iterdir())})
    assert contents[0] == contents[1]
    assert sorted(contents[0]) == ["_custseg.json", "part-00000.parquet"]
    expected, expected_info = load_customers(config)
    assert current_validated(config) == dataclasses.replace(expected_info, normalised={})
    table, _ = load_table(config)
    pd.testing.assert_frame_equal(table, expected)
    stale = dataclasses.replace(config, columns={**config.columns})
    stale.columns["age"] = dataclasses.replace(stale.columns["age"], max=90.0)
    assert current_validated(stale) is None


def test_a_spark_validated_directory_is_replaced_by_a_file_and_back(
    spark, tmp_path, data_config, seed_csv
):
    """Switching engines swaps the validated file for a directory and back, whole."""
    from custseg.backends.spark.data import validate_spark, write_validated_spark
    from custseg.storage.data import write_validated

    dest = tmp_path / "customers.parquet"
    config = dataclasses.replace(data_config, path=str(seed_csv), validated=str(dest))
    write_validated(*load_customers(config), config)
    assert dest.is_file()
    write_validated_spark(*validate_spark(config, SPARK_LOCAL), config)
    assert dest.is_dir() and current_validated(config) is not None
    write_validated(*load_customers(config), config)
    assert dest.is_file() and current_validated(config) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["customers.parquet"]


@pytest.mark.parametrize(
    "content",
    [CASES["extra-columns"], CASES["normalised"], None],
    ids=["extras", "normalised", "seed-table"],
)
def test_the_validate_stage_writes_the_same_metrics_and_profile_on_spark(
    spark, tmp_path, monkeypatch, seed_csv, content
):
    """custseg-validate with engine=spark: the same metrics/ files, a validated table that
    later stages read as the scikit-learn engine's; invalid data writes nothing."""
    from custseg.pipeline.validate import DATA_METRICS, DATA_PROFILE, run_validate

    path = seed_csv
    if content is not None:
        path = tmp_path / "customers.csv"
        path.write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    written = {}
    for engine in ("sklearn", "spark"):
        overrides = [f"data.path={path}", f"data.validated={tmp_path / engine / 'v.parquet'}"]
        if engine == "spark":
            overrides += ["engine=spark", f"engine.master='{SPARK_LOCAL.master}'"]
        settings = compose_settings(overrides)
        run_validate(settings)
        table, info = load_table(settings.data)
        assert info.n_rows == len(table)
        written[engine] = (DATA_METRICS.read_bytes(), DATA_PROFILE.read_bytes(), table)
    sklearn, spark_written = written["sklearn"], written["spark"]
    assert spark_written[:2] == sklearn[:2]
    pd.testing.assert_frame_equal(spark_written[2], sklearn[2])


def test_invalid_data_on_spark_writes_nothing(spark, tmp_path, monkeypatch):
    from custseg.pipeline.validate import DATA_METRICS, DATA_PROFILE, run_validate

    bad = tmp_path / "bad.csv"
    bad.write_text(CASES["several-problems"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = compose_settings([f"data.path={bad}", "engine=spark"])
    with pytest.raises(DataValidationError, match="3 problems"):
        run_validate(settings)
    assert not DATA_METRICS.exists() and not DATA_PROFILE.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def parquet_cases() -> dict[str, list[pd.DataFrame]]:
    """Parquet tables (one frame per file), each read by both engines."""
    good = generate_customers(40, seed=5)
    bad = good.astype({"Age": str})  # a text column in the table, as messy lakes have
    bad.loc[[3, 30], "Age"] = ["old", None]
    bad.loc[7, "Gender"] = "Robot"
    bad.loc[9, "Spending Score (1-100)"] = 1000
    bad.loc[12, "CustomerID"] = bad.loc[2, "CustomerID"]
    floats = good.astype({"Annual Income (k$)": float})
    floats.loc[[4, 5], "Annual Income (k$)"] = [1e20, float("nan")]
    return {
        "generated": [good],
        "bad-values": [bad],
        "floats": [floats],
        "two-files": [bad.iloc[:25], bad.iloc[25:]],
        # Spark reads the larger file first; the rows still go in name order
        "a-small-file-first": [bad.iloc[:5], bad.iloc[5:]],
        "missing-column": [good.drop(columns="Age")],
        "extra-columns": [good.assign(Visits=range(40), Region=["x"] * 40)],
        "no-rows": [good.iloc[:0]],
        "a-pandas-index": [None, bad.iloc[[12, 3, 7]]],
        "a-named-pandas-index": [None, bad.set_index("CustomerID")],
    }


PARQUET = parquet_cases()


@pytest.mark.parametrize("frames", PARQUET.values(), ids=PARQUET.keys())
def test_spark_validates_a_parquet_table_as_the_sklearn_engine_does(
    spark, tmp_path, data_config, frames
):
    """A Parquet table (a file, or a directory of files read in name order): the same
    rules on its values, rows numbered from 1."""
    from custseg.storage.data import write_parquet_atomic

    if len(frames) == 1:
        path = tmp_path / "customers.parquet"
        write_parquet_atomic(frames[0], path)
    elif frames[0] is None:  # written by pandas with its index (filtered rows)
        path = tmp_path / "customers.parquet"
        frames[1].to_parquet(path)
    else:
        path = tmp_path / "customers.parquet"
        for i, frame in enumerate(frames):
            write_parquet_atomic(frame, path / f"part-{i}.parquet")
    assert_same(dataclasses.replace(data_config, path=str(path)))


def test_a_parquet_table_is_written_validated_in_its_rows_order(spark, tmp_path, data_config):
    """Spark reads a directory's larger file first; the validated table Spark writes (and
    later stages read) is in name order all the same, as the scikit-learn engine's."""
    from custseg.backends.spark.data import validate_spark, write_validated_spark
    from custseg.storage.data import write_parquet_atomic

    customers = generate_customers(300, seed=6)
    path = tmp_path / "customers.parquet"
    write_parquet_atomic(customers.iloc[:7], path / "part-0.parquet")
    write_parquet_atomic(customers.iloc[7:], path / "part-1.parquet")
    config = dataclasses.replace(
        data_config, path=str(path), validated=str(tmp_path / "validated.parquet")
    )
    frame, info = validate_spark(config, SPARK_LOCAL)
    write_validated_spark(frame, info, config)
    frame.unpersist()
    expected, _ = load_customers(config)
    pd.testing.assert_frame_equal(load_table(config)[0], expected)


def test_a_parquet_table_spark_cannot_read_is_refused_with_the_reason(spark, tmp_path, data_config):
    """Files of one table with other column types (an integer column written as text in
    a later file): Spark's reason, as a validation error."""
    from custseg.backends.spark.data import validate_spark
    from custseg.storage.data import write_parquet_atomic

    good = generate_customers(40, seed=5)
    path = tmp_path / "customers.parquet"
    write_parquet_atomic(good.iloc[:25], path / "part-0.parquet")
    write_parquet_atomic(good.iloc[25:].astype({"Age": str}), path / "part-1.parquet")
    config = dataclasses.replace(data_config, path=str(path))
    with pytest.raises(DataValidationError, match=r"cannot read the Parquet table: .*\[Age\]"):
        validate_spark(config, SPARK_LOCAL)


def test_the_generator_writes_parquet_that_validates_as_its_csv(tmp_path, data_config):
    """`custseg generate --out *.parquet`: the same customers as the CSV, typed."""
    from custseg.cli import main

    for name in ("c.csv", "c.parquet"):
        assert main(["generate", "--rows", "300", "--out", str(tmp_path / name)]) == 0
    from_csv = load_customers(dataclasses.replace(data_config, path=str(tmp_path / "c.csv")))
    parquet = dataclasses.replace(data_config, path=str(tmp_path / "c.parquet"))
    from_parquet = load_customers(parquet)
    pd.testing.assert_frame_equal(from_parquet[0], from_csv[0])
    bad = pd.read_parquet(tmp_path / "c.parquet").assign(Age=lambda t: t["Age"] - 100)
    write_csv_atomic(bad, tmp_path / "bad.csv")
    from custseg.storage.data import write_parquet_atomic

    write_parquet_atomic(bad, tmp_path / "bad.parquet")
    first = f"row 1 ('{bad['Age'].iloc[0]}')"
    with pytest.raises(DataValidationError, match=re.escape(first)):
        load_customers(dataclasses.replace(data_config, path=str(tmp_path / "bad.parquet")))


def test_an_empty_parquet_directory_is_a_validation_error(spark, tmp_path, data_config):
    from custseg.backends.spark.data import validate_spark

    path = tmp_path / "customers.parquet"
    path.mkdir()
    with pytest.raises(DataValidationError, match="cannot read the Parquet table: .*schema"):
        validate_spark(dataclasses.replace(data_config, path=str(path)), SPARK_LOCAL)
