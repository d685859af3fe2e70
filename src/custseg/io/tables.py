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

import pandas as pd

from custseg.config import Settings
from custseg.core.identity import transitions
from custseg.core.segment_model import SegmentModel
from custseg.io.data import DataInfo, load_table


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


@dataclass(frozen=True)
class PandasTable:
    """The validated table in memory (``engine=sklearn``)."""

    table: pd.DataFrame
    info: DataInfo

    @classmethod
    def open(cls, settings: Settings) -> PandasTable:
        return cls(*load_table(settings.data))

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)

    def inertia(self, model: SegmentModel) -> float:
        return model.inertia(self.table)

    def transitions(self, reference: SegmentModel, model: SegmentModel) -> pd.DataFrame:
        return transitions(reference, model, self.table)


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
