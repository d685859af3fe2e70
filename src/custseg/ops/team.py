"""Who may do what on a team's tracking server (MLflow's ``basic-auth`` app).

The server's default permission is READ: everybody signed in sees every run, version
and alias, and scores with any model. custseg's two roles add to that:

============  ======================================  ================================
role          experiments (``tracking.experiment_name``  registered model
              and its ``-monitoring`` one)
============  ======================================  ================================
scientist     EDIT: sweeps, logs runs and             READ: sees versions and aliases
              monitoring runs
owner         MANAGE: also deletes, grants            MANAGE: registers, moves aliases
                                                      (``@champion``), grants, tags
                                                      versions with their verdict
============  ======================================  ================================

So a scientist's sweeps and experiments land next to everyone's, but only an owner
registers versions and promotes (``custseg promote``): the registry stays the team's
decision. MLflow needs EDIT on a registered model both to register a version and to
move any alias, so "may register" and "may move @champion" are one permission.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

#: role -> (permission on the experiment, permission on the registered model)
ROLES: dict[str, tuple[str, str]] = {
    "scientist": ("EDIT", "READ"),
    "owner": ("MANAGE", "MANAGE"),
}


class TeamError(RuntimeError):
    """A team change that cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class NewMember:
    """A user as :func:`add_user` left it: name, role and password (new users only)."""

    username: str
    role: str
    password: str | None


def add_user(
    tracking_uri: str,
    username: str,
    role: str,
    experiment_name: str,
    model_name: str,
    password: str | None = None,
) -> NewMember:
    """Create ``username`` (if new, with ``password`` or a generated one) and grant the
    permissions of ``role`` on the experiment and the registered model (both created
    when missing, so they can be granted on). Needs an admin's credentials
    (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``).

    Raises
    ------
    TeamError
        If the role is unknown or the caller is not an admin.
    """
    if role not in ROLES:
        raise TeamError(f"unknown role {role!r}: choose one of {sorted(ROLES)}")
    with warnings.catch_warnings():  # the server app's imports warn about Starlette
        warnings.simplefilter("ignore")
        from mlflow.server import get_app_client

        auth = get_app_client("basic-auth", tracking_uri=tracking_uri)
    try:
        # the resources first: a failure then leaves no user whose password was never shown
        experiments, model = _ensure_resources(tracking_uri, experiment_name, model_name)
        created = _create_user(auth, username, password or secrets.token_urlsafe(12))
        on_experiment, on_model = ROLES[role]
        for experiment_id in experiments:
            _grant(auth, username, "experiment", experiment_id, on_experiment)
        _grant(auth, username, "registered_model", model, on_model)
    except MlflowException as exc:
        if exc.error_code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise TeamError(
                "adding users needs the server admin's credentials: set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to what `make server` "
                f"printed ({exc.message})"
            ) from exc
        raise TeamError(exc.message) from exc
    return NewMember(username, role, created)


def _grant(auth, username: str, resource_type: str, resource_id: str, permission: str) -> None:
    """Give ``username`` exactly ``permission`` on the resource (replacing an older grant)."""
    try:
        auth.grant_user_permission(username, resource_type, resource_id, permission)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, resource_type, resource_id)
        auth.grant_user_permission(username, resource_type, resource_id, permission)


def _create_user(auth, username: str, password: str) -> str | None:
    """Create the user; its password, or None when it already existed (left as it is)."""
    try:
        auth.create_user(username, password)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return None
        raise
    return password


def _ensure_resources(
    tracking_uri: str, experiment_name: str, model_name: str
) -> tuple[list[str], str]:
    """Ids of the experiments (the pipeline's and its monitoring one) and the registered
    model to grant on (created when missing)."""
    from custseg.tracking.monitoring import EXPERIMENT_SUFFIX
    from custseg.tracking.runs import setup_experiment

    experiments = [
        setup_experiment(tracking_uri, name, None)
        for name in (experiment_name, experiment_name + EXPERIMENT_SUFFIX)
    ]
    client = MlflowClient(tracking_uri)
    try:
        client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(model_name)
    return experiments, model_name
