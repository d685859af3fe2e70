"""The one interface every engine (``engine.name``) implements for the stages.

With ``engine=sklearn`` the validated table is in memory (pandas); with ``engine=spark``
it stays in Spark and only aggregates reach the driver, so a table larger than the
driver's memory gets through the stage. A stage never asks which engine it runs on: it
calls what :class:`Backend` offers (and asks its :class:`CustomerTable`), and
:func:`custseg.backends.backend_of` picks the backend once. A new engine is a module that
builds one :class:`Backend` (as :mod:`custseg.backends.local` and
:mod:`custseg.backends.spark.backend` do) and one line in :func:`~custseg.backends.backend_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from custseg.config import EngineConfig, Settings
from custseg.domain.clustering import FitResult, SilhouetteSample
from custseg.domain.features import FeatureSet
from custseg.domain.profiling.profiles import SegmentProfiles
from custseg.domain.segment_model import SegmentModel
from custseg.storage.data import ColumnSummary, DataInfo

if TYPE_CHECKING:  # the monitoring counts import scipy: only the engine that counts does
    from custseg.domain.monitoring.batch import BatchCounts


@dataclass(frozen=True)
class ModelScores:
    """A model scored on a table, as a sweep scores its fits.

    Attributes
    ----------
    rows : DataFrame
        The customers the driver computed on: the whole table in memory, or the seeded
        sample of a table in Spark (plots and the registration gate use them).
    ids : ndarray of int64
        The segment id of every row of ``rows``.
    metrics : dict
        :func:`~custseg.domain.clustering.model_metrics`'s; with Spark, the inertia and
        cluster sizes are the whole table's, the other scores the sample's (as the Spark
        sweep's).
    silhouettes : SilhouetteSample
        The rows of ``rows`` the silhouette is the mean of, and their silhouettes.
    sizes : dict of int to int
        Customers per segment id over the whole table (what plots of ``rows`` count).
    """

    rows: pd.DataFrame
    ids: np.ndarray
    metrics: dict[str, float]
    silhouettes: SilhouetteSample
    sizes: dict[int, int]


class CustomerTable(Protocol):
    """What a stage asks of the customers, whichever engine holds them."""

    @property
    def info(self) -> DataInfo:
        """The data file, its hash and the row count."""
        ...

    @property
    def columns(self) -> list[str]:
        """The table's column names."""
        ...

    def inertia(self, model: SegmentModel) -> float:
        """Sum of squared distances of the customers to ``model``'s nearest centroid."""
        ...

    def transitions(self, reference: SegmentModel, model: SegmentModel) -> pd.DataFrame:
        """Customers per (``reference``'s segment id, ``model``'s segment id)."""
        ...

    def scores(self, model: SegmentModel, silhouette_sample_size: int | None) -> ModelScores:
        """``model``'s scores on the customers (:class:`ModelScores`)."""
        ...

    def profile_columns(
        self, feature_set: FeatureSet, exclude: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """The numeric and categorical columns a profile summarises
        (:func:`~custseg.domain.profiling.profiles.profile_columns`)."""
        ...

    def profiles(
        self, model: SegmentModel, numeric: Sequence[str], categorical: Sequence[str]
    ) -> SegmentProfiles:
        """``model``'s segments profiled over every customer."""
        ...

    def sizes(self, model: SegmentModel) -> dict[int, int]:
        """Customers per segment id under ``model``, over the whole table (empty ones absent)."""
        ...

    def drawn(self, model: SegmentModel) -> tuple[pd.DataFrame, np.ndarray]:
        """The customers the driver holds (every one, or a seeded sample) and their
        segment ids under ``model``: what plots draw."""
        ...

    def write_assignments(self, model: SegmentModel, id_column: str | None, path: Path) -> None:
        """Write every customer's id, segment id and segment name to ``path`` as CSV
        (:func:`~custseg.storage.assignments.assignments_table`'s, written atomically)."""
        ...


#: fits one (feature set, k) of the table the engine holds on the driver:
#: ``(table, feature_set, k, settings) -> FitResult``
Fit = Callable[[pd.DataFrame, FeatureSet, int, Settings], FitResult]

#: scores the customer table ``source`` with the model (loaded when first needed) and
#: writes ``output``: ``(settings, source, output, model) -> customers per segment id``
ScoreBatch = Callable[[Settings, Path, Path, Callable[[], SegmentModel]], dict[int, int]]


#: counts a batch of customers for monitoring, scored by the model, in the engine:
#: ``(settings, source, model, reference) -> (counts, the source's sha256, refused)``,
#: where ``refused`` is ``{"rows": int, "first": [str]}`` (rows set aside and why)
CountBatch = Callable[
    [Settings, Path, SegmentModel, Mapping[str, Any]], tuple["BatchCounts", str, dict[str, Any]]
]


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
    count_batch : CountBatch
        Validates and scores a batch, and counts it for monitoring
        (:mod:`custseg.domain.monitoring.batch`).
    """

    name: str
    validate: Callable[[Settings], tuple[DataInfo, ColumnSummary]]
    sweep: Callable[[Settings], SweepEngine]
    table: Callable[[Settings], CustomerTable]
    output_suffix: str
    score_batch: ScoreBatch | None
    flavour: Callable[[SegmentModel, EngineConfig], Any]
    count_batch: CountBatch
