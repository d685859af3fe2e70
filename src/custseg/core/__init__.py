"""Pure segmentation logic: arrays and DataFrames in and out; no MLflow, no Hydra, no files."""
