"""Where the customer table lives and the fits run: in memory (pandas, scikit-learn) or Spark.

:func:`backend_of` is the one place ``engine.name`` is read: it returns the engine's
:class:`~custseg.backends.base.Backend`, and the stages call what that offers. The Spark
backend is imported only when asked for (pyspark is an optional extra).
"""

from __future__ import annotations

from collections.abc import Callable

from custseg.backends.base import Backend, CustomerTable
from custseg.backends.local import LOCAL
from custseg.config import EngineConfig, Settings


def _spark() -> Backend:
    from custseg.backends.spark.backend import SPARK  # pyspark: an optional extra

    return SPARK


#: every engine's backend, loaded when asked for (``engine.name`` -> loader)
BACKENDS: dict[str, Callable[[], Backend]] = {"sklearn": lambda: LOCAL, "spark": _spark}


def backend_of(engine: EngineConfig) -> Backend:
    """The backend of ``engine.name`` (a key of :data:`BACKENDS`)."""
    return BACKENDS[engine.name]()


def open_table(settings: Settings) -> CustomerTable:
    """The validated customer table, held by ``settings.engine``."""
    return backend_of(settings.engine).table(settings)
