"""custseg: reproducible customer segmentation with KMeans, Hydra, MLflow and DVC."""

__version__ = "0.1.0"
