"""Feature sets, model settings, and the encoding (select, transform, scale, one-hot and
weight) of a table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from custseg.domain.segment_model import TRANSFORM_KINDS

if TYPE_CHECKING:  # scikit-learn is imported where an encoding is built: config stays light
    import pandas as pd
    from sklearn.compose import ColumnTransformer

SCALERS = ("none", "standard", "minmax", "robust")
#: per-column transforms of numeric columns, applied before the scaler
#: (:mod:`custseg.domain.transforms`)
TRANSFORMS = ("none", *TRANSFORM_KINDS)


def transforms_label(kinds: Mapping[str, str]) -> str:
    """Per-column transforms as one text (an MLflow parameter), e.g.
    ``"frequency=log1p,monetary_total=log1p"``, or ``"none"`` without any."""
    return ",".join(f"{c}={t}" for c, t in kinds.items()) or "none"


@dataclass
class FeatureSet:
    """A named list of columns to cluster on.

    Parameters
    ----------
    name : str
        Identifier used in run names and parameters, e.g. ``"income_spending"``.
    numeric : list of str
        Canonical names of numeric columns (scaled by the chosen scaler).
    categorical : list of str
        Canonical names of categorical columns (one-hot encoded and weighted, see
        :func:`categorical_scale`).
    transforms : dict of str to str
        Transform of numeric columns before the scaler, one of :data:`TRANSFORMS`
        (``{monetary_total: log1p}``); a column without one (or ``"none"``) is only
        scaled.
    """

    name: str = "???"
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    transforms: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """All input columns, numeric first."""
        return [*self.numeric, *self.categorical]

    @property
    def active_transforms(self) -> dict[str, str]:
        """Transformed numeric columns -> transform, in column order (no ``"none"``)."""
        return {
            c: self.transforms[c] for c in self.numeric if self.transforms.get(c, "none") != "none"
        }

    @property
    def transforms_label(self) -> str:
        """The transforms as one text, e.g. ``"frequency=log1p,monetary_total=log1p"``, or
        ``"none"`` (an MLflow parameter)."""
        return transforms_label(self.active_transforms)

    def problems(self) -> list[str]:
        """What is wrong with :attr:`transforms`, one phrase per key (empty when valid)."""
        found = [
            f"transforms.{c}={t!r}; choose one of {TRANSFORMS}"
            for c, t in self.transforms.items()
            if t not in TRANSFORMS
        ]
        found += [
            f"transforms.{c}: {c!r} is not a numeric column of the set {self.numeric}"
            for c in self.transforms
            if c not in self.numeric
        ]
        return found


#: clustering algorithm -> the ``init`` values it accepts
MODELS = {
    # scikit-learn's KMeans
    "kmeans": ("k-means++", "random"),
    # the kmodes package's KPrototypes (Huang 1997): means for numeric columns, modes for
    # categorical ones; without a categorical column it is k-means
    "kprototypes": ("Cao", "Huang", "random"),
}


@dataclass
class ModelParams:
    """The clustering algorithm and every one of its settings, explicit (never sklearn's
    implicit ``n_init='auto'``).

    Parameters
    ----------
    name : {"kmeans", "kprototypes"}
        The algorithm (:data:`MODELS`).
    tol, algorithm : float, str
        KMeans only (k-prototypes stops when no customer changes cluster).
    restarts_sample_size : int, optional
        KMeans on more rows than this: the ``n_init`` restarts run on a seeded sample of
        this many rows and the best is refined on every row (None: restarts on every row).
    """

    name: str = "kmeans"
    init: str = "k-means++"
    n_init: int = 10
    max_iter: int = 300
    tol: float = 1e-4
    algorithm: str = "lloyd"
    random_state: int = 42
    restarts_sample_size: int | None = None

    def problems(self) -> list[str]:
        """What is out of range, one phrase per key (empty when valid)."""
        if self.name not in MODELS:
            return [f"name={self.name!r}; choose one of {tuple(MODELS)}"]
        found = []
        if self.init not in MODELS[self.name]:
            found.append(f"init={self.init!r}; {self.name} accepts {MODELS[self.name]}")
        if self.n_init < 1 or self.max_iter < 1:
            found.append("n_init and max_iter must be >= 1")
        if self.restarts_sample_size is not None and self.restarts_sample_size < 1000:
            found.append(
                f"restarts_sample_size={self.restarts_sample_size}: give at least 1000 rows, "
                "or null for restarts on every row"
            )
        return found


def make_scaler(name: str):
    """Return a fresh scaler for ``name`` (``"none"`` gives a pass-through).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`SCALERS`.
    """
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    if name == "none":
        return "passthrough"
    if name == "standard":
        return StandardScaler()
    if name == "minmax":
        return MinMaxScaler()
    if name == "robust":
        return RobustScaler()
    raise ValueError(f"unknown scaler {name!r}; choose one of {', '.join(SCALERS)}")


def make_numeric_step(feature_set: FeatureSet, scaler: str):
    """A fresh step for the numeric columns of ``feature_set``: their transforms
    (:class:`~custseg.domain.transforms.ColumnTransforms`), then the scaler ``scaler``
    (:func:`make_scaler`); just the scaler when no column is transformed."""
    step = make_scaler(scaler)
    if not feature_set.active_transforms:
        return step
    from sklearn.pipeline import Pipeline

    from custseg.domain.transforms import ColumnTransforms

    kinds = [feature_set.transforms.get(c, "none") for c in feature_set.numeric]
    return Pipeline(
        [("transform", ColumnTransforms(list(feature_set.numeric), kinds)), ("scale", step)]
    )


def categorical_scale(
    table: pd.DataFrame, feature_set: FeatureSet, scaler: str, weight: float
) -> float:
    """The factor of the one-hot columns that gives categorical columns the weight ``weight``.

    Two customers who differ in one categorical column are ``weight`` typical numeric
    standard deviations apart: ``weight * s``, where ``s**2`` is the mean variance of the
    numeric columns after their transforms and scaling (on ``table``). A one-hot difference has squared length
    2, so the factor is ``weight * s / sqrt(2)``. The weight is thus the same under every
    scaler (with ``none`` the numeric columns keep their units and so does ``s``). Without
    numeric columns ``s`` is 1.
    """
    if not feature_set.categorical:
        return 1.0
    if not feature_set.numeric:
        return one_hot_factor(weight, 1.0)
    step = make_numeric_step(feature_set, scaler)
    values = table[feature_set.numeric].to_numpy(dtype=float)
    scaled = values if step == "passthrough" else step.fit_transform(values)
    return one_hot_factor(weight, float(np.mean(np.var(scaled, axis=0))))


def one_hot_factor(weight: float, mean_variance: float) -> float:
    """``weight * s / sqrt(2)`` with ``s**2 = mean_variance``, the mean variance of the
    encoded numeric columns (:func:`categorical_scale`; the Spark engine's too)."""
    return float(weight * np.sqrt(mean_variance) / np.sqrt(2.0))


def build_preprocess(feature_set: FeatureSet, scaler: str, scale: float = 1.0) -> ColumnTransformer:
    """An unfitted step that selects the feature columns of a customer table (any other
    column, such as the customer id, is dropped), transforms and scales the numeric ones
    (:func:`make_numeric_step`) and one-hot encodes the categorical ones, times ``scale``
    (:func:`categorical_scale`)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    if not feature_set.columns:
        raise ValueError(f"feature set {feature_set.name!r} has no columns")
    transformers = []
    if feature_set.numeric:
        step = make_numeric_step(feature_set, scaler)
        transformers.append(("numeric", step, list(feature_set.numeric)))
    if feature_set.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)
        transformers.append(("categorical", encoder, list(feature_set.categorical)))
    return ColumnTransformer(
        transformers,
        remainder="drop",
        verbose_feature_names_out=False,
        transformer_weights={"categorical": scale} if feature_set.categorical else None,
    )
