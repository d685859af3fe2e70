"""Transaction logs: reading and validating one, and a deterministic generator of
realistic ones (the embedded example data of the RFM pipeline, so nothing is downloaded).

A log has one row per order line: ``CustomerID``, ``OrderID``, ``Date`` (``YYYY-MM-DD``)
and ``Amount`` (negative for a return). The generated customers behave as real ones do:

- they sign up at any time in the window and buy at a rate of their own (log-normal:
  a few very frequent buyers, many occasional ones);
- order values are log-normal around a per-customer level, so spend is heavily skewed
  (the biggest customers spend hundreds of times the median);
- November and December bring more orders (seasonality);
- about a third churn: they stop buying at some date and never come back;
- some orders are partly returned a few days later (a negative line of the same order).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.config import ColumnSpec, ConfigError, DataConfig, TransactionsConfig
from custseg.domain.rfm import RFM_COLUMNS, RfmTable, rfm_table
from custseg.storage.data import DataValidationError, _count, _to_number, _where, parse_csv

#: what a transaction log is called in error messages
LOG = "transaction log"
#: raw headers of a generated log, in file order
TRANSACTION_COLUMNS = ("CustomerID", "OrderID", "Date", "Amount")


@dataclass(frozen=True)
class TransactionFormat:
    """How a transaction log is written: the raw header of each column, the date format
    and the CSV format (delimiter, decimal mark, thousands separator, encoding).

    ``order_id`` None: the log has no order ids (every purchase line is an order).
    """

    customer_id: str = "CustomerID"
    date: str = "Date"
    amount: str = "Amount"
    order_id: str | None = "OrderID"
    date_format: str = "%Y-%m-%d"
    csv: DataConfig = field(default_factory=DataConfig)


def log_format(config: TransactionsConfig) -> TransactionFormat:
    """The format of the log ``config`` describes (``conf/transactions/``)."""
    csv = DataConfig(
        delimiter=config.delimiter,
        decimal=config.decimal,
        thousands=config.thousands,
        encoding=config.encoding,
    )
    return TransactionFormat(
        customer_id=config.customer_id,
        date=config.date,
        amount=config.amount,
        order_id=config.order_id,
        date_format=config.date_format,
        csv=csv,
    )


def as_customer_table(rfm: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """An RFM table (indexed by customer id) as the customer table ``data`` describes.

    Columns in the order of ``data.columns``, under their ``source`` headers, so the
    later stages read it as any customer table; money rounded to 6 decimals (sums of
    amounts in cents carry float noise in the 15th digit, which would only make the
    file look unstable).

    Raises
    ------
    ConfigError
        If ``data.columns`` names a column an RFM table does not have.
    """
    id_column = data.id_column
    values = rfm.round({"monetary_total": 6, "monetary_mean": 6}).reset_index()
    values = values.rename(columns={"customer_id": id_column or "customer_id"})
    unknown = [c for c in data.columns if c != id_column and c not in RFM_COLUMNS]
    if unknown:
        raise ConfigError(
            f"data.columns {unknown} are not RFM columns; an RFM customer table has "
            f"{list(RFM_COLUMNS)} (see conf/data/rfm.yaml)"
        )
    table = values[list(data.columns)]
    return table.rename(columns={name: spec.source for name, spec in data.columns.items()})


@dataclass(frozen=True)
class LogCustomers:
    """The customer table of a transaction log, and what it was derived from.

    Attributes
    ----------
    table : DataFrame
        One row per customer, as :func:`as_customer_table` writes it (source headers).
    rfm : RfmTable
        The RFM values and what the as-of date and the return rule left out.
    n_transactions : int
        Lines of the log.
    as_of : str
        The day the values describe (``YYYY-MM-DD``).
    """

    table: pd.DataFrame
    rfm: RfmTable
    n_transactions: int
    as_of: str

    def summary(self) -> dict:
        """The counts ``custseg-rfm`` writes to ``metrics/rfm.json``."""
        return {
            "as_of": self.as_of,
            "n_transactions": self.n_transactions,
            "n_customers": len(self.table),
            "after_as_of": self.rfm.after_as_of,
            "without_purchase": self.rfm.without_purchase,
        }


def log_customers(
    path: str | Path, config: TransactionsConfig, data: DataConfig, as_of: str | None = None
) -> LogCustomers:
    """Read and validate the log at ``path``; its customers as of ``as_of``, as the
    customer table ``data`` describes (the one code path of ``custseg-rfm`` and of
    scoring a log with ``custseg-predict``).

    Parameters
    ----------
    as_of : str, optional
        ``YYYY-MM-DD``; None: the log's last date.

    Raises
    ------
    DataValidationError
        When the log breaks its format, or no customer bought up to ``as_of``.
    """
    log, _ = read_transactions(path, log_format(config))
    day = as_of or log["date"].max().strftime("%Y-%m-%d")
    rfm = rfm_table(log, day)
    if rfm.table.empty:
        first, last = log["date"].min().date(), log["date"].max().date()
        raise DataValidationError(
            str(path),
            [
                f"no customer bought on or before the as-of date {day}; the log runs from {first} to {last}"
            ],
            LOG,
        )
    return LogCustomers(as_customer_table(rfm.table, data), rfm, len(log), day)


def read_transactions(path: str | Path, fmt: TransactionFormat) -> tuple[pd.DataFrame, str]:
    """Read and validate a transaction log; the typed log and the SHA-256 of the file.

    Returns
    -------
    log : DataFrame
        Columns ``customer_id`` (text), ``date`` (datetime64), ``amount`` (float; a
        negative amount is a return, see :mod:`custseg.domain.rfm`) and, when the format
        has one, ``order_id`` (text); one row per file line, in file order.
    sha256 : str
        Hash of the file's bytes.

    Raises
    ------
    DataValidationError
        If the file is missing, not a CSV, lacks a column, or has a missing id, a date
        not in ``date_format`` or an amount that is not a finite number; every problem
        is listed with the file lines of (up to five) offending rows.
    """
    path = str(path)
    if not Path(path).is_file():
        raise DataValidationError(path, [f"file not found: {path!r}"], LOG)
    data = Path(path).read_bytes()
    wanted = {"customer_id": fmt.customer_id, "date": fmt.date, "amount": fmt.amount}
    if fmt.order_id is not None:
        wanted["order_id"] = fmt.order_id
    # the log's headers, so that a header in another delimiter is recognised and named
    known = {name: ColumnSpec(source=source) for name, source in wanted.items()}
    try:
        raw = parse_csv(path, data, replace(fmt.csv, columns=known))
    except DataValidationError as exc:
        raise DataValidationError(path, exc.problems, LOG) from None
    absent = {name: source for name, source in wanted.items() if source not in raw.columns}
    if absent:
        header = list(map(str, raw.columns))
        keys = ", ".join(f"transactions.{name}" for name in absent)
        hint = " (or null: the log has no order ids)" if "order_id" in absent else ""
        raise DataValidationError(
            path,
            [
                f"column(s) {list(absent.values())} not found; the header has {header}: set "
                f"{keys} to the log's header{hint}"
            ],
            LOG,
        )
    if raw.empty:
        raise DataValidationError(path, ["the file has a header but no transactions"], LOG)
    lines = pd.Series(raw.index.to_numpy() + 2, index=raw.index)
    problems: list[str] = []

    def check(bad: pd.Series, source: str, noun: str, detail: str = "") -> None:
        if bad.any():
            where = _where(lines[bad], raw.loc[bad, source])
            problems.append(f"column {source!r}: {_count(bad.sum(), noun)}{detail} at {where}")

    log = pd.DataFrame(index=raw.index)
    for name in ("customer_id", "order_id"):
        if name in wanted:
            values = raw[wanted[name]].str.strip()
            check(values == "", wanted[name], "missing value")
            log[name] = values
    text = raw[fmt.date].str.strip()
    dates = pd.to_datetime(text, format=fmt.date_format, errors="coerce")
    timed = dates.isna() & text.str.contains(r"\d[ T]\d", regex=True)
    hint = (
        " (they carry a time of day: add it to transactions.date_format, e.g. '%Y-%m-%d %H:%M:%S')"
        if timed.any() and "%H" not in fmt.date_format
        else ""
    )
    check(dates.isna(), fmt.date, "value", f" not a date as {fmt.date_format!r}{hint}")
    amounts = _to_number(raw[fmt.amount].str.strip(), fmt.csv)  # decimal mark, thousands
    check(~np.isfinite(amounts), fmt.amount, "amount", " not a finite number")
    if problems:
        raise DataValidationError(path, problems, LOG)
    log["date"], log["amount"] = dates, amounts.astype("float64")
    return log.reset_index(drop=True), hashlib.sha256(data).hexdigest()


_ORDERS_PER_YEAR = (1.0, 1.0)  # log-normal (mean of log, sd of log) of the buying rate
_ORDER_VALUE = (3.5, 0.9)  # log-normal order value level per customer (about 33)
_ORDER_NOISE = 0.5  # sd of log of one order around its customer's level
_PEAK_MONTHS = (11, 12)
_PEAK_FACTOR = 1.8
_CHURN_SHARE = 0.35
_RETURN_SHARE = 0.06


def generate_transactions(
    n_customers: int,
    seed: int,
    start: str = "2024-07-01",
    end: str = "2026-06-30",
    orders_per_year: tuple[float, float] = _ORDERS_PER_YEAR,
    churn_share: float = _CHURN_SHARE,
) -> pd.DataFrame:
    """A transaction log of ``n_customers`` customers between ``start`` and ``end``.

    Deterministic for a given seed (same rows, same order). Every customer has at least
    one order. Rows are sorted by date, then order id. ``orders_per_year`` (mean and sd
    of the log of each customer's buying rate) and ``churn_share`` (customers who stop
    buying) shape the log: e.g. ``(-1.5, 0.8)`` gives mostly one-time buyers, ``(2.0,
    0.5)`` with a small churn share mostly loyal ones.
    """
    rng = np.random.default_rng(seed)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    days = (last - first).days + 1
    signup = rng.integers(0, days, n_customers)
    churned = rng.random(n_customers) < churn_share
    stop = np.where(churned, signup + rng.integers(30, days, n_customers), days)
    stop = np.minimum(stop, days)
    rate = rng.lognormal(*orders_per_year, n_customers) / 365.0  # orders per day
    level = rng.lognormal(*_ORDER_VALUE, n_customers)
    weight = _season_weights(first, days)

    customers, order_days = [], []
    for c in range(n_customers):
        active = np.arange(signup[c], stop[c])
        expected = rate[c] * weight[active]
        hits = active[rng.random(len(active)) < expected]
        if len(hits) == 0:  # a customer is someone who bought once
            hits = np.array([signup[c]])
        customers.append(np.full(len(hits), c))
        order_days.append(hits)
    who = np.concatenate(customers)
    when = np.concatenate(order_days)
    amount = np.round(level[who] * rng.lognormal(0.0, _ORDER_NOISE, len(who)), 2)
    amount = np.maximum(amount, 0.01)
    orders = pd.DataFrame({"customer": who, "day": when, "amount": amount})
    orders = orders.sort_values(["day", "customer"], kind="stable").reset_index(drop=True)
    orders["order"] = np.arange(1, len(orders) + 1)
    lines = pd.concat([orders, _returns(orders, rng, days)], ignore_index=True)
    lines = lines.sort_values(["day", "order", "amount"], ascending=[True, True, False])
    return pd.DataFrame(
        {
            "CustomerID": [f"C{c + 1:06d}" for c in lines["customer"]],
            "OrderID": [f"O{o:07d}" for o in lines["order"]],
            "Date": (first + pd.to_timedelta(lines["day"], unit="D")).dt.strftime("%Y-%m-%d"),
            "Amount": lines["amount"].round(2).to_numpy(),
        }
    ).reset_index(drop=True)


def _season_weights(first: pd.Timestamp, days: int) -> np.ndarray:
    """Relative buying rate of each day: :data:`_PEAK_FACTOR` in the peak months."""
    months = (first + pd.to_timedelta(np.arange(days), unit="D")).month
    peak = np.isin(months, _PEAK_MONTHS)
    return np.where(peak, _PEAK_FACTOR, 1.0)


def _returns(orders: pd.DataFrame, rng: np.random.Generator, days: int) -> pd.DataFrame:
    """Partial returns of some orders, 2-14 days later (within the window)."""
    returned = orders.loc[rng.random(len(orders)) < _RETURN_SHARE].copy()
    returned["day"] = np.minimum(returned["day"] + rng.integers(2, 15, len(returned)), days - 1)
    share = rng.uniform(0.2, 1.0, len(returned))
    returned["amount"] = -np.round(returned["amount"] * share, 2)
    return returned
