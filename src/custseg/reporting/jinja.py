"""The reports' templates: ``templates/*.j2`` beside this module, HTML-escaped, and an
undefined name is an error rather than an empty string."""

from __future__ import annotations

import jinja2

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("custseg.reporting", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
