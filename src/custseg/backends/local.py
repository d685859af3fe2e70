"""The local backend (``engine=sklearn``): the table in memory with pandas, scikit-learn
fits on a pool of forked processes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.backends.base import Backend, ModelScores, SweepEngine
from custseg.config import DataConfig, Settings
from custseg.domain.clustering import FitResult, LastEncoding, fit_encoded, model_metrics
from custseg.domain.features import FeatureSet
from custseg.domain.identity import transitions
from custseg.domain.profiling.profiles import SegmentProfiles, profile_columns, profile_segments
from custseg.domain.segment_model import SegmentModel
from custseg.storage.assignments import assignments_table
from custseg.storage.data import (
    ColumnSummary,
    DataInfo,
    batch_config,
    column_summary,
    load_customers,
    load_customers_with_rejects,
    load_table,
    write_csv_atomic,
    write_validated,
)

if TYPE_CHECKING:  # scipy, for monitoring only: imported when a batch is counted
    from custseg.domain.monitoring.batch import BatchCounts


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
        return ModelScores(self.table, ids, metrics, silhouettes, _sizes(ids))

    def profile_columns(
        self, feature_set: FeatureSet, exclude: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        return profile_columns(self.table, feature_set, exclude)

    def profiles(
        self, model: SegmentModel, numeric: Sequence[str], categorical: Sequence[str]
    ) -> SegmentProfiles:
        return profile_segments(self.table, self.labels(model), numeric, categorical)

    def sizes(self, model: SegmentModel) -> dict[int, int]:
        return _sizes(self.labels(model))

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


def _sizes(ids: np.ndarray) -> dict[int, int]:
    """Customers per segment id."""
    segments, counts = np.unique(ids, return_counts=True)
    return dict(zip(segments.tolist(), counts.tolist(), strict=True))


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


#: refusal reasons kept in a monitoring report (the count is always whole)
SHOWN_REFUSALS = 5


def count_batch(
    settings: Settings, source: Path, model: SegmentModel, reference: Mapping[str, Any]
) -> tuple[BatchCounts, str, dict[str, Any]]:
    """The batch in memory, validated as the training data (it may lack the columns the
    model does not read); rows that break the schema or the model's ranges are refused
    with their file lines, the others scored and counted by chunks."""
    from custseg.domain.monitoring.batch import count_scored

    data = batch_config(dataclasses.replace(settings.data, path=str(source)), model.columns)
    table, info, rejects = load_customers_with_rejects(data)
    refusals = list(zip(rejects.lines.tolist(), rejects.reasons, strict=True))
    problems = model.input_problems(table)
    if len(problems):
        rows = problems.index.to_numpy()
        lines = rejects.kept_lines[rows].tolist()
        refusals += [
            (n, f"the model's schema: {why}") for n, why in zip(lines, problems, strict=True)
        ]
        table = table.drop(index=rows).reset_index(drop=True)
    refusals.sort(key=lambda item: item[0])
    shown = [f"line {line}: {_without_id(why, data)}" for line, why in refusals[:SHOWN_REFUSALS]]
    counts = count_scored(model, table, reference)
    return counts, info.sha256, {"rows": len(refusals), "first": shown}


def _without_id(reason: str, data: DataConfig) -> str:
    """A refusal reason without the customer id's value (it goes to MLflow)."""
    if (column := data.id_column) is None:
        return reason
    source = re.escape(data.columns[column].source)
    return re.sub(source + r"""=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", source, reason)


LOCAL = Backend(
    name="sklearn",
    validate=validate,
    sweep=sweep_engine,
    table=PandasTable.open,
    output_suffix=".csv",
    score_batch=None,
    flavour=lambda model, engine: None,
    count_batch=count_batch,
)
