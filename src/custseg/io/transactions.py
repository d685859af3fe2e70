"""Transaction logs: a deterministic generator of realistic ones (the embedded example
data of the RFM pipeline, so nothing is downloaded).

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

import numpy as np
import pandas as pd

#: raw headers of a generated log, in file order
TRANSACTION_COLUMNS = ("CustomerID", "OrderID", "Date", "Amount")

_ORDERS_PER_YEAR = (1.0, 1.0)  # log-normal (mean of log, sd of log) of the buying rate
_ORDER_VALUE = (3.5, 0.9)  # log-normal order value level per customer (about 33)
_ORDER_NOISE = 0.5  # sd of log of one order around its customer's level
_PEAK_MONTHS = (11, 12)
_PEAK_FACTOR = 1.8
_CHURN_SHARE = 0.35
_RETURN_SHARE = 0.06


def generate_transactions(
    n_customers: int, seed: int, start: str = "2024-07-01", end: str = "2026-06-30"
) -> pd.DataFrame:
    """A transaction log of ``n_customers`` customers between ``start`` and ``end``.

    Deterministic for a given seed (same rows, same order). Every customer has at least
    one order. Rows are sorted by date, then order id.
    """
    rng = np.random.default_rng(seed)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    days = (last - first).days + 1
    signup = rng.integers(0, days, n_customers)
    churned = rng.random(n_customers) < _CHURN_SHARE
    stop = np.where(churned, signup + rng.integers(30, days, n_customers), days)
    stop = np.minimum(stop, days)
    rate = rng.lognormal(*_ORDERS_PER_YEAR, n_customers) / 365.0  # orders per day
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
