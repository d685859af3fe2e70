"""The customer table a stage computes on, held by the engine of ``engine.name``.

With ``engine=sklearn`` the validated table is in memory (pandas); with ``engine=spark``
it stays in Spark and only aggregates reach the driver, so a table larger than the
driver's memory gets through the stage. A stage asks the same questions of either
(:class:`CustomerTable`) and never branches on the engine:
:func:`custseg.backends.open_table` chooses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from custseg.config import Settings
from custseg.domain.clustering import SilhouetteSample, model_metrics
from custseg.domain.features import FeatureSet
from custseg.domain.identity import transitions
from custseg.domain.profiling.profiles import SegmentProfiles, profile_columns, profile_segments
from custseg.domain.segment_model import SegmentModel
from custseg.storage.assignments import assignments_table
from custseg.storage.data import DataInfo, load_table, write_csv_atomic


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

    def drawn(self, model: SegmentModel) -> tuple[pd.DataFrame, np.ndarray]:
        """The customers the driver holds (every one, or a seeded sample) and their
        segment ids under ``model``: what plots draw."""
        ...

    def write_assignments(self, model: SegmentModel, id_column: str | None, path: Path) -> None:
        """Write every customer's id, segment id and segment name to ``path`` as CSV
        (:func:`~custseg.storage.assignments.assignments_table`'s, written atomically)."""
        ...


@dataclass(frozen=True)
class PandasTable:
    """The validated table in memory (``engine=sklearn``)."""

    table: pd.DataFrame
    info: DataInfo
    #: the silhouette sample's seed (``model.random_state``)
    seed: int = 0
    _labels: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

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
        ids, metrics, silhouettes = model_metrics(
            model, self.table, silhouette_sample_size, self.seed
        )
        segments, counts = np.unique(ids, return_counts=True)
        sizes = dict(zip(segments.tolist(), counts.tolist(), strict=True))
        return ModelScores(self.table, ids, metrics, silhouettes, sizes)

    def profile_columns(
        self, feature_set: FeatureSet, exclude: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        return profile_columns(self.table, feature_set, exclude)

    def profiles(
        self, model: SegmentModel, numeric: Sequence[str], categorical: Sequence[str]
    ) -> SegmentProfiles:
        return profile_segments(self.table, self.labels(model), numeric, categorical)

    def drawn(self, model: SegmentModel) -> tuple[pd.DataFrame, np.ndarray]:
        return self.table, self.labels(model)

    def write_assignments(self, model: SegmentModel, id_column: str | None, path: Path) -> None:
        ids = self.table[id_column].tolist() if id_column else None
        frame = assignments_table(
            ids,
            self.labels(model),
            model.segment_names,
            id_column or "row",
            model.segment_personas,
        )
        write_csv_atomic(frame, path)

    def labels(self, model: SegmentModel) -> np.ndarray:
        """Every customer's segment id under ``model`` (scored once per model)."""
        if model.fingerprint not in self._labels:
            self._labels[model.fingerprint] = model.predict(self.table)
        return self._labels[model.fingerprint]
