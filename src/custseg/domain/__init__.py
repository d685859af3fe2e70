"""The pure domain: arrays, DataFrames and plain values in, no settings, files, MLflow or Spark."""
