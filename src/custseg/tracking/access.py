"""What to tell a user whom the tracking server refused (one sentence, no traceback)."""

from __future__ import annotations

import os

import mlflow


def access_refused(exc: BaseException) -> str | None:
    """What to tell the user when a tracking server refused a request (None: it did not).

    A 401 means no or wrong credentials, a 403 a permission the user lacks; both are
    fixed by the user, so they get one sentence instead of a traceback.
    """
    code = getattr(exc, "error_code", None)
    if code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f"user {user!r}" if user else "a request without credentials"
    if code == "UNAUTHENTICATED":
        why = (
            "the user name or password is missing or wrong: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (make server prints the admin's; custseg team add-user "
            "creates others)"
        )
    else:
        why = "that needs a permission this user lacks (see docs/team-server.md#who-may-do-what)"
    return f"the tracking server {mlflow.get_tracking_uri()} refused {who}: {why}"
