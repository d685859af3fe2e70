"""A segment model as Spark SQL: each numeric column through its transform and scaler, each
categorical one one-hot encoded, the squared distance to every centroid added column after
column, the nearest centroid's position, segment id, name and persona. Shared by scoring
(:mod:`custseg.backends.spark.scoring`) and the aggregates of a report
(:mod:`custseg.backends.spark.aggregates`)."""

from __future__ import annotations

from custseg.backends.spark.engine import sql_name
from custseg.domain.segment_model import SegmentModel
from custseg.errors import SparkScoringError

#: transforms Spark scores (a ``quantile`` transform's interpolation is not written in SQL)
SPARK_TRANSFORMS = ("log1p", "rfm_score")


def scoring_problem(model: SegmentModel) -> str | None:
    """Why ``model`` cannot score in Spark, or None."""
    unsupported = {c: k for c, k in model.transform_kinds.items() if k not in SPARK_TRANSFORMS}
    if unsupported:
        return (
            f"its transforms {unsupported} are not written for Spark (it scores "
            f"{', '.join(SPARK_TRANSFORMS)}); score with engine=sklearn"
        )
    return None


def _double(value: float) -> str:
    """A double in Spark SQL, exactly (from its shortest round-tripping decimal)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _numeric_sql(model: SegmentModel, i: int) -> str:
    """Numeric input ``i`` encoded: its transform, then ``(x - center) / scale``."""
    x = f"CAST({sql_name(model.numeric[i])} AS DOUBLE)"
    spec = model.transforms.get(model.numeric[i])
    if spec is not None and spec["kind"] == "log1p":
        x = f"log1p({x})"
    elif spec is not None and spec["kind"] == "rfm_score":  # 1 + the edges x exceeds
        score = _double(1.0)
        for edge in spec["edges"]:
            more = (
                _double(1.0)
                if edge is None
                else f"CASE WHEN {x} > {_double(edge)} THEN {_double(1.0)} ELSE {_double(0.0)} END"
            )
            score = f"({score} + {more})"
        x = score
    return f"(({x} - {_double(model.center[i])}) / {_double(model.scale[i])})"


def encoded_sql(model: SegmentModel) -> list[str]:
    """The model's encoded features as Spark SQL, in the centroids' order."""
    features = [_numeric_sql(model, i) for i in range(len(model.numeric))]
    factor, zero = _double(model.categorical_scale), _double(0.0)
    for column in model.categorical:
        value = f"CAST({sql_name(column)} AS STRING)"
        for category in model.categories[column]:
            features.append(f"CASE WHEN {value} = {_text(category)} THEN {factor} ELSE {zero} END")
    return features


def distance_sql(model: SegmentModel) -> list[str]:
    """The squared distance of a row to every centroid, as Spark SQL, added column after
    column as :func:`~custseg.domain.segment_model.squared_distances` adds them."""
    features = encoded_sql(model)
    distances = []
    for centroid in model.centroids:
        total = _double(0.0)
        for feature, coordinate in zip(features, centroid, strict=True):
            diff = f"({feature} - {_double(coordinate)})"
            total = f"({total} + {diff} * {diff})"
        distances.append(total)
    return distances


def nearest_sql(model: SegmentModel) -> str:
    """The 1-based position of the nearest centroid (ties: the first), as Spark SQL."""
    if problem := scoring_problem(model):
        raise SparkScoringError(f"model {model.feature_set}: {problem}")
    distances = ", ".join(distance_sql(model))
    return (
        f"CAST(element_at(transform(array(array({distances})), "
        "d -> array_position(d, array_min(d))), 1) AS INT)"
    )


def segment_sql(model: SegmentModel, position: str) -> tuple[str, str]:
    """The segment id and name at the 1-based centroid ``position`` (SQL), as Spark SQL."""
    ids = ", ".join(f"CAST({int(s)} AS BIGINT)" for s in model.segments)
    names = ", ".join(_text(n) for n in model.names)
    return f"element_at(array({ids}), {position})", f"element_at(array({names}), {position})"


def persona_sql(model: SegmentModel, position: str) -> str | None:
    """The persona at the 1-based centroid ``position`` (SQL), as Spark SQL; None for a
    model without personas."""
    if not model.personas:
        return None
    return f"element_at(array({', '.join(_text(p) for p in model.personas)}), {position})"
