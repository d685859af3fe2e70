"""Behavioural features from a transaction log: recency, frequency, monetary value (RFM).

Pure: a DataFrame of transactions in, one row per customer out. Reading and validating
the log is :mod:`custseg.storage` work; this module assumes typed columns (customer id as
text, ``date`` as ``datetime64``, ``amount`` as float).

The rules, chosen so that a rerun reproduces the table exactly:

- everything is relative to a configured **as-of date**, never "today"; transactions
  after it are left out (they had not happened yet);
- a **purchase** is a transaction with a positive amount; a **return** one with a
  negative amount, and a zero amount is neither;
- **frequency** counts purchases (distinct order ids when the log has them, else rows);
- **monetary_total** is net spend: purchases minus returns, floored at 0 (a customer
  cannot be worth less than nothing to a segmentation); **monetary_mean** is the mean
  purchase (per order when the log has order ids);
- **recency_days** is the number of days from the last purchase to the as-of date and
  **tenure_days** from the first purchase (returns do not make a customer recent);
- a customer with no purchase up to the as-of date (only returns, or only later
  transactions) has no RFM row; :class:`RfmTable` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: the columns of an RFM table, in order (``customer_id`` is the index)
RFM_COLUMNS = ("recency_days", "frequency", "monetary_total", "monetary_mean", "tenure_days")


@dataclass(frozen=True)
class RfmTable:
    """The RFM table of a log and what was left out of it.

    Attributes
    ----------
    table : DataFrame
        One row per customer with a purchase up to the as-of date, indexed by
        ``customer_id`` (sorted), columns :data:`RFM_COLUMNS`.
    after_as_of : int
        Transactions dated after the as-of date (left out).
    without_purchase : int
        Customers with transactions up to the as-of date but no purchase among them.
    """

    table: pd.DataFrame
    after_as_of: int
    without_purchase: int


def rfm_table(transactions: pd.DataFrame, as_of: pd.Timestamp | str) -> RfmTable:
    """Recency, frequency, monetary value and tenure of every customer as of ``as_of``.

    Parameters
    ----------
    transactions : DataFrame
        Columns ``customer_id``, ``date`` (datetime64; the time of day is ignored) and
        ``amount`` (float; negative for a return), optionally ``order_id``.
    as_of : Timestamp or str
        The day the features describe (inclusive), e.g. ``"2026-06-30"``.

    Returns
    -------
    RfmTable
        The table and the counts of what it leaves out.
    """
    day = pd.Timestamp(as_of).normalize()
    log = transactions.assign(date=pd.to_datetime(transactions["date"]).dt.normalize())
    future = log["date"] > day
    log = log.loc[~future]
    purchases = log.loc[log["amount"] > 0]
    buyers = purchases.groupby("customer_id", sort=True)
    if "order_id" in log.columns:
        frequency = buyers["order_id"].nunique()
        order_values = purchases.groupby(["customer_id", "order_id"])["amount"].sum()
        mean = order_values.groupby(level="customer_id").mean()
    else:
        frequency = buyers.size()
        mean = buyers["amount"].mean()
    net = log.groupby("customer_id")["amount"].sum().reindex(frequency.index)
    table = pd.DataFrame(
        {
            "recency_days": (day - buyers["date"].max()).dt.days,
            "frequency": frequency,
            "monetary_total": np.maximum(net, 0.0),
            "monetary_mean": mean,
            "tenure_days": (day - buyers["date"].min()).dt.days,
        }
    )
    table.index.name = "customer_id"
    table = table.astype(
        {"recency_days": "int64", "frequency": "int64", "tenure_days": "int64"}
    ).astype({"monetary_total": "float64", "monetary_mean": "float64"})
    without = log["customer_id"].nunique() - len(table)
    return RfmTable(table[list(RFM_COLUMNS)], int(future.sum()), int(without))


def rfm_scores(values: pd.Series, higher_is_better: bool = True, bins: int = 5) -> pd.Series:
    """Classic RFM scores: quantile bins ``1..bins``, ``bins`` the best.

    A customer's score is the bin of its rank among all customers; tied values share
    the score of their lowest rank, so the many one-order customers of a typical log
    all get frequency score 1 instead of being spread over bins by chance.
    ``higher_is_better`` False (recency) gives the smallest values the highest score.
    """
    ranked = values if higher_is_better else -values
    ranks = ranked.rank(method="min", pct=True)
    return np.ceil(ranks * bins).clip(1, bins).astype("int64")
