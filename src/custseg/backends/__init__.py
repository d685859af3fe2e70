"""Where the customer table lives and the fits run: in memory (pandas, scikit-learn) or Spark.

:func:`backend_of` is the one place ``engine.name`` is read: it returns the engine's
:class:`~custseg.backends.base.Backend`, and the stages call what that offers. The Spark
backend is imported only when asked for (pyspark is an optional extra).
"""

from __future__ import annotations

from custseg.backends.base import Backend, CustomerTable
from custseg.backends.local import LOCAL
from custseg.config import EngineConfig, Settings


def backend_of(engine: EngineConfig) -> Backend:
    """The backend of ``engine.name`` (``sklearn`` or ``spark``)."""
    if engine.name == "spark":
        from custseg.backends.spark.backend import SPARK  # pyspark: an optional extra

        return SPARK
    return LOCAL


def open_table(settings: Settings) -> CustomerTable:
    """The validated customer table, held by ``settings.engine``."""
    return backend_of(settings.engine).table(settings)
