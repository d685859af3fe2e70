"""The customer table a stage computes on, held by the engine of ``engine.name``.

With ``engine=sklearn`` the validated table is in memory (pandas); with ``engine=spark``
it stays in Spark and only aggregates reach the driver, so a table larger than the
driver's memory gets through the stage. A stage asks the same questions of either
(:class:`CustomerTable`) and never branches on the engine: :func:`open_table` is the one
place the engine is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from custseg.config import Settings
from custseg.core.clustering import SilhouetteSample, model_metrics
from custseg.core.identity import transitions
from custseg.core.segment_model import SegmentModel
from custseg.io.data import DataInfo, load_table


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
        :func:`~custseg.core.clustering.model_metrics`'s; with Spark, the inertia and
        cluster sizes are the whole table's, the other scores the sample's (as the Spark
        sweep's).
    silhouettes : SilhouetteSample
        The rows of ``rows`` the silhouette is the mean of, and their silhouettes.
    """

    rows: pd.DataFrame
    ids: np.ndarray
    metrics: dict[str, float]
    silhouettes: SilhouetteSample


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


@dataclass(frozen=True)
class PandasTable:
    """The validated table in memory (``engine=sklearn``)."""

    table: pd.DataFrame
    info: DataInfo
    #: the silhouette sample's seed (``model.random_state``)
    seed: int = 0

    @classmethod
    def open(cls, settings: Settings) -> PandasTable:
        return cls(*load_table(settings.data), settings.model.random_state)

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)

    def inertia(self, model: SegmentModel) -> float:
        return model.inertia(self.table)

    def transitions(self, reference: SegmentModel, model: SegmentModel) -> pd.DataFrame:
        return transitions(reference, model, self.table)

    def scores(self, model: SegmentModel, silhouette_sample_size: int | None) -> ModelScores:
        scored = model_metrics(model, self.table, silhouette_sample_size, self.seed)
        return ModelScores(self.table, *scored)


def _spark_table(settings: Settings) -> CustomerTable:
    from custseg.io.spark_scoring import SparkCustomerTable  # pyspark: an optional extra

    return SparkCustomerTable.open(settings)


#: the table of each ``engine.name``
TABLES: dict[str, Callable[[Settings], CustomerTable]] = {
    "sklearn": PandasTable.open,
    "spark": _spark_table,
}


def open_table(settings: Settings) -> CustomerTable:
    """The validated customer table, held by ``settings.engine``."""
    return TABLES[settings.engine.name](settings)
