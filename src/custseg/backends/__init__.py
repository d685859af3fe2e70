"""Where the customer table lives and the fits run: in memory (pandas, scikit-learn) or Spark.

:func:`open_table` is where a stage's table is chosen by ``engine.name``; the Spark
table is imported only when asked for (pyspark is an optional extra).
"""

from __future__ import annotations

from collections.abc import Callable

from custseg.backends.tables import CustomerTable, PandasTable
from custseg.config import Settings


def _spark_table(settings: Settings) -> CustomerTable:
    from custseg.backends.spark.scoring import SparkCustomerTable  # pyspark: an optional extra

    return SparkCustomerTable.open(settings)


#: the table of each ``engine.name``
TABLES: dict[str, Callable[[Settings], CustomerTable]] = {
    "sklearn": PandasTable.open,
    "spark": _spark_table,
}


def open_table(settings: Settings) -> CustomerTable:
    """The validated customer table, held by ``settings.engine``."""
    return TABLES[settings.engine.name](settings)
