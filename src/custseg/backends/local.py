"""The local backend (``engine=sklearn``): the table in memory with pandas, scikit-learn
fits on a pool of forked processes."""

from __future__ import annotations

import pandas as pd

from custseg.backends.base import Backend, SweepEngine
from custseg.backends.tables import PandasTable
from custseg.config import Settings
from custseg.domain.clustering import FitResult, LastEncoding, fit_encoded
from custseg.domain.features import FeatureSet
from custseg.storage.data import (
    ColumnSummary,
    DataInfo,
    column_summary,
    load_customers,
    load_table,
    write_validated,
)


def validate(settings: Settings) -> tuple[DataInfo, ColumnSummary]:
    """Validate with pandas; write the validated table as one Parquet file."""
    table, info = load_customers(settings.data)
    write_validated(table, info, settings.data)
    return info, column_summary(table)


def sweep_engine(settings: Settings) -> SweepEngine:
    """The table in memory; scikit-learn fits on ``sweep.n_jobs`` forked processes, each
    encoding a feature set once for all its k (:class:`LastEncoding`)."""
    table, info = load_table(settings.data)
    encodings = LastEncoding()  # each forked worker fills its own copy

    def fit(table: pd.DataFrame, feature_set: FeatureSet, k: int, settings: Settings) -> FitResult:
        preprocess = settings.preprocess
        encoding = encodings(table, feature_set, preprocess.scaler, preprocess.categorical_weight)
        return fit_encoded(encoding, settings.model, k, settings.sweep.silhouette_sample_size)

    return SweepEngine(table, info, fit, settings.sweep.n_jobs)


LOCAL = Backend(
    name="sklearn",
    validate=validate,
    sweep=sweep_engine,
    table=PandasTable.open,
    output_suffix=".csv",
    score_batch=None,
    flavour=lambda model, engine: None,
)
