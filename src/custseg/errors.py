"""Registry and scoring errors a user can fix, importable without MLflow or pyspark (entry
points catch them)."""


class PromotionError(RuntimeError):
    """A model may not be registered or an alias may not move; the message says why."""


class ModelNotFoundError(LookupError):
    """A model URI (registered model, alias, version, run or path) does not resolve."""


class SparkScoringError(ValueError):
    """The model cannot score in Spark, the table breaks the model's input limits, or the
    model's Spark pipeline cannot be saved beside it."""
