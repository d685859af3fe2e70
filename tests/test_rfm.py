"""RFM features of a transaction log, by hand-computed cases."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from custseg.config import DataConfig
from custseg.domain.rfm import RFM_COLUMNS, rfm_scores, rfm_table
from custseg.storage.data import DataValidationError, file_sha256, write_csv_atomic
from custseg.storage.transactions import (
    TRANSACTION_COLUMNS,
    TransactionFormat,
    generate_transactions,
    read_transactions,
)

AS_OF = "2026-06-30"


def small_log(with_orders: bool = True) -> pd.DataFrame:
    rows = [
        # customer, date, amount, order
        ("c1", "2026-06-01 09:30", 100.0, "A"),
        ("c1", "2026-06-20", 50.0, "B"),
        ("c1", "2026-06-25", -30.0, "B"),  # a return: net, but not recent
        ("c1", "2026-06-29", 0.0, "Z"),  # neither a purchase nor a return
        ("c2", "2026-01-15", 20.0, "C"),  # two lines of one order
        ("c2", "2026-01-15", 10.0, "C"),
        ("c3", "2026-03-01", -10.0, "D"),  # only a return: no RFM row
        ("c4", "2026-07-05", 40.0, "E"),  # after the as-of date
        ("c5", "2026-06-10", 40.0, "F"),
        ("c5", "2026-06-12", -60.0, "F"),  # returned more than bought: net 0
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "order_id"])
    log["date"] = pd.to_datetime(log["date"], format="ISO8601")
    return log if with_orders else log.drop(columns="order_id")


def test_rfm_of_a_small_log_by_hand():
    found = rfm_table(small_log(), AS_OF)
    expected = pd.DataFrame(
        {
            # c1: last purchase June 20, first June 1; c2: January 15 (16+28+31+30+31+30)
            "recency_days": [10, 166, 20],
            "frequency": [2, 1, 1],  # orders, not lines: c2's two lines are one order
            "monetary_total": [120.0, 30.0, 0.0],  # net of returns, floored at 0
            "monetary_mean": [75.0, 30.0, 40.0],  # per order
            "tenure_days": [29, 166, 20],
        },
        index=pd.Index(["c1", "c2", "c5"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(found.table, expected)
    assert list(found.table.columns) == list(RFM_COLUMNS)
    assert (found.after_as_of, found.without_purchase) == (1, 1)  # c4's order; c3


def test_without_order_ids_every_purchase_line_counts():
    table = rfm_table(small_log(with_orders=False), AS_OF).table
    assert table.loc["c2", "frequency"] == 2
    assert table.loc["c2", "monetary_mean"] == 15.0  # per line
    assert table.loc["c1", "frequency"] == 2


def test_the_as_of_date_decides_and_reruns_are_identical():
    log = small_log()
    first = rfm_table(log, AS_OF).table
    shuffled = log.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(rfm_table(shuffled, AS_OF).table, first)
    later = rfm_table(log, "2026-07-10")
    assert later.after_as_of == 0
    assert later.table.loc["c1", "recency_days"] == 20  # ten days later, ten days more
    assert later.table.loc["c4", "frequency"] == 1  # c4's order has happened by then
    earlier = rfm_table(log, "2026-06-15").table
    assert "c1" in earlier.index and earlier.loc["c1", "frequency"] == 1  # order B not yet


@pytest.mark.parametrize(
    ("values", "higher_is_better", "scores"),
    [
        (list(range(1, 11)), True, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
        (list(range(1, 11)), False, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]),  # recency: recent is 5
        ([7.0] * 6, True, [1] * 6),  # all tied: one score, that of the lowest rank
        ([1, 1, 1, 1, 9], True, [1, 1, 1, 1, 5]),  # the one-order crowd: all score 1
        # recency, four customers: the two most recent share their lowest rank (75th
        # percentile: 4); the least recent is at the 25th percentile (2)
        ([3, 1, 1, 2], False, [2, 4, 4, 3]),
    ],
)
def test_rfm_scores_are_quintiles_best_high(values, higher_is_better, scores):
    assert rfm_scores(pd.Series(values), higher_is_better).tolist() == scores


# ------------------------------------------------------------------------ generator


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return generate_transactions(1500, seed=7)


def as_log(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": raw["CustomerID"],
            "order_id": raw["OrderID"],
            "date": pd.to_datetime(raw["Date"], format="%Y-%m-%d"),
            "amount": raw["Amount"],
        }
    )


def test_the_generator_is_deterministic_and_well_formed(generated):
    pd.testing.assert_frame_equal(generate_transactions(1500, seed=7), generated)
    assert not generate_transactions(1500, seed=8).equals(generated)
    assert list(generated.columns) == list(TRANSACTION_COLUMNS)
    assert generated["Date"].between("2024-07-01", "2026-06-30").all()
    assert generated["Date"].is_monotonic_increasing
    # every customer bought at least once: an RFM row each, nothing left out
    found = rfm_table(as_log(generated), "2026-06-30")
    assert len(found.table) == generated["CustomerID"].nunique() == 1500
    assert (found.after_as_of, found.without_purchase) == (0, 0)


def test_generated_returns_belong_to_earlier_orders_of_the_same_customer(generated):
    returns = generated[generated["Amount"] < 0]
    purchases = generated[generated["Amount"] > 0].set_index("OrderID")
    assert 0.02 < len(returns) / len(purchases) < 0.1
    bought = purchases.loc[returns["OrderID"]]
    assert (bought["CustomerID"].to_numpy() == returns["CustomerID"].to_numpy()).all()
    assert (bought["Date"].to_numpy() <= returns["Date"].to_numpy()).all()
    assert (-returns["Amount"].to_numpy() <= bought["Amount"].to_numpy()).all()


def test_generated_customers_look_like_real_ones(generated):
    table = rfm_table(as_log(generated), "2026-06-30").table
    spend = table["monetary_total"]
    assert spend.max() > 50 * spend.median()  # heavily skewed spend
    assert (table["frequency"] == 1).mean() > 0.2  # many one-order customers
    assert (table["recency_days"] > 180).mean() > 0.15  # lapsed (churned) customers
    # seasonality: more orders a day in November-December than in September-October
    days = pd.to_datetime(generated.loc[generated["Amount"] > 0, "Date"])
    year = days[(days >= "2025-09-01") & (days < "2026-01-01")]
    peak = year.dt.month.isin([11, 12])
    assert peak.sum() / 61 > 1.3 * (~peak).sum() / 61


# --------------------------------------------------------------------------- reader


def test_a_generated_log_reads_back_to_the_same_rfm(generated, tmp_path):
    path = tmp_path / "transactions.csv"
    write_csv_atomic(generated, path)
    log, sha256 = read_transactions(path, TransactionFormat())
    assert sha256 == file_sha256(path)
    assert list(log.columns) == ["customer_id", "order_id", "date", "amount"]
    assert str(log["date"].dtype).startswith("datetime64") and log["amount"].dtype == float
    pd.testing.assert_frame_equal(
        rfm_table(log, "2026-06-30").table, rfm_table(as_log(generated), "2026-06-30").table
    )


def test_the_format_names_columns_dates_and_numbers(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Kunde;Datum;Betrag\nk1;30.06.2026;1.250,50\nk1;01.06.2026;-50\n")
    fmt = TransactionFormat(
        customer_id="Kunde", date="Datum", amount="Betrag", order_id=None,
        date_format="%d.%m.%Y", csv=DataConfig(delimiter=";", decimal=",", thousands="."),
    )  # fmt: skip
    log, _ = read_transactions(path, fmt)
    assert log["amount"].tolist() == [1250.5, -50.0]
    assert log["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-06-30", "2026-06-01"]
    assert "order_id" not in log.columns


HEADER = "CustomerID,OrderID,Date,Amount\n"


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (
            "c1,o1,2026-02-30,10\nc2,o2,yesterday,5\n",
            ["column 'Date': 2 values not a date as '%Y-%m-%d' at line 2 ('2026-02-30'), "
             "line 3 ('yesterday')"],
        ),
        (
            "c1,o1,2026-01-01 10:15,10\n",
            ["column 'Date': 1 value not a date as '%Y-%m-%d' (they carry a time of day: add it "
             "to transactions.date_format, e.g. '%Y-%m-%d %H:%M:%S') at line 2 ('2026-01-01 "
             "10:15')"],
        ),
        (
            "c1,o1,2026-01-01,ten\nc1,o2,2026-01-02,inf\n",
            ["column 'Amount': 2 amounts not a finite number at line 2 ('ten'), line 3 ('inf')"],
        ),
        (
            " ,o1,2026-01-01,10\nc1,,2026-01-02,3\n",
            ["column 'CustomerID': 1 missing value at line 2 (' ')",
             "column 'OrderID': 1 missing value at line 3 ('')"],
        ),
    ],
)  # fmt: skip
def test_bad_logs_name_the_column_lines_and_values(tmp_path, body, messages):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(DataValidationError) as error:
        read_transactions(path, TransactionFormat())
    assert error.value.problems == messages


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "CustomerID,Date\nc1,2026-01-01\n",
            "column(s) ['Amount', 'OrderID'] not found; the header",
        ),
        (
            "CustomerID,Date\nc1,2026-01-01\n",
            "set transactions.amount, transactions.order_id to the log's header (or null: the "
            "log has no order ids)",
        ),
        (HEADER, "the file has a header but no transactions"),
        (None, "invalid transaction log"),
        ("Kunde;Datum\nk1;2026-01-01\n", "column(s) ['CustomerID', 'Date', 'Amount', 'OrderID']"),
        ("CustomerID;OrderID;Date;Amount\nc1;o1;2026-01-01;5\n", "the header looks ';'-delimited"),
    ],
)
def test_a_log_that_is_not_one_is_refused(tmp_path, text, message):
    path = tmp_path / "log.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataValidationError, match=re.escape(message)):
        read_transactions(path, TransactionFormat())


# ------------------------------------------------------------------- the custseg-rfm stage


def rfm_settings(tmp_path, log_path, **changes):
    """The RFM pipeline's settings with its files in ``tmp_path``."""
    from dataclasses import replace

    from conftest import compose_settings

    settings = compose_settings(["pipeline=transactions"])
    settings.transactions = replace(settings.transactions, path=str(log_path), **changes)
    settings.data = replace(settings.data, path=str(tmp_path / "rfm" / "customers.csv"))
    return settings


def test_the_stage_writes_the_customer_table_later_stages_read(tmp_path, monkeypatch):
    from custseg.pipeline.rfm import RFM_METRICS, run_rfm
    from custseg.storage.data import load_customers

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.csv"
    write_csv_atomic(generate_transactions(300, seed=5), log)
    settings = rfm_settings(tmp_path, log)
    summary = run_rfm(settings)
    first = file_sha256(settings.data.path)
    # the customer table passes the Mall pipeline's own validation, under conf/data/rfm.yaml
    table, info = load_customers(settings.data)
    assert summary["n_customers"] == len(table) == 300
    assert list(table.columns) == ["customer_id", *RFM_COLUMNS]
    raw = read_transactions(log, TransactionFormat())[0]
    expected = rfm_table(raw, AS_OF).table.reset_index()
    pd.testing.assert_frame_equal(
        table[["customer_id", "recency_days", "frequency"]],
        expected[["customer_id", "recency_days", "frequency"]],
        check_dtype=False,
    )
    assert (tmp_path / RFM_METRICS).is_file()
    # the as-of date is config, not today: a rerun writes the same bytes
    run_rfm(settings)
    assert file_sha256(settings.data.path) == first


def test_an_as_of_date_before_the_log_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    from custseg.pipeline.rfm import RFM_METRICS, run_rfm

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.csv"
    write_csv_atomic(generate_transactions(20, seed=1), log)
    settings = rfm_settings(tmp_path, log, as_of="2020-01-01")
    with pytest.raises(
        DataValidationError, match=r"no customer bought on or before the as-of date 2020-01-01"
    ):
        run_rfm(settings)
    assert not Path(settings.data.path).exists() and not (tmp_path / RFM_METRICS).exists()


def test_the_stage_refuses_the_mall_pipeline():
    from custseg.config import ConfigError
    from custseg.pipeline.rfm import run_rfm

    from conftest import compose_settings

    with pytest.raises(ConfigError, match="pipeline=transactions"):
        run_rfm(compose_settings())
