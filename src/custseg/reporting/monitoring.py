"""The monitoring page: one self-contained HTML file (inline style, no script, no
image files) of a batch's verdict, its segments and its columns, kept far below 1 MB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custseg.reporting.jinja import TEMPLATES

_PAGE = TEMPLATES.get_template("monitoring.html.j2")


def monitoring_html(report: Mapping[str, Any]) -> str:
    """The page of a monitoring report (:func:`custseg.domain.monitoring.verdict.assess`'s,
    with the pipeline's ``batch``, ``model``, ``version`` and ``refused``)."""
    return _PAGE.render(
        batch=report["batch"]["file"],
        model=report["model"]["uri"],
        version=report["model"]["version"],
        customers=report["customers"],
        refused=report["quality"]["refused"],
        verdict=report["verdict"],
        reasons=report["reasons"],
        segments=sorted(report["segments"].items(), key=lambda item: int(item[0])),
        shares=report["segment_shares"],
        columns=list(report["columns"].items()),
        quality=report["quality"],
    )
