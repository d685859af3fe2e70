"""Feature sets and the sklearn pipeline (select/encode -> scale -> KMeans) built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # scikit-learn is imported where a pipeline is built: config stays light
    from sklearn.pipeline import Pipeline

SCALERS = ("none", "standard", "minmax", "robust")


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
        Canonical names of categorical columns (one-hot encoded, not scaled).
    """

    name: str = "???"
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """All input columns, numeric first."""
        return [*self.numeric, *self.categorical]


@dataclass
class KMeansParams:
    """Every KMeans setting, explicit (never sklearn's implicit ``n_init='auto'``)."""

    init: str = "k-means++"
    n_init: int = 10
    max_iter: int = 300
    tol: float = 1e-4
    algorithm: str = "lloyd"
    random_state: int = 42


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


def build_pipeline(feature_set: FeatureSet, scaler: str, params: KMeansParams, k: int) -> Pipeline:
    """Build an unfitted ``Pipeline(preprocess -> kmeans)`` for one feature set and k.

    The ``preprocess`` step selects the feature columns from a customer table (any other
    column, such as the customer id, is dropped), scales the numeric ones and one-hot
    encodes the categorical ones, so the fitted pipeline scores raw customer rows.
    """
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if not feature_set.columns:
        raise ValueError(f"feature set {feature_set.name!r} has no columns")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    transformers = []
    if feature_set.numeric:
        transformers.append(("numeric", make_scaler(scaler), list(feature_set.numeric)))
    if feature_set.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)
        transformers.append(("categorical", encoder, list(feature_set.categorical)))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    kmeans = KMeans(
        n_clusters=k,
        init=params.init,
        n_init=params.n_init,
        max_iter=params.max_iter,
        tol=params.tol,
        algorithm=params.algorithm,
        random_state=params.random_state,
    )
    return Pipeline([("preprocess", preprocess), ("kmeans", kmeans)])
