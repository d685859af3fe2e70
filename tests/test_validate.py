"""``custseg-validate``: flat data metrics for DVC, the per-column profile next to them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from custseg.pipeline.validate import DATA_METRICS, DATA_PROFILE, run_validate
from custseg.storage.data import DataValidationError, load_customers, load_table

from conftest import compose_settings


def test_metrics_are_flat_headline_numbers_and_the_profile_holds_the_columns(
    tmp_path, monkeypatch, generated_csv
):
    monkeypatch.chdir(tmp_path)  # the stage writes metrics/ relative to the project root
    settings = compose_settings([f"data.path={generated_csv}"])
    summary, _ = run_validate(settings)

    # one value per key, so `dvc metrics show` gives data.json one narrow column
    metrics = json.loads(DATA_METRICS.read_text())
    assert metrics == summary == {"n_rows": 200}

    table, _ = load_customers(settings.data)
    profile = json.loads(DATA_PROFILE.read_text())
    assert set(profile) == {"numeric", "categories", "normalised"}
    assert profile["normalised"] == {}  # generated data is spelled as allowed
    for column in ("age", "annual_income", "spending_score"):
        stats = profile["numeric"][column]
        assert stats["min"] == table[column].min()
        assert stats["max"] == table[column].max()
        assert stats["mean"] == pytest.approx(table[column].mean(), abs=1e-6)
    gender = profile["categories"]["gender"]
    assert set(gender) <= {"Female", "Male"}
    assert sum(gender.values()) == 200
    assert gender["Female"] == (table["gender"] == "Female").sum()


def test_invalid_data_writes_neither_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n1,Male,27,44,181\n"
    )
    with pytest.raises(DataValidationError, match="181"):
        run_validate(compose_settings([f"data.path={bad}"]))
    assert not (tmp_path / "metrics").exists()
    assert not (tmp_path / "validated").exists()


def test_later_stages_read_the_validated_table_while_it_matches_data_and_schema(
    tmp_path, monkeypatch, generated_csv
):
    """The Parquet hand-off gives exactly the validated CSV's table, and is ignored (the
    CSV is validated again) once the data or the schema changed after validation."""
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "customers.csv"
    csv.write_bytes(Path(generated_csv).read_bytes())
    settings = compose_settings([f"data.path={csv}"])
    run_validate(settings)
    parquet = Path(settings.data.validated)
    first = parquet.read_bytes()

    expected, expected_info = load_customers(settings.data)
    table, info = load_table(settings.data)
    pd.testing.assert_frame_equal(table, expected)
    assert info == expected_info
    run_validate(settings)
    assert parquet.read_bytes() == first  # same data, same bytes (a DVC output)

    # an unreadable one is not either
    parquet.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(load_table(settings.data)[0], expected)
    # a stale Parquet (its data or schema changed since) is never read
    parquet.write_bytes(first)
    narrower = compose_settings([f"data.path={csv}", "data.columns.age.max=60"])
    with pytest.raises(DataValidationError, match="age"):
        load_table(narrower.data)
    # ... or the way the file is read
    as_semicolons = compose_settings([f"data.path={csv}", "data.delimiter=';'"])
    with pytest.raises(DataValidationError, match="set data.delimiter=','"):
        load_table(as_semicolons.data)
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # one customer fewer
    table, info = load_table(settings.data)
    assert len(table) == info.n_rows == 199


def test_entry_point_prints_one_line_and_leaves_no_hydra_files(tmp_path, generated_csv):
    """As DVC runs it: one summary line, nothing on stderr, and no outputs/<date>/<time>,
    .hydra/ or .log file beside the metrics."""
    script = Path(sys.executable).parent / "custseg-validate"
    done = subprocess.run(
        [str(script), f"data.path={generated_csv}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    validated = "validated/customers.parquet"
    assert done.stdout.splitlines() == [
        f"200 customers valid; table in {validated}, counts in {DATA_METRICS}, "
        f"column profile in {DATA_PROFILE}"
    ]
    assert done.stderr == ""
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    expected = ["customers.csv", "metrics", str(DATA_METRICS), str(DATA_PROFILE), "validated"]
    assert written == sorted([*expected, validated])


def test_messy_gender_spellings_are_read_and_counted_in_the_profile(tmp_path, monkeypatch):
    """An export with ' male ', 'FEMALE', 'f' validates; the profile says how many values
    were read under their allowed spelling, and the validated table holds only those."""
    monkeypatch.chdir(tmp_path)
    spellings = [" male ", "FEMALE", "f", "Male", "m", "Female"]
    lines = ["CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"]
    lines += [f"{i},{g},30,50,50" for i, g in enumerate(spellings, start=1)]
    csv = tmp_path / "messy.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_validate(compose_settings([f"data.path={csv}"]))
    profile = json.loads(DATA_PROFILE.read_text())
    assert profile["normalised"] == {"gender": 4}
    assert profile["categories"]["gender"] == {"Female": 3, "Male": 3}
