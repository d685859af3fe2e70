"""Tests of custseg.storage.data (load / validate / generate / write) and `custseg generate`."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from custseg.cli import main
from custseg.config import DataConfig, to_settings
from custseg.storage.data import (
    RAW_COLUMNS,
    DataInfo,
    DataValidationError,
    _to_number,
    file_sha256,
    generate_customers,
    load_customers,
    write_csv_atomic,
)

CONF_DIR = Path(__file__).parents[1] / "conf"

HEADER = list(RAW_COLUMNS)
# data row i is on file line i + 2 (the header is line 1)
GOOD_ROWS = [
    ["1", "Male", "27", "44", "52"],
    ["2", "Female", "21", "16", "81"],
    ["3", "Female", "35", "70", "50"],
    ["4", "Male", "64", "137", "1"],
]
CANONICAL = ["customer_id", "gender", "age", "annual_income", "spending_score"]


@pytest.fixture(scope="module")
def data_config() -> DataConfig:
    """The real `data` config group, composed by Hydra in-process."""
    with initialize_config_dir(config_dir=str(CONF_DIR.resolve()), version_base="1.3"):
        cfg = compose(config_name="config")
    return to_settings(cfg).data


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = [",".join(header), *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config_for(data_config: DataConfig, path: Path) -> DataConfig:
    return dataclasses.replace(data_config, path=str(path))


def with_cell(row: int, column: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in GOOD_ROWS]
    rows[row][HEADER.index(column)] = value
    return rows


# ---------------------------------------------------------------------------- loading


def test_good_table_loads_with_canonical_names_and_dtypes(tmp_path, data_config):
    csv = write_table(tmp_path / "good.csv", HEADER, GOOD_ROWS)
    df, info = load_customers(config_for(data_config, csv))

    assert list(df.columns) == CANONICAL
    assert isinstance(df.index, pd.RangeIndex)
    assert len(df) == len(GOOD_ROWS)
    for col in ("age", "annual_income", "spending_score"):
        assert df[col].dtype == np.float64
    assert df["age"].tolist() == [27.0, 21.0, 35.0, 64.0]
    assert df["gender"].tolist() == ["Male", "Female", "Female", "Male"]
    assert df["customer_id"].tolist() == ["1", "2", "3", "4"]
    assert pd.api.types.is_string_dtype(df["customer_id"])
    assert pd.api.types.is_string_dtype(df["gender"])

    assert info == DataInfo(
        path=str(csv),
        sha256=hashlib.sha256(csv.read_bytes()).hexdigest(),
        n_rows=4,
        n_columns=5,
    )
    assert info.sha256 == file_sha256(csv)


def test_extra_columns_are_kept_after_schema_columns(tmp_path, data_config):
    header = ["Loyalty Years", *HEADER, "Note"]
    rows = [["2.5", *r, f"n{i}"] for i, r in enumerate(GOOD_ROWS)]
    rows[1][0] = ""  # a missing value in an extra column is allowed (NaN)
    csv = write_table(tmp_path / "extra.csv", header, rows)
    df, info = load_customers(config_for(data_config, csv))

    assert list(df.columns) == [*CANONICAL, "Loyalty Years", "Note"]
    assert df["Loyalty Years"].dtype == np.float64
    assert np.isnan(df["Loyalty Years"].iloc[1])
    assert df["Loyalty Years"].iloc[0] == 2.5
    assert pd.api.types.is_string_dtype(df["Note"])
    assert info.n_columns == 7


def test_columns_may_come_in_any_order(tmp_path, data_config):
    order = [4, 2, 0, 3, 1]
    csv = write_table(
        tmp_path / "shuffled.csv",
        [HEADER[i] for i in order],
        [[r[i] for i in order] for r in GOOD_ROWS],
    )
    df, _ = load_customers(config_for(data_config, csv))
    assert list(df.columns) == CANONICAL
    assert df["spending_score"].tolist() == [52.0, 81.0, 50.0, 1.0]


def test_bounds_are_inclusive(tmp_path, data_config):
    rows = with_cell(0, "Spending Score (1-100)", "100")
    rows[1][HEADER.index("Spending Score (1-100)")] = "1"
    rows[2][HEADER.index("Annual Income (k$)")] = "0"
    csv = write_table(tmp_path / "edges.csv", HEADER, rows)
    df, _ = load_customers(config_for(data_config, csv))
    assert df["spending_score"].iloc[:2].tolist() == [100.0, 1.0]


def test_blank_lines_are_skipped_without_shifting_line_numbers(tmp_path, data_config):
    csv = tmp_path / "blank.csv"
    lines = [",".join(HEADER), ",".join(GOOD_ROWS[0]), "", "5,Male,20,20,abc"]
    csv.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="line 4 "):
        load_customers(config_for(data_config, csv))

    lines[-1] = "5,Male,20,20,30"
    csv.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    df, _ = load_customers(config_for(data_config, csv))
    assert df["customer_id"].tolist() == ["1", "5"]


@pytest.mark.parametrize(
    ("rows", "column", "canonical", "line", "why"),
    [
        (with_cell(1, "Age", "abc"), "Age", "age", 3, "non-numeric"),
        (with_cell(2, "Spending Score (1-100)", "0"), "Spending Score (1-100)",
         "spending_score", 4, "below the minimum 1"),
        (with_cell(0, "Spending Score (1-100)", "101"), "Spending Score (1-100)",
         "spending_score", 2, "above the maximum 100"),
        (with_cell(1, "Annual Income (k$)", "-5"), "Annual Income (k$)",
         "annual_income", 3, "below the minimum 0"),
        (with_cell(2, "Gender", "X"), "Gender", "gender", 4, "allowed values"),
        (with_cell(1, "Age", ""), "Age", "age", 3, "missing"),
        (with_cell(3, "Gender", "NA"), "Gender", "gender", 5, "missing"),
        (with_cell(3, "Annual Income (k$)", "inf"), "Annual Income (k$)",
         "annual_income", 5, "non-numeric"),
        (with_cell(2, "CustomerID", "1"), "CustomerID", "customer_id", 4, "unique"),
        (with_cell(0, "CustomerID", " "), "CustomerID", "customer_id", 2, "missing"),
    ],
    ids=[
        "age-not-numeric", "score-0", "score-101", "income-negative", "gender-X",
        "age-empty", "gender-NA", "income-inf", "duplicate-id", "id-blank",
    ],
)  # fmt: skip
def test_bad_values_are_reported_with_file_column_and_line(
    tmp_path, data_config, rows, column, canonical, line, why
):
    csv = write_table(tmp_path / "bad_values.csv", HEADER, rows)
    with pytest.raises(DataValidationError) as excinfo:
        load_customers(config_for(data_config, csv))
    err = excinfo.value
    msg = str(err)
    assert "bad_values.csv" in msg
    assert f"{column!r} ({canonical})" in msg
    assert re.search(rf"\bline {line}\b", msg)
    assert why in msg
    assert err.path == str(csv)
    assert len(err.problems) == 1
    assert isinstance(err, ValueError)


def test_duplicate_id_names_every_line(tmp_path, data_config):
    csv = write_table(tmp_path / "dup.csv", HEADER, with_cell(3, "CustomerID", "2"))
    with pytest.raises(DataValidationError, match=r"'2' on line 3, line 5"):
        load_customers(config_for(data_config, csv))


def test_missing_column_lists_missing_and_found(tmp_path, data_config):
    keep = [i for i, h in enumerate(HEADER) if h != "Age"]
    header = [HEADER[i] for i in keep]
    csv = write_table(tmp_path / "no_age.csv", header, [[r[i] for i in keep] for r in GOOD_ROWS])
    with pytest.raises(DataValidationError) as excinfo:
        load_customers(config_for(data_config, csv))
    msg = str(excinfo.value)
    assert "no_age.csv" in msg
    assert "'Age' (age)" in msg
    assert "line 1 " in msg
    assert "'Gender'" in msg  # the headers that were found are listed


def test_near_miss_header_gets_a_hint(tmp_path, data_config):
    header = ["customerid", *HEADER[1:]]
    csv = write_table(tmp_path / "case.csv", header, GOOD_ROWS)
    with pytest.raises(DataValidationError, match="did you mean 'customerid'"):
        load_customers(config_for(data_config, csv))


def test_several_problems_are_reported_together(tmp_path, data_config):
    rows = with_cell(0, "Age", "old")
    rows[2][HEADER.index("Gender")] = "?"
    rows[3][HEADER.index("Spending Score (1-100)")] = "250"
    csv = write_table(tmp_path / "many.csv", HEADER, rows)
    with pytest.raises(DataValidationError) as excinfo:
        load_customers(config_for(data_config, csv))
    problems = excinfo.value.problems
    assert len(problems) == 3
    assert str(excinfo.value).count("\n") == 3  # a heading plus one line per problem
    # one problem per line, in schema order (gender comes before age in the schema)
    assert "'Gender' (gender)" in problems[0] and "line 4 " in problems[0]
    assert "'Age' (age)" in problems[1] and "line 2 " in problems[1]
    assert "'Spending Score (1-100)' (spending_score)" in problems[2]


def test_many_bad_rows_show_five_examples_and_a_count(tmp_path, data_config):
    rows = [[str(i + 1), "Female", "30", "50", "500"] for i in range(12)]
    csv = write_table(tmp_path / "lots.csv", HEADER, rows)
    with pytest.raises(DataValidationError) as excinfo:
        load_customers(config_for(data_config, csv))
    (problem,) = excinfo.value.problems
    assert "12 values above the maximum 100" in problem
    assert "line 6 " in problem and "line 7 " not in problem
    assert "and 7 more" in problem


def test_trailing_commas_on_every_line_are_accepted(tmp_path, data_config):
    """Spreadsheets often export a trailing delimiter; it must not shift the columns."""
    csv = tmp_path / "trailing.csv"
    lines = [",".join(HEADER) + ",", *(",".join(r) + "," for r in GOOD_ROWS)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    df, _ = load_customers(config_for(data_config, csv))
    assert df["customer_id"].tolist() == [r[0] for r in GOOD_ROWS]
    assert df["age"].tolist() == [float(r[HEADER.index("Age")]) for r in GOOD_ROWS]


def test_a_value_beyond_the_header_names_its_line(tmp_path, data_config):
    csv = tmp_path / "long.csv"
    # every row one field longer than the header (pandas would silently drop that field)
    rows = [[*r, ""] for r in GOOD_ROWS]
    rows[1][-1] = "stray"
    lines = [",".join(HEADER), *(",".join(r) for r in rows)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        DataValidationError, match=r"more fields than the 5 header columns, at line 3 "
    ):
        load_customers(config_for(data_config, csv))


def test_a_record_of_empty_fields_is_a_row_with_missing_values(tmp_path, data_config):
    """Unlike a blank line, ",,,," is a record: it must fail, not vanish from the count."""
    csv = tmp_path / "empty_record.csv"
    lines = [",".join(HEADER), ",".join(GOOD_ROWS[0]), "," * (len(HEADER) - 1)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="line 3"):
        load_customers(config_for(data_config, csv))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        (",".join(HEADER) + "\n", "no data rows"),
        (",".join(HEADER) + "\n1,Male,27,44,52\n2,Male,33,58,61,7,8\n", "parsable"),
        ("CustomerID,Age,Age\n1,2,3\n", "duplicated column"),
    ],
    ids=["zero-bytes", "blank-lines", "header-only", "ragged-row", "duplicate-header"],
)
def test_unusable_files_are_rejected(tmp_path, data_config, content, why):
    csv = tmp_path / "broken.csv"
    csv.write_text(content, encoding="utf-8")
    with pytest.raises(DataValidationError, match=why) as excinfo:
        load_customers(config_for(data_config, csv))
    assert "broken.csv" in str(excinfo.value)


def test_missing_file_says_how_to_create_it(tmp_path, data_config):
    csv = tmp_path / "nowhere" / "customers.csv"
    with pytest.raises(DataValidationError) as excinfo:
        load_customers(config_for(data_config, csv))
    msg = str(excinfo.value)
    assert "customers.csv" in msg
    assert "not found" in msg
    assert "custseg generate" in msg


def test_seed_file_loads(seed_csv, data_config):
    df, info = load_customers(config_for(data_config, seed_csv))
    assert info.n_rows == len(df) == 200
    assert (df["gender"] == "Female").sum() == 112
    assert info.sha256 == file_sha256(seed_csv)


# ------------------------------------------------------------------------- generation


def test_generator_is_deterministic_byte_for_byte(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "sub" / "b.csv"
    write_csv_atomic(generate_customers(300, seed=7), a)
    write_csv_atomic(generate_customers(300, seed=7), b)
    assert a.read_bytes() == b.read_bytes()
    assert file_sha256(a) == file_sha256(b)
    assert a.read_bytes().startswith((",".join(RAW_COLUMNS) + "\n").encode())
    assert b"\r" not in a.read_bytes()


@pytest.mark.parametrize(("seed_a", "seed_b"), [(0, 1), (42, 43)])
def test_generator_depends_on_seed(seed_a, seed_b):
    a = generate_customers(100, seed_a)
    b = generate_customers(100, seed_b)
    assert not a.equals(b)


@pytest.mark.parametrize("n_rows", [1, 7, 200, 5000])
def test_generated_table_matches_schema_and_loads(tmp_path, data_config, n_rows):
    df = generate_customers(n_rows, seed=42)
    assert list(df.columns) == list(RAW_COLUMNS)
    assert len(df) == n_rows
    assert df["CustomerID"].tolist() == list(range(1, n_rows + 1))
    assert set(df["Gender"]) <= {"Female", "Male"}
    assert df["Age"].between(18, 70).all()
    assert df["Annual Income (k$)"].between(15, 140).all()
    assert df["Spending Score (1-100)"].between(1, 99).all()

    csv = tmp_path / "gen.csv"
    write_csv_atomic(df, csv)
    loaded, info = load_customers(config_for(data_config, csv))
    assert info.n_rows == n_rows
    assert loaded["age"].tolist() == df["Age"].astype(float).tolist()


def test_generated_gender_share_is_realistic():
    df = generate_customers(20_000, seed=3)
    assert 0.54 < (df["Gender"] == "Female").mean() < 0.58


def test_generated_rows_are_interleaved():
    income = generate_customers(200, seed=42)["Annual Income (k$)"].to_numpy()
    # not sorted by segment: the first rows already span low and high incomes
    assert income[:40].min() < 40 < 75 < income[:40].max()


@pytest.mark.parametrize("seed", [42, 0])
def test_kmeans_recovers_five_segments(seed):
    df = generate_customers(200, seed=seed)
    x = StandardScaler().fit_transform(df[["Annual Income (k$)", "Spending Score (1-100)"]])
    labels = KMeans(n_clusters=5, n_init=10, random_state=0).fit_predict(x)
    sizes = np.bincount(labels, minlength=5)
    assert len(sizes) == 5
    assert sizes.min() >= 10


@pytest.mark.parametrize("n_rows", [0, -3])
def test_generator_rejects_empty_tables(n_rows):
    with pytest.raises(ValueError, match="n_rows"):
        generate_customers(n_rows, seed=0)


# ---------------------------------------------------------------------------- writing


def test_write_csv_atomic_replaces_and_leaves_no_temp(tmp_path):
    out = tmp_path / "deep" / "dir" / "t.csv"
    write_csv_atomic(pd.DataFrame({"a": [1, 2]}), out)
    write_csv_atomic(pd.DataFrame({"a": [3]}), out)
    assert out.read_text() == "a\n3\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.csv"]


@pytest.mark.parametrize("text", ["x\ry", "x\ny", "x\r\ny", 'say "hi", then', "plain"])
def test_write_csv_atomic_round_trips_line_breaks_in_text(tmp_path, text):
    """Any text cell survives a write and read, a lone carriage return included."""
    frame = pd.DataFrame({"customer_id": [text, "other"], "segment": [1, 2]})
    out = tmp_path / "t.csv"
    write_csv_atomic(frame, out)
    back = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_write_csv_atomic_cleans_up_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    out.write_text("old\n")

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_csv_atomic(pd.DataFrame({"a": [1]}), out)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


# -------------------------------------------------------------------------------- CLI


def test_cli_generate_writes_and_does_not_overwrite(tmp_path, capsys, data_config):
    out = tmp_path / "data" / "customers.csv"
    assert main(["generate", "--out", str(out)]) == 0
    first = out.read_bytes()
    printed = capsys.readouterr().out
    assert str(out) in printed and "200 rows" in printed
    assert file_sha256(out)[:12] in printed
    df, info = load_customers(config_for(data_config, out))
    assert info.n_rows == 200

    # same defaults -> same bytes as the library call
    ref = tmp_path / "ref.csv"
    write_csv_atomic(generate_customers(200, 42), ref)
    assert ref.read_bytes() == first

    assert main(["generate", "--out", str(out), "--rows", "50"]) == 0
    assert out.read_bytes() == first
    assert "already exists" in capsys.readouterr().out

    assert main(["generate", "--out", str(out), "--rows", "50", "--force"]) == 0
    assert out.read_bytes() != first
    assert len(pd.read_csv(out)) == 50


@pytest.mark.parametrize("argv", [[], ["generate", "--rows", "0"], ["nope"]])
def test_cli_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2


def gender_column(tmp_path: Path, data_config: DataConfig, spellings: list[str]):
    rows = [[str(i + 1), g, "30", "50", "50"] for i, g in enumerate(spellings)]
    return load_customers(config_for(data_config, write_table(tmp_path / "c.csv", HEADER, rows)))


@pytest.mark.parametrize(
    "spelling, read_as",
    [
        (" male ", "Male"),
        ("FEMALE", "Female"),
        ("female", "Female"),
        ("f", "Female"),
        (" M", "Male"),
        ("Woman", "Female"),
        ("Male", "Male"),
    ],
)
def test_unambiguous_gender_spellings_are_read_as_the_allowed_value(
    tmp_path, data_config, spelling, read_as
):
    df, info = gender_column(tmp_path, data_config, [spelling, "Female"])
    assert df["gender"].tolist() == [read_as, "Female"]
    assert info.normalised == ({"gender": 1} if spelling != read_as else {})


def test_normalised_values_are_counted_and_other_spellings_still_refused(tmp_path, data_config):
    df, info = gender_column(tmp_path, data_config, [" male ", "FEMALE", "f", "Male"])
    assert info.normalised == {"gender": 3}
    with pytest.raises(DataValidationError, match=r"1 value not among the allowed values.*'x'"):
        gender_column(tmp_path, data_config, ["male", "x"])
    with pytest.raises(DataValidationError, match="not among the allowed"):
        gender_column(tmp_path, data_config, ["fem", "Male"])  # a prefix is not a spelling


@pytest.mark.parametrize(
    "override, message",
    [
        ("+data.columns.gender.aliases.x=Other", "'Other' is not an allowed value"),
        ("data.columns.gender.allowed=[Female,FEMALE]", "differ only in letter case"),
        ("+data.columns.gender.aliases.male=Female", "is itself another allowed value"),
        ("+data.columns.age.aliases={x: Female}", "aliases need a categorical column"),
    ],
)
def test_ambiguous_spellings_are_a_config_error(override, message):
    from custseg.config import ConfigError

    with initialize_config_dir(config_dir=str(CONF_DIR.resolve()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[override])
    with pytest.raises(ConfigError, match=message):
        to_settings(cfg)


SEMICOLON_EXPORT = (
    "CustomerID;Gender;Age;Annual Income (k$);Spending Score (1-100)\n"
    "1;Male;27;44,5;52\n"
    "2;Female;21;16;81,25\n"
)


def test_a_semicolon_export_is_read_when_the_config_says_so(tmp_path, data_config):
    path = tmp_path / "export.csv"
    path.write_text(SEMICOLON_EXPORT, encoding="utf-8")
    config = dataclasses.replace(config_for(data_config, path), delimiter=";", decimal=",")
    df, _ = load_customers(config)
    assert df["annual_income"].tolist() == [44.5, 16.0]
    assert df["spending_score"].tolist() == [52.0, 81.25]


def test_a_semicolon_export_read_as_commas_says_what_was_detected(tmp_path, data_config):
    path = tmp_path / "export.csv"
    path.write_text(SEMICOLON_EXPORT, encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"looks ';'-delimited: set data.delimiter=';'"):
        load_customers(config_for(data_config, path))


def test_a_decimal_comma_is_detected(tmp_path, data_config):
    path = tmp_path / "export.csv"
    path.write_text(SEMICOLON_EXPORT, encoding="utf-8")
    config = dataclasses.replace(config_for(data_config, path), delimiter=";")
    with pytest.raises(DataValidationError, match=r"decimal comma: set data.decimal=','"):
        load_customers(config)


def test_thousands_separators_are_detected_and_read_when_configured(tmp_path, data_config):
    rows = [["1", "Male", "27", '"15,000"', "52"], ["2", "Female", "21", '"1,250,000"', "81"]]
    path = write_table(tmp_path / "c.csv", HEADER, rows)
    with pytest.raises(DataValidationError, match=r"thousands separators: set data.thousands=','"):
        load_customers(config_for(data_config, path))
    df, _ = load_customers(dataclasses.replace(config_for(data_config, path), thousands=","))
    assert df["annual_income"].tolist() == [15000.0, 1250000.0]


def test_a_cp1252_file_is_detected_and_read_when_configured(tmp_path, data_config):
    text = ",".join(HEADER) + "\nZoé-1,Female,27,44,52\nRenée-2,Male,30,60,40\n"
    path = tmp_path / "latin.csv"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(DataValidationError, match=r"reads as cp1252.*set data.encoding=cp1252"):
        load_customers(config_for(data_config, path))
    df, _ = load_customers(dataclasses.replace(config_for(data_config, path), encoding="cp1252"))
    assert df["customer_id"].tolist() == ["Zoé-1", "Renée-2"]


def test_an_unknown_encoding_is_a_clear_error(tmp_path, data_config):
    path = write_table(tmp_path / "c.csv", HEADER, GOOD_ROWS)
    with pytest.raises(DataValidationError, match="unknown data.encoding='klingon'"):
        load_customers(dataclasses.replace(config_for(data_config, path), encoding="klingon"))


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17g}"),
            st.floats(-1e6, 1e6).map(lambda f: f"{f:.3f}"),
            st.integers(-(10**20), 10**20).map(str),
            st.sampled_from(["+3", ".5", "1.", "007", "-0", "1E-3", "2e+8", "-.25"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.lists(
        st.sampled_from(["", "abc", "1,5", "inf", "-Infinity", "nan", "1_000", "0x10", "1e"]),
        max_size=2,
    ),
)
@hyp_settings(max_examples=200, deadline=None)
def test_to_number_reads_every_value_as_pandas_does(numbers: list[str], others: list[str]):
    """The Arrow fast path (plain decimal numbers only) and the pandas path agree."""
    values = pd.Series(numbers + others, dtype="str")
    expected = pd.to_numeric(values, errors="coerce").astype("float64")
    got = _to_number(values, DataConfig())
    pd.testing.assert_series_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))  # "-0" is 0.0
