"""Registry errors a user can fix, importable without MLflow (entry points catch them)."""


class PromotionError(RuntimeError):
    """A model may not be registered or an alias may not move; the message says why."""


class ModelNotFoundError(LookupError):
    """A model URI (registered model, alias, version, run or path) does not resolve."""
