"""The outside world: data files, MLflow tracking and the model registry."""
