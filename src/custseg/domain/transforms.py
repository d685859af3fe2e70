"""Fitting the per-column transforms of a feature set (skew-aware preprocessing).

A feature set may transform some numeric columns before the scaler
(:attr:`custseg.domain.features.FeatureSet.transforms`): ``log1p`` tames a heavy tail,
``quantile`` replaces values by their uniform rank in ``[0, 1]``, ``rfm_score`` by the
classic RFM quintile score 1..5 (:func:`custseg.domain.rfm.rfm_scores`). Fitting one gives
plain data, the ``spec`` a :class:`~custseg.domain.segment_model.SegmentModel` stores and
applies with :func:`~custseg.domain.segment_model.apply_transform`; the scikit-learn step
:class:`ColumnTransforms` applies the same specs, so a fitted pipeline and its segment
model transform every value identically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from custseg.domain.segment_model import RFM_EDGES, apply_transform

#: most reference quantiles a ``quantile`` transform stores (as scikit-learn's default)
MAX_QUANTILES = 1000


def fit_log1p(column: str, values: np.ndarray) -> dict[str, Any]:
    """``{"kind": "log1p"}``, after checking that ``values`` are all ``>= 0``.

    Raises
    ------
    ValueError
        If a value is negative: names the column and its smallest value.
    """
    smallest = float(np.min(values))
    if smallest < 0:
        raise ValueError(
            f"column {column!r} has values below 0 (smallest {smallest:g}); the log1p "
            "transform needs values >= 0: choose another transform for it"
        )
    return {"kind": "log1p"}


def fit_quantile(values: np.ndarray) -> dict[str, Any]:
    """Reference quantiles of ``values`` at ``min(1000, n)`` evenly spaced ranks.

    As scikit-learn's ``QuantileTransformer(output_distribution="uniform")`` fitted on
    every row (no subsample, so nothing random): percentiles by linear interpolation,
    made non-decreasing.
    """
    x = np.asarray(values, dtype=float)
    grid = np.linspace(0.0, 1.0, min(MAX_QUANTILES, len(x)))
    quantiles = np.maximum.accumulate(np.percentile(x, grid * 100))
    return {"kind": "quantile", "quantiles": quantiles.tolist()}


def fit_rfm_score(values: np.ndarray) -> dict[str, Any]:
    """The edges of the classic 1..5 quintile scores of ``values`` (higher is better).

    With ``n`` values and ``m_j = (j - 1) * n // 5``, :func:`~custseg.domain.rfm.rfm_scores`
    gives score ``>= j`` exactly to the values with at least ``m_j`` smaller values, that
    is to the values above the ``m_j``-th smallest: that value is edge ``j`` (``None``
    when ``m_j`` is 0: every value reaches score ``j``). On ``values`` themselves the
    scores equal :func:`~custseg.domain.rfm.rfm_scores` (ties share their lowest rank).
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    steps = [j * n // (RFM_EDGES + 1) for j in range(1, RFM_EDGES + 1)]
    return {"kind": "rfm_score", "edges": [float(ordered[m - 1]) if m else None for m in steps]}


def fit_transform_spec(kind: str, column: str, values: np.ndarray) -> dict[str, Any] | None:
    """The fitted transform ``kind`` of one column (``None`` for ``"none"``).

    Raises
    ------
    ValueError
        If ``kind`` is unknown, or ``log1p`` meets a negative value.
    """
    if kind == "none":
        return None
    if kind == "log1p":
        return fit_log1p(column, values)
    if kind == "quantile":
        return fit_quantile(values)
    if kind == "rfm_score":
        return fit_rfm_score(values)
    raise ValueError(f"unknown transform {kind!r} of column {column!r}")


class ColumnTransforms(TransformerMixin, BaseEstimator):
    """Scikit-learn step: column ``i`` of its input through transform ``kinds[i]``.

    Parameters
    ----------
    columns : list of str
        Names of the input columns, in order (for messages and feature names).
    kinds : list of str
        Transform of each column (:data:`~custseg.domain.features.TRANSFORMS`).

    Attributes
    ----------
    specs_ : dict of str to dict
        Fitted transform of each transformed column (as
        :attr:`~custseg.domain.segment_model.SegmentModel.transforms`).
    """

    def __init__(self, columns: list[str], kinds: list[str]) -> None:
        self.columns = columns
        self.kinds = kinds

    def fit(self, X: Any, y: Any = None) -> ColumnTransforms:
        values = np.asarray(X, dtype=float)
        fitted = {
            column: fit_transform_spec(kind, column, values[:, i])
            for i, (column, kind) in enumerate(zip(self.columns, self.kinds, strict=True))
        }
        self.specs_ = {column: spec for column, spec in fitted.items() if spec is not None}
        return self

    def transform(self, X: Any) -> np.ndarray:
        out = np.array(X, dtype=float)
        for i, column in enumerate(self.columns):
            if column in self.specs_:
                out[:, i] = apply_transform(self.specs_[column], out[:, i])
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.columns, dtype=object)
