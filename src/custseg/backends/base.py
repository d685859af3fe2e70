"""The one interface every engine (``engine.name``) implements for the stages.

A stage never asks which engine it runs on: it calls what :class:`Backend` offers, and
:func:`custseg.backends.backend_of` picks the backend once. A new engine is a module that
builds one :class:`Backend` (as :mod:`custseg.backends.local` and
:mod:`custseg.backends.spark.backend` do) and one line in :func:`~custseg.backends.backend_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from custseg.config import EngineConfig, Settings
from custseg.domain.clustering import FitResult
from custseg.domain.features import FeatureSet
from custseg.domain.segment_model import SegmentModel
from custseg.storage.data import ColumnSummary, DataInfo

if TYPE_CHECKING:
    from custseg.backends.tables import CustomerTable

#: fits one (feature set, k) of the table the engine holds on the driver:
#: ``(table, feature_set, k, settings) -> FitResult``
Fit = Callable[[pd.DataFrame, FeatureSet, int, Settings], FitResult]

#: scores the customer table ``source`` with the model (loaded when first needed) and
#: writes ``output``: ``(settings, source, output, model) -> customers per segment id``
ScoreBatch = Callable[[Settings, Path, Path, Callable[[], SegmentModel]], dict[int, int]]


@dataclass(frozen=True)
class SweepEngine:
    """How a sweep loads its table and fits, on one engine.

    Attributes
    ----------
    table : DataFrame
        What the driver computes on: the whole table (scikit-learn), or a seeded sample of
        ``sweep.silhouette_sample_size`` customers (Spark).
    info : DataInfo
        The data file, its hash and the whole table's row count.
    fit : Fit
        Fits one (feature set, k).
    n_jobs : int, optional
        Processes the fits run on (1: in this process, one after another).
    """

    table: pd.DataFrame
    info: DataInfo
    fit: Fit
    n_jobs: int | None


@dataclass(frozen=True)
class Backend:
    """What one engine does for the stages.

    Attributes
    ----------
    name : str
        Its ``engine.name``.
    validate : callable
        ``settings -> (info, column summary)``: validates ``data.path`` and writes the
        validated table to ``data.validated`` (the validate stage).
    sweep : callable
        ``settings -> SweepEngine``: the sweep's table and fits.
    table : callable
        ``settings -> CustomerTable``: the validated table the later stages ask about.
    output_suffix : str
        The suffix of what scoring writes (``.csv``, or ``.parquet`` for a directory).
    score_batch : ScoreBatch, optional
        Scores a whole customer table in the engine; None when scoring runs in memory on
        the model's pyfunc (with ``predict.rejects`` and transaction logs).
    flavour : callable
        ``(model, engine config) -> object or None``: the model in the engine's own form,
        registered beside the pyfunc (a Spark ML pipeline), or None.
    """

    name: str
    validate: Callable[[Settings], tuple[DataInfo, ColumnSummary]]
    sweep: Callable[[Settings], SweepEngine]
    table: Callable[[Settings], CustomerTable]
    output_suffix: str
    score_batch: ScoreBatch | None
    flavour: Callable[[SegmentModel, EngineConfig], Any]
