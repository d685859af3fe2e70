"""What the entry points leave on the console: their own summary, warnings and errors.

MLflow logs INFO lines of its own (creating database tables, registering) and draws
progress bars for artifact transfers, which end up as noise in DVC and CI logs.
"""

from __future__ import annotations

import logging
import os
import sys

#: loggers whose INFO lines are noise for a custseg user (MLflow and its database migrations)
QUIET_LOGGERS = ("mlflow", "alembic")

#: MLflow reads this on every artifact transfer (see ``mlflow.environment_variables``)
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
#: with a tracking server MLflow prints "View run ... at: <url>" for every run it ends
RUN_LINKS_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


def quiet_console() -> None:
    """Silence MLflow's informational output; call once at the start of every entry point.

    - the ``mlflow`` and ``alembic`` loggers drop INFO and DEBUG (WARNING and above still
      show), unless ``MLFLOW_LOGGING_LEVEL`` asks for something else;
    - MLflow's artifact progress bars are off when stderr is not a terminal (a log file,
      a pipe, DVC, CI), unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set;
    - MLflow's "View run ... at" line per run (a tracking server: one per fit) is off,
      unless ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`` is set: custseg prints one link.

    Nothing else is changed: custseg's own logging and other libraries are left alone.
    """
    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() < logging.WARNING:
                logger.setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        os.environ.setdefault(PROGRESS_BAR_ENV, "false")
    os.environ.setdefault(RUN_LINKS_ENV, "true")
