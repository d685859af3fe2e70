"""How the entry points report the errors a user can fix: one message, no traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from custseg.config import ConfigError, unknown_key
from custseg.errors import ModelNotFoundError, PromotionError, SparkScoringError
from custseg.storage.data import DataValidationError
from custseg.storage.outputs import StaleInputError


class FitsFailedError(RuntimeError):
    """Some fits of a sweep raised; the others finished and are logged.

    Parameters
    ----------
    failures : list of str
        One line per failed fit: ``"<feature set> k=<k>: <exception>: <message>"``.
    n_fits : int
        Number of fits of the sweep.
    parent_run_id : str
        The sweep's parent run (ends FAILED), under which every fit is logged.
    """

    def __init__(self, failures: list[str], n_fits: int, parent_run_id: str) -> None:
        self.failures = list(failures)
        head = (
            f"{len(failures)} of {n_fits} fits failed; the other {n_fits - len(failures)} "
            f"are logged under parent run {parent_run_id} (FAILED), and no sweep output "
            "was written:"
        )
        super().__init__("\n".join([head, *(f"  - {f}" for f in self.failures)]))


#: errors whose message says what is wrong and how to fix it (bad config, bad data, a
#: missing or stale input of an earlier stage, a model that does not resolve, may not
#: be promoted or cannot score in Spark, fits that failed)
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    DataValidationError,
    FileNotFoundError,
    FitsFailedError,
    ModelNotFoundError,
    PromotionError,
    SparkScoringError,
    StaleInputError,
)

F = TypeVar("F", bound=Callable[..., None])


def exit_on_user_error(program: str) -> Callable[[F], F]:
    """Decorate an entry point so :data:`USER_ERRORS` print ``<program>: error: ...`` and exit 1.

    So does a tracking server's refusal (401: no or wrong credentials, 403: a missing
    permission). Any other exception propagates with its traceback: it is a bug, not bad
    input.

    Parameters
    ----------
    program : str
        Command name shown before the message, e.g. ``"custseg-sweep"``.

    Returns
    -------
    callable
        The decorator.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs) -> None:
            try:
                func(*args, **kwargs)
            except USER_ERRORS as exc:
                print(f"{program}: error: {exc}", file=sys.stderr)
                sys.exit(1)
            except Exception as exc:
                if (message := _server_refusal(exc)) is None:  # a tracking server's 401, 403
                    raise
                print(f"{program}: error: {message}", file=sys.stderr)
                sys.exit(1)

        return wrapper  # type: ignore[return-value]

    return decorate


def _server_refusal(exc: Exception) -> str | None:
    """The message for a tracking server's refusal, or None when ``exc`` is not one.

    MLflow is imported only by the stages that track (start-up): an error raised before
    it was imported cannot be MLflow's.
    """
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is None or not isinstance(exc, mlflow_exceptions.MlflowException):
        return None
    from custseg.tracking.access import access_refused

    return access_refused(exc)


def known_keys(program: str) -> Callable[[F], F]:
    """Decorate a Hydra entry point (above ``@hydra.main``) so that a command-line key the
    configuration does not have exits 1 with ``<program>: error: unknown key ...`` and the
    close keys (:func:`custseg.config.unknown_key`), before Hydra composes anything."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs) -> None:
            if problem := unknown_key(sys.argv[1:]):
                print(f"{program}: error: {problem}", file=sys.stderr)
                sys.exit(1)
            func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
